"""What comes in on the client's pipe: lines, bounded in size, read as JSON-RPC messages or as the refusal
that answers them (server/wire.py moves them; this decides whether they are fit to move).

Nothing past `screen` sees invalid UTF-8, a batch, a message nested deeper than MAX_DEPTH, or a number Python
cannot hold; a line over the size limit is dropped as it streams by, never held whole.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable
from contextlib import suppress
from typing import TYPE_CHECKING

from mcp_proxy.config.model import ServerConfig
from mcp_proxy.jsonline import json_line, not_json, valid_id

if TYPE_CHECKING:
    from mcp_proxy.server.call import JsonObject, RequestId

# The deepest a client's message may be nested. Real MCP messages stay within about 20 levels (envelope, params,
# arguments, a few levels of structure); a thousand levels would exhaust Python's recursion limit in json,
# pydantic, jsonschema or the audit redactor and take the whole process down, so deeper messages stop here.
MAX_DEPTH = 64
DEFAULT_MAX_MESSAGE_BYTES = ServerConfig.max_message_bytes  # `[server] max_message_bytes`
CHUNK = 64 * 1024
MAX_INT_DIGITS = 4300  # Python's own limit for turning digits into an int

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


class TooLong:
    """A line over the size limit, already skipped: only its size is known."""

    def __init__(self, size: int) -> None:
        self.size = size


class LineReader:
    """Lines from `reader`, at most `limit` bytes each. A longer line is read on in chunks and dropped up to its
    newline, so it never sits in memory whole (asyncio's readline would buffer it all, up to its limit, and then
    read its tail as a line of its own)."""

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self._limit = limit
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no newline

    async def next(self) -> bytes | TooLong | None:
        """The next line (with its newline), a `TooLong`, or None at EOF."""
        while True:
            end = self._buf.find(b"\n", self._scanned)
            if end >= 0:
                self._scanned = 0
                if end > self._limit:
                    del self._buf[:end + 1]
                    return TooLong(end + 1)
                line = bytes(self._buf[:end + 1])
                del self._buf[:end + 1]
                return line
            if len(self._buf) > self._limit:
                return await self._skip_rest()
            self._scanned = len(self._buf)
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                if self._buf:  # a last line without its newline
                    line, self._buf = bytes(self._buf), bytearray()
                    self._scanned = 0
                    return line
                return None
            self._buf += chunk

    async def _skip_rest(self) -> TooLong:
        size = len(self._buf)
        self._buf.clear()
        self._scanned = 0
        while True:
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                return TooLong(size)
            end = chunk.find(b"\n")
            if end >= 0:
                self._buf += chunk[end + 1:]
                return TooLong(size + end + 1)
            size += len(chunk)

class Refusal:
    """A message the edge answers itself: `request_id` None answers with id null; `quiet` answers nothing (a
    notification or a response from the client, which get no answer in JSON-RPC)."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None, quiet: bool = False) -> None:
        self.code, self.message, self.request_id, self.quiet = code, message, request_id, quiet

    def line(self) -> bytes:
        return json_line({"jsonrpc": "2.0", "id": self.request_id,
                          "error": {"code": self.code, "message": self.message}})


class _Unrepresentable(ValueError):
    pass


def _parse_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise _Unrepresentable(f"a number with {len(digits)} digits")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unrepresentable(f"the number {text[:40]} is too large for a double")
    return value


def _too_deep(value: object) -> bool:
    """Whether `value` nests more than MAX_DEPTH levels (the message itself is level 1). Iterative: a
    recursive walk is what this guards against."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        assert isinstance(children, Iterable)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def _kind(keys: Iterable[str]) -> str:
    present = set(keys)
    if "method" in present:
        return "request" if "id" in present else "notification"
    return "response" if present & {"result", "error"} else "other"


def _top_level_fields(text: str) -> tuple[RequestId | None, str]:
    """(id, kind) of a JSON object too deep or too large for json to build, read from its tokens at the top
    level only, so that a request refused for its shape is still answered by its id."""
    depth, key, expect_value, found_id = 0, "", False, None
    keys: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            depth += 1
            expect_value = False
        elif token in "}]":
            depth -= 1
        elif depth != 1:
            continue
        elif token == ":":
            expect_value = True
        elif token == ",":
            key, expect_value = "", False
        elif expect_value:
            expect_value = False
            if key == "id":
                with suppress(ValueError):
                    value = json.loads(token)
                    found_id = value if valid_id(value) else None
        elif token.startswith('"'):
            key = token[1:-1]
            keys.append(key)
    return found_id, _kind(keys)


def _refuse_shape(request_id: object, kind: str, why: str, fix: str) -> Refusal:
    # A notification or a response from the client (to an elicitation, say) gets no answer: it is dropped.
    quiet = kind in ("notification", "response")
    request_id = request_id if valid_id(request_id) else None
    return Refusal(INVALID_REQUEST, f"Invalid Request: {why}, so it was not processed. {fix}", request_id,
                   quiet=quiet)


_FLATTER = "Send flatter arguments (or smaller numbers)."


def screen(line: bytes) -> JsonObject | Refusal:
    """The line as a JSON object, or the refusal that answers it. Nothing past this point sees invalid UTF-8,
    a batch, a message nested deeper than MAX_DEPTH, or a number Python cannot hold."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refusal(PARSE_ERROR, f"Parse error: the message is not valid UTF-8 (a bad byte at offset "
                       f"{exc.start}). Send JSON-RPC messages as UTF-8 text, one per line.")
    why = ""
    try:
        message = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=not_json)
    except RecursionError:
        why = f"the message is nested deeper than {MAX_DEPTH} levels, the most the proxy accepts"
    except _Unrepresentable as exc:
        why = f"the message holds {exc}, which the proxy does not accept"
    except ValueError:
        return Refusal(PARSE_ERROR, "Parse error: the message is not valid JSON. Send one JSON-RPC 2.0 message "
                       "per line.")
    if why:
        if text.lstrip().startswith("["):
            return _batch_refusal()
        return _refuse_shape(*_top_level_fields(text), why, _FLATTER)
    if isinstance(message, list):
        return _batch_refusal()
    if not isinstance(message, dict):
        return Refusal(INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be a JSON object.")
    if (line.count(b"{") + line.count(b"[") > MAX_DEPTH) and _too_deep(message):
        return _refuse_shape(message.get("id"), _kind(message),
                             f"the message is nested deeper than {MAX_DEPTH} levels, the most the proxy accepts",
                             _FLATTER)
    return message


def _batch_refusal() -> Refusal:
    return Refusal(INVALID_REQUEST, "Invalid Request: JSON-RPC batches (a JSON array of messages) are not part "
                   "of MCP since 2025-06-18 and none of the batch was run. Send each message on its own line.")


def invalid_message(message: JsonObject, exc: ValueError) -> Refusal:
    """The answer to a JSON object the SDK's JSON-RPC models refuse (the SDK would drop it unanswered)."""
    from pydantic import ValidationError

    detail = ""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]  # where and what, never the input: it may hold a secret
        detail = f" ({'.'.join(str(p) for p in first['loc'])}: {first['msg']})"
    return _refuse_shape(message.get("id"), _kind(message),
                         f"the message is not a valid JSON-RPC 2.0 request or notification{detail}",
                         "Send a JSON object with \"jsonrpc\": \"2.0\", a string \"method\" and, for a request, an "
                         "integer or string \"id\".")
