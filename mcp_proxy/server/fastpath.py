"""`tools/call` answered without the SDK's per-message machinery.

Every message through the SDK's server is validated into pydantic models on the way in, dispatched
through its runner and middleware, and validated and serialised again on the way out. For the one
request a proxy serves thousands of times, that is most of what the proxy adds to a call (and on a
2-core laptop three Python processes share the CPU). So once the client has completed the handshake,
a plain `tools/call` line is parsed with `json`, checked by hand, run through the same call pipeline as
the SDK path (server/pipeline.py), and its result written back as one JSON line.

Everything else takes the SDK path: requests before the handshake and on the stateless 2026-07-28 era,
calls that ask for progress, every other method, and lines that do not check out (the SDK then answers
them with its own errors). Lines reach `take_message` already screened by the wire (server/wire.py): valid
UTF-8 JSON objects, nested at most 64 deep, with no request id still in flight.

Results are passed on as the upstream sent them, after the shape check the SDK's validation would
insist on; the SDK path does not trim results per version either (tests/gateway/test_fastpath.py holds
the two paths to the same answers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from mcp_proxy.jsonline import json_line, loads_strict, valid_id
from mcp_proxy.server.call import CallResult, JsonObject, RequestId, ToolCall
from mcp_proxy.server.client import ClientLink, SessionChannel
from mcp_proxy.upstreams.base import error_result

log = logging.getLogger(__name__)

FAST_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
INTERNAL_ERROR = -32603

WriteLine = Callable[[bytes], Awaitable[None]]
RunCall = Callable[[ToolCall], Awaitable[CallResult]]
Done = Callable[[RequestId], None]


class ToolCallFastPath:
    def __init__(self, link: ClientLink, run: RunCall) -> None:
        self._link = link
        self._run_call = run
        self._inflight: dict[RequestId, anyio.CancelScope] = {}
        self._tg: TaskGroup | None = None
        self._write: WriteLine | None = None
        self._on_done: Done | None = None

    def attach(self, task_group: TaskGroup, write_line: WriteLine, on_done: Done | None = None) -> None:
        """Start taking lines: calls run in `task_group`, answers go out through `write_line`, and `on_done`
        hears of each request that is finished here (answered or cancelled), so its id is free again."""
        self._tg = task_group
        self._write = write_line
        self._on_done = on_done

    def _open(self) -> bool:
        session = self._link.session
        return self._tg is not None and session is not None and \
            getattr(session, "protocol_version", None) in FAST_VERSIONS

    def take(self, line: bytes) -> bool:
        """Handle `line` here (True), or leave it to the SDK (False)."""
        if b'"tools/call"' not in line and b'"notifications/cancelled"' not in line:
            return False
        if not self._open():
            return False
        try:
            message = loads_strict(line)
        except ValueError:
            return False  # the SDK answers what is not JSON
        return isinstance(message, dict) and self.take_message(message)

    def take_message(self, message: JsonObject) -> bool:
        """`take` for a line the wire has parsed and screened already (server/wire.py: screen)."""
        method = message.get("method")
        if method not in ("tools/call", "notifications/cancelled") or message.get("jsonrpc") != "2.0":
            return False
        if not self._open():
            return False
        if method == "notifications/cancelled":
            return self._cancel(message)
        if method != "tools/call" or not valid_id(message.get("id")):
            return False
        params = message.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return False
        arguments = params.get("arguments")
        meta = params.get("_meta")
        if arguments is not None and not isinstance(arguments, dict):
            return False
        if meta is not None and (not isinstance(meta, dict) or "progressToken" in meta):
            return False  # progress is relayed by the SDK path
        if message["id"] in self._inflight:
            return False  # the wire refuses a duplicate id in flight first (server/wire.py: RequestIds)
        scope = anyio.CancelScope()
        self._inflight[message["id"]] = scope
        assert self._tg is not None  # _open() checked it
        self._tg.start_soon(self._run, message["id"], params["name"], arguments, meta, scope)
        return True

    def _cancel(self, message: JsonObject) -> bool:
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        scope = self._inflight.get(request_id) if valid_id(request_id) else None
        if scope is None:
            return False  # not one of ours: the SDK's dispatcher knows it
        scope.cancel()  # the upstream call is cancelled with it, and told so
        return True

    async def _run(self, request_id: RequestId, name: str, arguments: JsonObject | None, meta: JsonObject | None,
                   scope: anyio.CancelScope) -> None:
        session = self._link.session
        assert session is not None  # _open() checked it
        result: CallResult | None = None
        try:
            with scope:
                result = await self._run_call(ToolCall(name, arguments or {}, request_id,
                                                       SessionChannel(session, request_id), meta=meta))
        finally:
            del self._inflight[request_id]
            if self._on_done is not None:
                self._on_done(request_id)
        if scope.cancelled_caught or result is None:
            return  # a cancelled request gets no answer
        try:
            line = json_line({"jsonrpc": "2.0", "id": request_id, "result": _as_wire(result)})
        except Exception:
            log.exception("could not encode the result of %s", name)
            line = json_line({"jsonrpc": "2.0", "id": request_id, "error": {
                "code": INTERNAL_ERROR, "message": "The proxy could not encode this result; check its log."}})
        assert self._write is not None
        try:
            await self._write(line)
        except (OSError, ConnectionError, anyio.BrokenResourceError):
            log.debug("the client went away before the answer to %r", request_id)


def _as_wire(result: CallResult) -> JsonObject:
    if not isinstance(result, dict):
        # The fast path serves only handshake-era clients, whose results carry no resultType (the SDK path
        # leaves it out too, and the two paths answer alike).
        return result.model_dump(by_alias=True, exclude_none=True, exclude={"result_type"}, mode="json")
    if _looks_like_result(result):
        # An upstream on the 2026-07-28 era tags its results (`resultType`); a handshake-era client's do not.
        return {k: v for k, v in result.items() if k != "resultType"} if "resultType" in result else result
    return _as_wire(error_result("The upstream returned a result that is not valid MCP; the proxy cannot pass it "
                                 "on. Report this to the server's maintainers."))


def _looks_like_result(result: JsonObject) -> bool:
    """The shape the SDK's validation would insist on, checked cheaply: content items are typed objects."""
    content = result.get("content")
    return isinstance(content, list) and all(isinstance(c, dict) and isinstance(c.get("type"), str)
                                             for c in content) and \
        isinstance(result.get("isError", False), bool) and \
        isinstance(result.get("structuredContent", {}), dict)

