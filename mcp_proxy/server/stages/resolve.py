"""Resolve: the exposed name to its catalog entry and upstream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import anyio

from mcp_proxy.catalog.catalog import Entry
from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.upstreams.base import Upstream


class ToolLookup(Protocol):
    def lookup(self, exposed: str) -> Entry | None: ...

    def has_upstream(self, upstream: str) -> bool: ...


async def first_outcome(upstream: Upstream, timeout: float) -> None:
    """Wait until the upstream has connected once or its first attempt failed (it then retries with backoff,
    which a waiting client should not sit through), at most `timeout` seconds."""
    status = upstream.status
    with anyio.move_on_after(timeout):
        while not status.connected_once.is_set() and status.state not in ("reconnecting", "failed"):
            with anyio.move_on_after(0.05):
                await status.connected_once.wait()


class Resolve:
    """Finds the tool. A tool of an upstream whose list is not known yet (no cache, still connecting) is
    waited for, bounded by that upstream's connect timeout; a tool that cannot be found is denied with
    the reason."""

    def __init__(self, catalog: ToolLookup, upstreams: Mapping[str, Upstream]) -> None:
        self._catalog = catalog
        self._upstreams = upstreams

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        entry = self._catalog.lookup(call.name)
        owner = self._upstreams.get(call.name.split("_", 1)[0])
        if entry is None and owner is not None and not self._catalog.has_upstream(owner.key):
            await first_outcome(owner, owner.cfg.connect_timeout)
            entry = self._catalog.lookup(call.name)
        if entry is None:
            if owner is not None and not self._catalog.has_upstream(owner.key):
                # Its tools are not known because it has not answered yet: say why, not "no such tool".
                reason = owner.status.detail or "it has not answered yet"
                return call.deny("upstream_unavailable", reason,
                                 f"The upstream '{owner.key}' is not available, so its tools are unknown: {reason}. "
                                 "Try again later; `mcp-access-proxy doctor` checks it.")
            return call.deny("unknown_tool", f"no tool named {call.name!r}",
                             f"There is no tool named '{call.name}'. It may have been removed or renamed upstream. "
                             "List the tools again and use a name from that list.")
        call.entry = entry
        call.upstream = self._upstreams.get(entry.upstream)
        call.audit_fields.update({"upstream": entry.upstream, "upstream.tool": entry.name})
        return await call_next(call)
