"""The calls in flight: what a stop waits for, and whose upstream may talk to the user meanwhile.

Every call that passes the audit stage is registered here with the cancel scope it runs in. A stop
(SIGTERM, stdin closed) lets them finish for a bounded grace and then cancels the rest, so that each
is recorded `cancelled` rather than lost. An upstream's request toward the user (elicitation) is
relayed only while a call to an approved tool of that upstream is here.
"""

from __future__ import annotations

import anyio

from mcp_proxy.server.call import ToolCall

SETTLE_AFTER_CANCEL = 1.0  # seconds the cancelled calls get to write their records


class CallsInFlight:
    def __init__(self) -> None:
        self._calls: dict[ToolCall, anyio.CancelScope] = {}
        self._changed = anyio.Event()
        self.stopping = False

    def __len__(self) -> int:
        return len(self._calls)

    def enter(self, call: ToolCall, scope: anyio.CancelScope) -> None:
        self._calls[call] = scope

    def leave(self, call: ToolCall) -> None:
        self._calls.pop(call, None)
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def approved_call_to(self, upstream: str) -> ToolCall | None:
        """A call in flight that the policy allowed to a tool of `upstream`, if any."""
        for call in self._calls:
            if call.entry is not None and call.entry.upstream == upstream and call.allowed:
                return call
        return None

    async def _drained(self) -> None:
        while self._calls:
            await self._changed.wait()

    async def settle(self, grace: float) -> int:
        """Let the calls in flight finish within `grace` seconds, then cancel the rest and give them a moment
        to record how they ended. Returns how many were cancelled."""
        self.stopping = True
        with anyio.move_on_after(grace):
            await self._drained()
        left = list(self._calls.values())
        for scope in left:
            scope.cancel()
        with anyio.move_on_after(SETTLE_AFTER_CANCEL):
            await self._drained()
        return len(left)
