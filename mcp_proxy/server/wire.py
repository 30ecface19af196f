"""The protocol streams on the claimed stdin/stdout descriptors: lines in (screened by server/screen.py), to
the fast path, the first answers or the SDK's server, and lines out.

Why not the SDK's `stdio_server`: it reads and writes through worker threads,
three thread hops per request/response, which is a large share of the proxy's
per-call cost. When the descriptors are pipes or sockets (how every client
launches us) they are driven by the event loop directly; a regular file or a
terminal falls back to the SDK's threaded path.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcp_proxy.jsonline import json_line, valid_id
from mcp_proxy.server.early_session import OWN_REQUESTS, EarlySession, Watch
from mcp_proxy.server.screen import (
    CHUNK,
    DEFAULT_MAX_MESSAGE_BYTES,
    INVALID_REQUEST,
    LineReader,
    Refusal,
    TooLong,
    invalid_message,
    screen,
)
from mcp_proxy.stdio_guard import WireFds

if TYPE_CHECKING:  # the SDK is loaded while the first answers go out (server/first_answers.py), not before
    from mcp.shared.message import SessionMessage

    from mcp_proxy.server.call import JsonObject, RequestId
    from mcp_proxy.server.fastpath import ToolCallFastPath
    from mcp_proxy.server.first_answers import FirstAnswers

# What the SDK's server reads (messages, or the error a line caused) and writes.
Streams = tuple[MemoryObjectReceiveStream["SessionMessage | Exception"], MemoryObjectSendStream["SessionMessage"]]

log = logging.getLogger(__name__)

FAST, SDK = "fast", "sdk"


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
        if not valid_id(request_id):
            return
        key = _same_id(request_id)
        if self._held.get(key) == path:
            del self._held[key]


def _is_pipe_or_socket(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


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
async def wire_streams(wire: WireFds, *, first: FirstAnswers, on_eof: Callable[[], Awaitable[None]] | None = None,
                       max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> AsyncIterator[WireLink]:
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
                    if not handed_over.is_set() and not any(valid_id(m.get("id")) for _, m in held_back):
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
        held: RequestId | None = request_id if valid_id(request_id) and isinstance(message.get("method"), str) \
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
        await write_line(json_line({"jsonrpc": "2.0", "id": request_id, "result": result}))
        return True

    async def to_sdk(line: bytes, message: JsonObject) -> None:
        request_id = message.get("id")
        fast_path: ToolCallFastPath | None = sdk["fast"]
        if fast_path is not None and fast_path.take_message(message):
            if valid_id(request_id):
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
        if valid_id(request_id) and isinstance(message.get("method"), str):  # a request: its answer may be kept
            watch = early.watch(message)
            if watch is not None:
                watched[_same_id(request_id)] = watch
        await read_send.send(sdk["message"](parsed))

    async def send_own(request: JsonObject) -> None:
        """A request of the proxy's own to its SDK server (its answer stays here: OWN_REQUESTS)."""
        await send_to_sdk(sdk["types"].jsonrpc_message_adapter.validate_python(request, by_name=False), request)

    async def ask_own_list(after: JsonObject | None) -> None:
        # The list this session would get now: kept for the next start, and compared with an early answer (the
        # server tells the client when they differ).
        request = early.own_list_request(after)
        if request is not None:
            await send_own(request)

    async def hand_over() -> None:
        """Give the SDK what came before it, in order: the initialize answered early (as the proxy's own request,
        its answer kept here), then every line held back; from then on lines go to the SDK as they come."""
        for replay in early.replay():
            await send_own(replay)
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
