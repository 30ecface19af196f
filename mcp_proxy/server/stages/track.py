"""Track: each call is registered in flight, so that a stop can wait for it and then cancel it."""

from __future__ import annotations

import anyio

from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.server.inflight import CallsInFlight

STOPPED = ("The proxy stopped (its client closed it) while this call was running, so no result came back. A "
           "write may or may not have taken effect: check before repeating it.")
STOPPING = "The proxy is stopping, so the call was not made. Call it again once the client has restarted the proxy."


class TrackInFlight:
    def __init__(self, inflight: CallsInFlight) -> None:
        self._inflight = inflight

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        if self._inflight.stopping:
            return call.fail("stopping", STOPPING)
        with anyio.CancelScope() as scope:  # cancelled only by the stop, after its grace
            self._inflight.enter(call, scope)
            try:
                return await call_next(call)
            finally:
                self._inflight.leave(call)
        return call.fail("stopped", STOPPED, outcome="cancelled")
