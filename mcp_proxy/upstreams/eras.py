"""An MCP upstream's protocol era: how to connect given what was remembered, and what to remember.

The proxy probes `server/discover` (the stateless 2026-07-28 era when offered), else `initialize`, and
remembers the verdict in the tool cache so the next start does not probe. This module holds the rules;
upstreams/mcp_upstream.py applies them to a connection.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import mcp_types as types
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp_proxy.errors import UpstreamError

# How long the `server/discover` probe waits (the SDK's own limit is 10 s): a handshake-era server that never
# answers an unknown request costs this much once, before the verdict is remembered. Well under the first
# tools/list's wait (5 s), so that such an upstream's tools are in the first answer.
PROBE_TIMEOUT = 2.0
# A remembered handshake-era verdict is probed again after this long: a server that has since learnt the
# stateless era still answers `initialize`, so nothing else would tell.
LEGACY_VERDICT_LIFETIME = 7 * 24 * 3600.0
# How long the first answer under a remembered 2026-07-28 verdict may take before the verdict is doubted
# (a downgraded server that ignores requests before `initialize` would otherwise hold the connect).
VERDICT_CHECK_TIMEOUT = 10.0
LEGACY = "legacy"


class EraMemory(Protocol):
    """Where an upstream's protocol-era verdict is remembered between starts (catalog/cache.py: CachedEra).

    A verdict is a JSON object: {"era": "legacy", "checked": epoch seconds} or {"era": "2026-07-28",
    "discover": the server's DiscoverResult, "checked": ...}. Both methods do file I/O (run them in a thread)."""

    def recall(self) -> dict[str, Any] | None: ...

    def remember(self, verdict: dict[str, Any]) -> None: ...


class StaleVerdict(UpstreamError):
    """The remembered protocol era did not fit the server any more (it was upgraded or downgraded)."""

    error_type = "stale_era_verdict"


def connect_options(protocol: str, verdict: dict[str, Any] | None) -> tuple[str, types.DiscoverResult | None]:
    """The SDK client's mode (and a prior DiscoverResult) for an upstream whose config says `protocol`
    ("auto" | "legacy") and whose remembered verdict is `verdict`: pinned legacy, a fresh remembered era, or
    "auto" (probe)."""
    if protocol == LEGACY:  # pinned in the config: the handshake era, never probed
        return LEGACY, None
    if verdict is None:
        return "auto", None
    era = verdict.get("era")
    if era == LEGACY:
        checked = verdict.get("checked")
        fresh = isinstance(checked, (int, float)) and 0 <= time.time() - checked < LEGACY_VERDICT_LIFETIME
        return (LEGACY, None) if fresh else ("auto", None)
    if era in MODERN_PROTOCOL_VERSIONS:
        try:
            prior = types.DiscoverResult.model_validate(verdict.get("discover"))
        except ValidationError:
            return "auto", None
        if era in prior.supported_versions:
            return era, prior
    return "auto", None


def verdict_for(era: str, discover: types.DiscoverResult | None) -> dict[str, Any]:
    """What to remember of a probed connection that speaks `era`."""
    verdict: dict[str, Any] = {"era": era, "checked": round(time.time())}
    if discover is not None:
        verdict["discover"] = discover.model_dump(by_alias=True, mode="json", exclude_none=True)
    return verdict
