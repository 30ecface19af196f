"""A stdio transport for local upstream servers that the proxy fully controls.

Why our own instead of the SDK's `stdio_client`: the proxy must be gone within
3 s of SIGTERM with no child left behind, even when a child ignores EOF and
SIGTERM. The SDK's teardown can take 4 s and hides the child's pid, so an
emergency exit could orphan it (children run in their own session). Here every
child's process group is registered, teardown is bounded (EOF, 1 s, SIGTERM to
the group, 1 s, SIGKILL), and `kill_all_children()` is the last resort before
`os._exit`. POSIX only; Windows uses the SDK's transport (its Job Objects reap
children when the proxy dies).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.stdio import StdioServerParameters, get_default_environment
from mcp.shared.message import SessionMessage

log = logging.getLogger(__name__)

EOF_GRACE = 1.0
TERM_GRACE = 1.0
_live_groups: set[int] = set()


def live_process_groups() -> frozenset[int]:
    """The process groups of stdio upstreams still running."""
    return frozenset(_live_groups)


def kill_all_children() -> None:
    """SIGKILL every child process group still registered (emergency exit path)."""
    for pgid in list(_live_groups):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _live_groups.discard(pgid)


async def _stop(process: anyio.abc.Process) -> None:
    with suppress(Exception):
        if process.stdin is not None:
            await process.stdin.aclose()
    with anyio.move_on_after(EOF_GRACE):
        await process.wait()
        return
    for sig, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 2.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with anyio.move_on_after(grace):
            await process.wait()
            return


@asynccontextmanager
async def stdio_transport(params: StdioServerParameters, errlog: Any = None) -> AsyncIterator[tuple[Any, Any]]:
    if sys.platform == "win32":  # pragma: no cover
        from mcp.client.stdio import stdio_client

        async with stdio_client(params) as streams:
            yield streams
        return

    env = {**get_default_environment(), **(params.env or {})}
    process = await anyio.open_process(
        [params.command, *params.args], env=env, cwd=params.cwd, stderr=errlog if errlog is not None else sys.stderr,
        start_new_session=True,
    )
    _live_groups.add(process.pid)
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        assert process.stdout is not None
        buffer = b""
        async with read_send:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                async for chunk in process.stdout:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError as exc:
                            await read_send.send(exc)  # junk on the child's stdout: reported, not fatal
                            continue
                        await read_send.send(SessionMessage(message))

    async def writer() -> None:
        assert process.stdin is not None
        async with write_recv:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for message in write_recv:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode())

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            try:
                yield read_recv, write_send
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
                tg.cancel_scope.cancel()
    finally:
        _live_groups.discard(process.pid)
        for stream in (read_send, read_recv, write_send, write_recv):
            stream.close()
