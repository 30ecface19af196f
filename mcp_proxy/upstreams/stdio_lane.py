"""Tool calls on a stdio upstream's pipe without the MCP SDK's session: written and read as plain JSON.

Why: a proxy forwards a call's result unchanged, so building the SDK's models for every request and answer
(its dispatcher, a memory stream per request, pydantic validation of the answer line, a span, a timer) was
about a quarter of the proxy's CPU per call. The SDK still owns the connection: the handshake, tool lists,
pings, the upstream's own requests and notifications all go its way. Only the requests sent through
`StdioLane.request` are answered here, recognised by their ids (`ID_PREFIX`, never an SDK id: those are
integers) before the SDK's parser sees the line. The answer is checked for shape here (an object result, or
an error with an integer code and a text message); the result's content is validated once on the way out to
the client, as for every upstream.

The contract is the SDK dispatcher's, so the caller handles both the same way: an error answer, a timeout
(`REQUEST_TIMEOUT`, after a courtesy `notifications/cancelled`), a closed pipe (`CONNECTION_CLOSED`) and an
answer over `max_message_bytes` (the transport's `too_large_error`) are raised as `MCPError`; a caller that
is cancelled sends `notifications/cancelled` too. What only the lane knows is raised as a type of its own,
which an upstream cannot imitate with an error code: `NotSent` (the call did not run), `AnswerNotJson`.
Progress for a request is relayed in the order it came, before the request's answer is returned, bounded
(`MAX_QUEUED_PROGRESS`, `RELAY_GRACE`) so that neither a flood nor a slow relay holds the answer up.

Standard library, anyio and the SDK's error type and codes only: the transport imports it for every stdio
upstream.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from mcp_proxy.jsonline import json_line

log = logging.getLogger(__name__)

ID_PREFIX = "mcp-access-proxy/"
# In every line that answers a lane request or reports its progress (both carry an id of ID_PREFIX), written
# without the "/" that some encoders write as "\/": the transport parses only such lines here first.
ID_MARK = ID_PREFIX.rstrip("/").encode()
CANCEL_WRITE_TIMEOUT = 1.0  # how long a courtesy cancel may take to write before it is given up
# Progress that arrives while the relay is behind is kept up to this many notifications, the oldest dropped
# first: an upstream that floods progress costs bounded memory, and the client still sees the latest.
MAX_QUEUED_PROGRESS = 100
# Once the answer is in, the progress still queued before it gets this long to be relayed in all: a client
# that does not read its progress does not hold the answer up (the SDK's own limit, app.py: SETTLE).
RELAY_GRACE = 1.0


class NotSent(MCPError):
    """The pipe was closed before the request was written: the call did not run. A type of its own, not an
    error code, so that an upstream cannot send it."""

    def __init__(self) -> None:
        super().__init__(code=CONNECTION_CLOSED, message="Connection closed before the request was sent")


class AnswerNotJson(MCPError):
    """The upstream answered with a line that is not JSON (NaN, nested too deep to read)."""

    def __init__(self) -> None:
        super().__init__(code=-32700, message="the answer was not valid JSON")

ProgressFn = Callable[[float, "float | None", "str | None"], Awaitable[None]]
SendLine = Callable[[bytes], Awaitable[None]]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Waiter:
    """One request in flight: what arrived for it (progress, then its answer), in order."""

    __slots__ = ("answered", "arrived", "on_progress", "progress_queued", "ready", "relaying")

    def __init__(self, on_progress: ProgressFn | None) -> None:
        self.on_progress = on_progress
        self.arrived: deque[tuple[str, Any]] = deque()
        self.ready = anyio.Event()
        self.answered = False  # the answer (or the end of the pipe) is in `arrived`
        self.progress_queued = 0
        self.relaying: anyio.CancelScope | None = None  # the relay under way, bounded once the answer is in

    def put(self, kind: str, value: Any) -> None:
        if self.answered:
            return  # the first end counts: a second answer, progress after it, the pipe closing after it
        if kind == "progress":
            if self.progress_queued >= MAX_QUEUED_PROGRESS:
                self.arrived.popleft()  # before the answer, everything queued is progress
                self.progress_queued -= 1
            self.progress_queued += 1
        else:
            self.answered = True
            if self.relaying is not None:
                self.relaying.deadline = min(self.relaying.deadline, anyio.current_time() + RELAY_GRACE)
        self.arrived.append((kind, value))
        self.ready.set()

    def queued_answer(self) -> tuple[str, Any] | None:
        """The answer, if it has come: the last thing queued once it has."""
        return self.arrived[-1] if self.answered and self.arrived else None


class StdioLane:
    """Requests written straight to one upstream's stdin; their answers taken from its stdout by `take`.

    Bound to a pipe by the transport (`attach`), closed with it (`close`); one lane serves one connection."""

    def __init__(self) -> None:
        self._send: SendLine | None = None
        self._pending: dict[str, _Waiter] = {}
        self._count = 0
        self._closed = False

    # -- the transport's side ---------------------------------------------------------------------------
    def attach(self, send: SendLine) -> None:
        self._send = send

    @property
    def attached(self) -> bool:
        return self._send is not None and not self._closed

    @property
    def waiting(self) -> bool:
        """Whether any request is in flight: only then is a line worth parsing here first."""
        return bool(self._pending)

    def owns(self, request_id: Any) -> bool:
        return isinstance(request_id, str) and request_id in self._pending

    def take(self, message: Any) -> bool:
        """Take a parsed stdout message if it is the answer to, or progress of, a request in flight."""
        if not isinstance(message, dict):
            return False
        if "method" not in message:
            request_id = message.get("id")
            waiter = self._pending.get(request_id) if isinstance(request_id, str) else None
            if waiter is None:
                return False
            waiter.put("answer", message)
            return True
        if message.get("method") != "notifications/progress" or "id" in message:
            return False
        params = message.get("params")
        token = params.get("progressToken") if isinstance(params, dict) else None
        waiter = self._pending.get(token) if isinstance(token, str) else None
        if waiter is None or waiter.on_progress is None:
            return False
        assert isinstance(params, dict)
        total, text = params.get("total"), params.get("message")
        if _number(params.get("progress")) and (total is None or _number(total)) and (text is None or isinstance(
                text, str)):
            waiter.put("progress", (params["progress"], total, text))
        return True  # malformed progress of ours is dropped, as the SDK drops it

    def fail(self, request_id: str, code: int, message: str, data: Any = None) -> None:
        """End a request in flight with an error the transport saw (an answer too large to read)."""
        waiter = self._pending.get(request_id)
        if waiter is not None:
            waiter.put("answer", {"error": {"code": code, "message": message, "data": data}})

    def fail_not_json(self, request_id: str) -> None:
        """End a request in flight whose answer line the transport could not read as JSON."""
        waiter = self._pending.get(request_id)
        if waiter is not None:
            waiter.put("not_json", None)

    def close(self) -> None:
        """The pipe is gone: every request in flight, and every later one, fails with CONNECTION_CLOSED."""
        self._closed = True
        for waiter in self._pending.values():
            waiter.put("closed", None)

    # -- the caller's side ------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    async def request(self, method: str, params: dict[str, Any], *, timeout: float,
                      on_progress: ProgressFn | None = None) -> dict[str, Any]:
        """Send a request and wait for its answer's result (a JSON object); see the module docstring."""
        if self._send is None or self._closed:
            raise NotSent
        self._count += 1
        request_id = f"{ID_PREFIX}{self._count}"
        if on_progress is not None:
            params = {**params, "_meta": {**(params.get("_meta") or {}), "progressToken": request_id}}
        line = json_line({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        waiter = _Waiter(on_progress)
        self._pending[request_id] = waiter
        try:
            try:
                await self._send(line)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                raise NotSent from None
            with anyio.move_on_after(timeout):
                return await self._answer(waiter)
            answered = waiter.queued_answer()
            if answered is not None:  # it came in time; a relay held it up
                return _outcome(*answered)
            await self._cancel(request_id, f"timed out after {timeout:g}s")
            raise MCPError(code=REQUEST_TIMEOUT, message=f"Request {method!r} timed out")
        except anyio.get_cancelled_exc_class():
            # A cancel for an id the upstream never saw (the send was cut short before writing) is ignored.
            with anyio.CancelScope(shield=True):
                await self._cancel(request_id, "caller cancelled")
            raise
        finally:
            self._pending.pop(request_id, None)

    async def _answer(self, waiter: _Waiter) -> dict[str, Any]:
        grace = math.inf  # once the answer is in, when the progress before it stops being relayed
        while True:
            await waiter.ready.wait()
            waiter.ready = anyio.Event()
            while waiter.arrived:
                kind, value = waiter.arrived.popleft()
                if kind != "progress":
                    return _outcome(kind, value)
                waiter.progress_queued -= 1
                if waiter.on_progress is None:
                    continue
                if waiter.answered and grace == math.inf:
                    grace = anyio.current_time() + RELAY_GRACE
                with anyio.CancelScope(deadline=grace) as waiter.relaying:
                    try:
                        await waiter.on_progress(*value)
                    except Exception:  # a relay that fails does not fail the call
                        log.exception("relaying an upstream's progress failed")
                waiter.relaying = None

    async def _cancel(self, request_id: str, reason: str) -> None:
        if self._send is None or self._closed:
            return
        line = json_line({"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": request_id, "reason": reason}})
        with anyio.move_on_after(CANCEL_WRITE_TIMEOUT), suppress(anyio.BrokenResourceError,
                                                                  anyio.ClosedResourceError, OSError):
            await self._send(line)


def _outcome(kind: str, value: Any) -> dict[str, Any]:
    """What a request ends with: its result, or the error of its answer or of the pipe, raised."""
    if kind == "closed":
        raise MCPError(code=CONNECTION_CLOSED, message="Connection closed")
    if kind == "not_json":
        raise AnswerNotJson
    return _result_of(value)


def _result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The result of an answer, or its error raised as MCPError. An answer of no valid shape gives an empty
    result, which the caller reports as not valid MCP."""
    error = answer.get("error")
    if "result" not in answer and isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        if isinstance(code, int) and not isinstance(code, bool):
            raise MCPError(code=code, message=message if isinstance(message, str) else "",
                           data=error.get("data"))
    result = answer.get("result")
    return result if isinstance(result, dict) and answer.get("jsonrpc", "2.0") == "2.0" else {}
