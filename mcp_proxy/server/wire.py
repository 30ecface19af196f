"""The protocol streams on the claimed stdin/stdout descriptors.

Why not the SDK's `stdio_server`: it reads and writes through worker threads,
three thread hops per request/response, which is a large share of the proxy's
per-call cost. When the descriptors are pipes or sockets (how every client
launches us) they are driven by the event loop directly; a regular file or a
terminal falls back to the SDK's threaded path.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeGuard

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcp_proxy.config.model import ServerConfig
from mcp_proxy.server.early_session import OWN_REQUESTS, EarlySession, Watch
from mcp_proxy.stdio_guard import WireFds

if TYPE_CHECKING:  # the SDK is loaded while the first answers go out (server/first_answers.py), not before
    from mcp.shared.message import SessionMessage

    from mcp_proxy.server.call import JsonObject, RequestId
    from mcp_proxy.server.fastpath import ToolCallFastPath
    from mcp_proxy.server.first_answers import FirstAnswers

# What the SDK's server reads (messages, or the error a line caused) and writes.
Streams = tuple[MemoryObjectReceiveStream["SessionMessage | Exception"], MemoryObjectSendStream["SessionMessage"]]

log = logging.getLogger(__name__)

# The deepest a client's message may be nested. Real MCP messages stay within about 20 levels (envelope, params,
# arguments, a few levels of structure); a thousand levels would exhaust Python's recursion limit in json,
# pydantic, jsonschema or the audit redactor and take the whole process down, so deeper messages stop here.
MAX_DEPTH = 64
DEFAULT_MAX_MESSAGE_BYTES = ServerConfig.max_message_bytes  # `[server] max_message_bytes`
CHUNK = 64 * 1024
MAX_INT_DIGITS = 4300  # Python's own limit for turning digits into an int

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
FAST, SDK = "fast", "sdk"


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


def _same_id(request_id: RequestId) -> RequestId:
    """The id as the SDK's dispatcher correlates it: a string of digits is that integer ("7" is 7)."""
    if isinstance(request_id, str):
        with suppress(ValueError):
            return int(request_id)
    return request_id


class RequestIds:
    """The client's requests not answered yet, by id, and which path holds each. Two requests in flight with
    one id would be answered with one id twice (and the SDK's dispatcher would lose track of the first), so
    the second is refused. Ids are compared as the SDK's dispatcher compares them ("7" is 7)."""

    def __init__(self) -> None:
        self._held: dict[RequestId, str] = {}

    def busy(self, request_id: RequestId) -> bool:
        return _same_id(request_id) in self._held

    def hold(self, request_id: RequestId, path: str) -> None:
        self._held[_same_id(request_id)] = path

    def release(self, request_id: object, path: str) -> None:
        """The request was answered (or cancelled, which gets no answer) on `path`."""
        if not _valid_id(request_id):
            return
        key = _same_id(request_id)
        if self._held.get(key) == path:
            del self._held[key]


class Refusal:
    """A message the edge answers itself: `request_id` None answers with id null; `quiet` answers nothing (a
    notification or a response from the client, which get no answer in JSON-RPC)."""

    def __init__(self, code: int, message: str, request_id: RequestId | None = None, quiet: bool = False) -> None:
        self.code, self.message, self.request_id, self.quiet = code, message, request_id, quiet

    def line(self) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": self.request_id, "error": {"code": self.code,
                          "message": self.message}}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class _Unrepresentable(ValueError):
    pass


def _valid_id(value: object) -> TypeGuard[RequestId]:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _parse_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise _Unrepresentable(f"a number with {len(digits)} digits")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unrepresentable(f"the number {text[:40]} is too large for a double")
    return value


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")  # Python's json reads NaN and Infinity; JSON has neither


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
                    found_id = value if _valid_id(value) else None
        elif token.startswith('"'):
            key = token[1:-1]
            keys.append(key)
    return found_id, _kind(keys)


def _refuse_shape(request_id: object, kind: str, why: str, fix: str) -> Refusal:
    # A notification or a response from the client (to an elicitation, say) gets no answer: it is dropped.
    quiet = kind in ("notification", "response")
    request_id = request_id if _valid_id(request_id) else None
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
        message = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_not_json)
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


def _is_pipe_or_socket(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _answer(request_id: RequestId, result: JsonObject) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}, ensure_ascii=False,
                      separators=(",", ":")).encode() + b"\n"


Listed = Callable[[str, "JsonObject"], Awaitable[None]]


class WireLink:
    """The client's pipe as `serve` holds it. Before `open_sdk`, lines the first answers cover (an `initialize` or
    `server/discover`, then a `tools/list`: server/early_session.py) are answered at once and the rest wait;
    `open_sdk` hands everything to the SDK."""

    def __init__(self, open_sdk: Callable[[ToolCallFastPath | None, Listed | None], Streams],
                 early: EarlySession | None = None) -> None:
        self._open_sdk = open_sdk
        self.early = early  # what was answered before the SDK was loaded (server/early_session.py)
        # Set when the client closed stdin before the SDK was loaded, with nothing left to answer: serve can leave
        # without loading it.
        self.gone = anyio.Event()

    def open_sdk(self, fast_path: ToolCallFastPath | None = None, listed: Listed | None = None) -> Streams:
        """The SDK's (read, write) streams. With `fast_path` (server/fastpath.py), the lines it takes are answered
        there. `listed(key, result)` hears each first-page `tools/list` answer the SDK gives, with its list key
        (`FirstAnswers.list_key`)."""
        return self._open_sdk(fast_path, listed)


@asynccontextmanager
async def wire_streams(wire: WireFds, *, on_eof: Callable[[], Awaitable[None]] | None = None,
                       max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                       first: FirstAnswers | None = None) -> AsyncIterator[WireLink]:
    """The client's pipe, read from now on. `on_eof` runs when the client closes stdin, before the SDK hears of
    it: calls in flight can still answer meanwhile. Every line is screened first (`screen`): what no path could
    take safely is answered here. `first` gives the first answers while the SDK loads."""
    if not (_is_pipe_or_socket(wire.read_fd) and _is_pipe_or_socket(wire.write_fd)):
        async with _threaded_streams(wire) as link:
            yield link
        return

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire.read_fd, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire.write_fd, "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    lines = LineReader(reader, max_message_bytes)
    ids = RequestIds()

    read_send, read_recv = anyio.create_memory_object_stream[Any](0)
    write_send, write_recv = anyio.create_memory_object_stream[Any](0)
    held_back: list[tuple[bytes, JsonObject]] = []  # lines read before the SDK was loaded, in order
    sdk: dict[str, Any] = {}  # once loaded: "fast", "listed", "types", "message"
    handed_over = anyio.Event()
    early = EarlySession(first)
    watched: dict[RequestId, Watch] = {}  # SDK-bound requests whose answers are kept

    async def write_line(data: bytes) -> None:
        writer.write(data)  # one whole line per write(): lines from every path never interleave
        await writer.drain()

    async def refuse(refusal: Refusal) -> None:
        if refusal.quiet:
            log.warning("dropped a client message: %s", refusal.message)
            return
        log.warning("refused a client message (id %r): %s", refusal.request_id, refusal.message)
        with suppress(ConnectionError, OSError):
            await write_line(refusal.line())

    async def read_lines() -> None:
        async with read_send:
            while True:
                try:
                    line = await lines.next()
                except OSError:
                    return
                if line is None:  # EOF: the client went away
                    if on_eof is not None:
                        await on_eof()
                    if not handed_over.is_set() and not any(_valid_id(m.get("id")) for _, m in held_back):
                        link.gone.set()
                    await handed_over.wait()  # what was read before reaches the SDK before the end does
                    return
                if isinstance(line, TooLong):
                    await refuse(Refusal(INVALID_REQUEST, f"Invalid Request: a message of {line.size} bytes or "
                                         f"more is over the proxy's limit of {max_message_bytes} bytes and was "
                                         "skipped; send less at once, or raise [server] max_message_bytes."))
                    continue
                if not line.strip():
                    continue
                message = screen(line)
                if isinstance(message, Refusal):
                    await refuse(message)
                    continue
                await take(line, message)

    async def take(line: bytes, message: JsonObject) -> None:
        request_id = message.get("id")
        held: RequestId | None = request_id if _valid_id(request_id) and isinstance(message.get("method"), str) \
            else None  # a request the client waits for an answer to
        if message.get("method") == "notifications/cancelled":
            params = message.get("params")
            ids.release(params.get("requestId") if isinstance(params, dict) else None, SDK)  # the SDK won't answer
        if held is not None and (ids.busy(held) or held in OWN_REQUESTS):
            await refuse(Refusal(INVALID_REQUEST, f"Invalid Request: a request with this id ({held!r}) is still "
                                 "in flight; wait for its answer, or use a new id.", held))
            return
        if not handed_over.is_set():
            if held is not None and await answer_early(held, message):
                return
            if held is not None:
                ids.hold(held, SDK)
            held_back.append((line, message))
            return
        await to_sdk(line, message)

    async def answer_early(request_id: RequestId, message: JsonObject) -> bool:
        result = early.answer(message)
        if result is None:
            return False
        log.debug("answered %s from the first answers the last session kept", message.get("method"))
        await write_line(_answer(request_id, result))
        return True

    async def to_sdk(line: bytes, message: JsonObject) -> None:
        request_id = message.get("id")
        fast_path: ToolCallFastPath | None = sdk["fast"]
        if fast_path is not None and fast_path.take_message(message):
            if _valid_id(request_id):
                ids.hold(request_id, FAST)
            return
        types = sdk["types"]
        try:
            parsed = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            ids.release(request_id, SDK)
            await refuse(invalid_message(message, exc))
            return
        if isinstance(parsed, types.JSONRPCRequest):
            ids.hold(parsed.id, SDK)
        await send_to_sdk(parsed, message)
        await ask_own_list(message)

    async def send_to_sdk(parsed: Any, message: JsonObject) -> None:
        request_id = message.get("id")
        if _valid_id(request_id) and isinstance(message.get("method"), str):  # a request: its answer may be kept
            watch = early.watch(message)
            if watch is not None:
                watched[_same_id(request_id)] = watch
        await read_send.send(sdk["message"](parsed))

    async def ask_own_list(after: JsonObject | None) -> None:
        # The list this session would get now: kept for the next start, and compared with an early answer (the
        # server tells the client when they differ).
        request = early.own_list_request(after)
        if request is not None:
            await send_to_sdk(sdk["types"].jsonrpc_message_adapter.validate_python(request, by_name=False), request)

    async def hand_over() -> None:
        """Give the SDK what came before it, in order: the initialize answered early (as the proxy's own request,
        its answer kept here), then every line held back; from then on lines go to the SDK as they come."""
        for replay in early.replay():
            await send_to_sdk(sdk["types"].jsonrpc_message_adapter.validate_python(replay, by_name=False), replay)
        while held_back:
            line, message = held_back.pop(0)
            await to_sdk(line, message)
        handed_over.set()
        await ask_own_list(None)

    async def write_lines() -> None:
        types = sdk["types"]
        async with write_recv:
            async for message in write_recv:
                outgoing = message.message
                if isinstance(outgoing, (types.JSONRPCResponse, types.JSONRPCError)):
                    ids.release(outgoing.id, SDK)
                    watch = watched.pop(_same_id(outgoing.id), None)
                    if watch is not None and isinstance(outgoing, types.JSONRPCResponse):
                        keep(watch, outgoing.result)
                    if outgoing.id in OWN_REQUESTS:
                        continue  # the proxy's own request: its answer is not the client's
                data = outgoing.model_dump_json(by_alias=True, exclude_unset=True)
                writer.write(data.encode() + b"\n")
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    return

    def keep(watch: Watch, result: JsonObject) -> None:
        listed = early.keep(watch, result)
        if listed is not None and sdk["listed"] is not None:
            # A task of its own: `listed` may tell the client the list changed, which is written by this very loop.
            tg.start_soon(sdk["listed"], *listed)

    def open_sdk(fast_path: ToolCallFastPath | None, listed: Listed | None) -> Streams:
        import mcp_types
        from mcp.shared.message import SessionMessage

        sdk.update(fast=fast_path, listed=listed, types=mcp_types, message=SessionMessage)
        if fast_path is not None:
            fast_path.attach(tg, write_line, on_done=lambda request_id: ids.release(request_id, FAST))
        tg.start_soon(write_lines)
        tg.start_soon(hand_over)
        return read_recv, write_send

    link = WireLink(open_sdk, early)
    try:
        async with anyio.create_task_group() as tg:  # open_sdk starts its tasks here too
            tg.start_soon(read_lines)
            try:
                yield link
            finally:
                tg.cancel_scope.cancel()
    finally:
        with suppress(Exception):
            transport.close()


@asynccontextmanager
async def _threaded_streams(wire: WireFds) -> AsyncIterator[WireLink]:
    """A regular file or a terminal: the SDK's own threaded stdio, with no first answers."""
    from mcp.server.stdio import stdio_server

    inp = anyio.wrap_file(io.TextIOWrapper(os.fdopen(wire.read_fd, "rb"), encoding="utf-8", errors="replace"))
    out = anyio.wrap_file(io.TextIOWrapper(os.fdopen(wire.write_fd, "wb"), encoding="utf-8"))
    async with stdio_server(stdin=inp, stdout=out) as streams:
        yield WireLink(lambda _fast_path, _listed: streams)
