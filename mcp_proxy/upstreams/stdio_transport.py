"""A stdio transport for local upstream servers that the proxy fully controls.

Why our own instead of the SDK's `stdio_client`: the proxy must be gone within
3 s of SIGTERM with no child left behind, even when a child ignores EOF and
SIGTERM. The SDK's teardown can take 4 s and hides the child's pid, so an
emergency exit could orphan it (children run in their own session). Here every
child's process group is registered, teardown is bounded (EOF, 1 s, SIGTERM to
the group, 1 s, SIGKILL), and `kill_all_children()` is the last resort before
`os._exit`. POSIX only; Windows uses the SDK's transport (its Job Objects reap
children when the proxy dies).

Bounded: the child's stdout is split into lines in time linear in its size,
and a line over `max_message_bytes` is dropped as it streams by (never held
whole); the request it answered fails with `raw.too_large_error`, so one
oversized answer costs that call only. The child's stderr goes to the proxy's
log, each line labelled with the upstream, at most `STDERR_BURST` lines at
once and `STDERR_RATE` a second after that (a child writes to a pipe the proxy
always drains, so a flood neither blocks it nor fills the host's log); the
last lines of a flood are logged when it ends, since they usually say why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.stdio import StdioServerParameters
from mcp.shared.message import SessionMessage

from mcp_proxy.jsonline import loads_strict, valid_id
from mcp_proxy.upstreams.children import child_environment, is_exiting, reaped, start_child, take_early
from mcp_proxy.upstreams.raw import too_large_error
from mcp_proxy.upstreams.stdio_lane import ID_MARK, StdioLane

log = logging.getLogger(__name__)

EOF_GRACE = 1.0
TERM_GRACE = 1.0
# When the proxy itself is exiting because its client closed stdin, the client waits on us: children get EOF,
# a moment to leave, then SIGTERM and SIGKILL, as the MCP spec's stdio shutdown describes, without the proxy
# waiting a second per step (an idle Python server needs ~0.2 s just to exit, and many wait on open streams).
EXIT_EOF_GRACE = 0.04
EXIT_TERM_GRACE = 0.03
ID_WINDOW = 4096  # bytes kept of each end of an oversized line: where its JSON-RPC id is
STDERR_LINE = 2000  # bytes of one stderr line that are logged
STDERR_BURST = 200  # stderr lines logged at once ...
STDERR_RATE = 20.0  # ... and per second after that
STDERR_TAIL = 20  # the last lines of a flood, logged when it ends


@dataclass(frozen=True)
class Oversized:
    """A line that went over the limit: its size and the first and last `keep` bytes."""

    size: int
    head: bytes
    tail: bytes


class LineFramer:
    """Splits a byte stream into lines of at most `limit` bytes (newline excluded).

    Each byte is looked at and copied a bounded number of times, and at most `limit` bytes are held: a
    longer line is given back as `Oversized`, keeping only its two ends. (Joining the buffer with each
    new chunk and splitting it again, as before, was quadratic: 45 s for an 80 MB line.)"""

    def __init__(self, limit: int, keep: int = ID_WINDOW) -> None:
        self.limit = limit
        self.keep = keep
        self._parts: list[bytes] = []
        self._size = 0
        self._over: Oversized | None = None

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        lines: list[bytes | Oversized] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            self._add(chunk[start:] if end < 0 else chunk[start:end])
            if end < 0:
                return lines
            lines.append(self._take())
            start = end + 1

    def flush(self) -> list[bytes | Oversized]:
        """The last line, if the stream ended without a newline."""
        return [self._take()] if self._size or self._over else []

    def _add(self, piece: bytes) -> None:
        if not piece:
            return
        if self._over is not None:
            over = self._over
            head = over.head + piece[: self.keep - len(over.head)] if len(over.head) < self.keep else over.head
            tail = (over.tail + piece)[max(0, len(over.tail) + len(piece) - self.keep):]
            self._over = Oversized(over.size + len(piece), head, tail)
        elif self._size + len(piece) <= self.limit:
            self._parts.append(piece)
            self._size += len(piece)
        else:
            parts = [*self._parts, piece]
            self._over = Oversized(self._size + len(piece), _first(parts, self.keep),
                                   _first((p[::-1] for p in reversed(parts)), self.keep)[::-1])
            self._parts, self._size = [], 0

    def _take(self) -> bytes | Oversized:
        line: bytes | Oversized = self._over if self._over is not None else b"".join(self._parts)
        self._parts, self._size, self._over = [], 0, None
        return line


def _first(parts: Iterable[bytes], n: int) -> bytes:
    """The first `n` bytes of the parts joined, without joining them all."""
    out = bytearray()
    for part in parts:
        if len(out) >= n:
            break
        out += part[: n - len(out)]
    return bytes(out)


_ID_AT_END = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?}\s*$')


def request_id_of(line: Oversized) -> types.RequestId | None:
    """The JSON-RPC id of an oversized message, from its first or last bytes; None when neither holds it
    (a notification, or an id between two large members)."""
    text = line.head.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if text[i:i + 1] == "{":
        i += 1
        # The object's members in order, as long as each fits in the head: a large one (or one too deep for
        # the decoder, or not JSON at all) ends the search, never the reader.
        with suppress(ValueError, IndexError, RecursionError):
            while True:
                key, i = decoder.raw_decode(text, i + len(text[i:]) - len(text[i:].lstrip()))
                i += len(text[i:]) - len(text[i:].lstrip())
                if text[i] != ":":
                    break
                i += 1
                i += len(text[i:]) - len(text[i:].lstrip())
                value, i = decoder.raw_decode(text, i)
                if key == "id":
                    return value if valid_id(value) else None
                i += len(text[i:]) - len(text[i:].lstrip())
                if text[i] != ",":
                    break
                i += 1
    found = _ID_AT_END.search(line.tail)
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))  # a string may hold a bad escape or bytes that are not UTF-8
    except ValueError:
        return None
    return value if isinstance(value, (int, str)) else None


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


async def _relay_stderr(stream: anyio.abc.ByteReceiveStream, label: str) -> None:
    """Log the child's stderr, labelled and capped (a token bucket of lines); see the module docstring."""
    framer = LineFramer(STDERR_LINE, keep=0)
    allowance, refilled = float(STDERR_BURST), time.monotonic()
    dropped: deque[str] = deque(maxlen=STDERR_TAIL)
    n_dropped = 0

    def show(item: bytes | Oversized) -> None:
        nonlocal allowance, refilled, n_dropped
        raw = item.head + f" [... {item.size} bytes]".encode() if isinstance(item, Oversized) else item
        text = raw.decode("utf-8", "replace").rstrip()
        if not text:
            return
        now = time.monotonic()
        allowance, refilled = min(float(STDERR_BURST), allowance + (now - refilled) * STDERR_RATE), now
        # Once dropping, resume only with a second's worth of lines, so that a steady flood gives a line
        # about the dropped ones each second, not one with every line let through.
        if allowance < (STDERR_RATE if n_dropped else 1):
            n_dropped += 1
            dropped.append(text)
            return
        allowance -= 1
        if n_dropped:
            log.warning("upstream %s: %d lines of stderr dropped (too many)", label, n_dropped)
            n_dropped = 0
            dropped.clear()
        log.info("upstream %s stderr: %s", label, text)

    try:
        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            async for chunk in stream:
                for item in framer.feed(chunk):
                    show(item)
        for item in framer.flush():
            show(item)
    finally:
        if n_dropped:
            log.warning("upstream %s: %d lines of stderr dropped (too many); the last %d follow", label, n_dropped,
                        len(dropped))
            for text in dropped:
                log.info("upstream %s stderr: %s", label, text)


async def _stop(process: anyio.abc.Process) -> None:
    eof_grace, term_grace = (EXIT_EOF_GRACE, EXIT_TERM_GRACE) if is_exiting() else (EOF_GRACE, TERM_GRACE)
    with suppress(Exception):
        if process.stdin is not None:
            await process.stdin.aclose()
    with anyio.move_on_after(eof_grace):
        await process.wait()
        return
    for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, 2.0)):
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        with anyio.move_on_after(grace):
            await process.wait()
            return


@asynccontextmanager
async def stdio_transport(params: StdioServerParameters, *, label: str, max_message_bytes: int,
                          lane: StdioLane | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """The child's streams for an SDK client; `label` names the upstream in the log. `lane`, when given, is
    bound to the child's pipe: the requests sent through it are answered there, not to the SDK."""
    if sys.platform == "win32":  # pragma: no cover - no lane: every request goes through the SDK
        from mcp.client.stdio import stdio_client

        async with stdio_client(params) as streams:
            yield streams
        return

    argv, env, cwd = (params.command, *params.args), child_environment(params.env), params.cwd
    cwd = str(cwd) if cwd is not None else None
    process = take_early(label, argv, env, cwd) or await start_child(argv, env, cwd)
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def deliver(line: bytes | Oversized) -> None:
        if isinstance(line, Oversized):
            request_id = request_id_of(line)
            log.warning("upstream %s: dropped a message of %s, over max_message_bytes (%s)%s", label,
                        _size(line.size), _size(max_message_bytes),
                        "" if request_id is not None else "; it named no request, so a call may wait for its "
                                                          "call_timeout")
            if request_id is not None:
                too_large = too_large_error(line.size, max_message_bytes)
                if lane is not None and lane.owns(request_id):
                    lane.fail(str(request_id), too_large.code, too_large.message, too_large.data)
                    return
                await read_send.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=request_id,
                                                                       error=too_large)))
            return
        if not line.strip():
            return
        if lane is not None and lane.waiting and ID_MARK in line:
            # An answer to the lane's request is taken here, before the SDK's parser; anything else goes on to
            # the SDK as before (a line without the lane's id mark is not parsed twice). A line that is not JSON
            # (NaN, nested too deep) but names a lane request ends that request now: the SDK would drop it, and
            # the call would wait its whole call_timeout.
            try:
                if lane.take(loads_strict(line)):
                    return
            except (ValueError, RecursionError):
                request_id = request_id_of(Oversized(len(line), line[:ID_WINDOW], line[-ID_WINDOW:]))
                if lane.owns(request_id):
                    lane.fail_not_json(str(request_id))
                    return
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValueError as exc:
            await read_send.send(exc)  # junk on the child's stdout: reported, not fatal
            return
        await read_send.send(SessionMessage(message))

    async def reader() -> None:
        assert process.stdout is not None
        framer = LineFramer(max_message_bytes)
        async with read_send:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                async for chunk in process.stdout:
                    for line in framer.feed(chunk):
                        await deliver(line)
                for line in framer.flush():
                    await deliver(line)
            if lane is not None:
                lane.close()

    async def writer() -> None:
        assert process.stdin is not None
        async with write_recv:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for message in write_recv:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode())

    if lane is not None and process.stdin is not None:
        # Beside `writer`, on the same pipe: on asyncio (the only loop `serve` runs) a send writes the whole line
        # at once and concurrent drains are allowed; trio would refuse two senders.
        lane.attach(process.stdin.send)

    stderr_done = anyio.Event()

    async def stderr() -> None:
        assert process.stderr is not None
        try:
            await _relay_stderr(process.stderr, label)
        finally:
            stderr_done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            tg.start_soon(stderr)
            try:
                yield read_recv, write_send
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)
                    # The child's last words (often why it failed), unless the proxy is leaving.
                    with anyio.move_on_after(0.0 if is_exiting() else 0.5):
                        await stderr_done.wait()
                tg.cancel_scope.cancel()
    finally:
        if lane is not None:
            lane.close()
        reaped(process)
        for stream in (read_send, read_recv, write_send, write_recv):
            stream.close()
