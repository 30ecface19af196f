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
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from mcp_proxy.stdio_guard import WireFds

if TYPE_CHECKING:
    from mcp_proxy.server.fastpath import ToolCallFastPath

# What the SDK's server reads (messages, or the error a line caused) and writes.
Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024 * 1024


def _is_pipe_or_socket(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def wire_streams(wire: WireFds, fast_path: ToolCallFastPath | None = None,
                       on_eof: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[Streams]:
    """(read stream, write stream) for the SDK's server. With `fast_path` (server/fastpath.py), the lines it
    takes are answered there, on the same pipe, and never reach the SDK. `on_eof` runs when the client
    closes stdin, before the SDK hears of it: calls in flight can still answer meanwhile."""
    if not (_is_pipe_or_socket(wire.read_fd) and _is_pipe_or_socket(wire.write_fd)):
        from mcp.server.stdio import stdio_server

        inp = anyio.wrap_file(io.TextIOWrapper(os.fdopen(wire.read_fd, "rb"), encoding="utf-8", errors="replace"))
        out = anyio.wrap_file(io.TextIOWrapper(os.fdopen(wire.write_fd, "wb"), encoding="utf-8"))
        async with stdio_server(stdin=inp, stdout=out) as streams:
            yield streams
        return

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire.read_fd, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(wire.write_fd, "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_lines() -> None:
        async with read_send:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):  # a line over MAX_LINE
                    await read_send.send(ValueError("message too large"))
                    continue
                except OSError:
                    return
                if not line:  # EOF: the client went away
                    if on_eof is not None:
                        await on_eof()
                    return
                if not line.strip():
                    continue
                if fast_path is not None and fast_path.take(line):
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValueError as exc:
                    await read_send.send(exc)
                    continue
                await read_send.send(SessionMessage(message))

    async def write_line(data: bytes) -> None:
        writer.write(data)  # one whole line per write(): lines from both paths never interleave
        await writer.drain()

    async def write_lines() -> None:
        async with write_recv:
            async for message in write_recv:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                writer.write(data.encode() + b"\n")
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    return

    try:
        async with anyio.create_task_group() as tg:
            if fast_path is not None:
                fast_path.attach(tg, write_line)
            tg.start_soon(read_lines)
            tg.start_soon(write_lines)
            try:
                yield read_recv, write_send
            finally:
                tg.cancel_scope.cancel()
    finally:
        with suppress(Exception):
            transport.close()
