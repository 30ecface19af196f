"""A policy drafted from the discovered catalog, so an administrator starts from the truth.

Every tool is listed as pending with its current definition hash and class.
With an existing document, reviewed entries whose hash still matches keep
their state; entries whose definition changed go back to pending with the new
hash (and a note of the old one), and toolsets, groups and profiles are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.document import SCHEMA_VERSION, format_time


def make_draft(facts: Iterable[ToolFacts], now: float, *, days: float = 30.0, auto_approve: str = "none",
               trust_annotations: Iterable[str] = (), existing: dict[str, Any] | None = None) -> dict[str, Any]:
    issued = datetime.fromtimestamp(now, UTC)
    trusted = sorted(set(trust_annotations))
    old_tools: dict[str, Any] = dict((existing or {}).get("tools") or {})
    tools: dict[str, Any] = {}
    for f in sorted(facts, key=lambda f: f.key):
        entry: dict[str, Any] = {"state": "pending", "class": f.classification, "sha256": f.definition_hash}
        old = old_tools.pop(f.key, None)
        if isinstance(old, dict):
            kept = {k: v for k, v in old.items() if k not in ("state", "sha256")}
            entry.update(kept)
            if old.get("sha256") in (None, f.definition_hash):
                entry["state"] = old.get("state", "pending")
            else:
                entry["state"] = "pending" if old.get("state") == "approved" else old.get("state", "pending")
                entry["note"] = (f"definition changed since review (was {old.get('sha256')}); "
                                 "review it and set state again")
        tools[f.key] = entry
    for key, old in old_tools.items():  # no longer in the catalog: keep, marked, so nothing is lost silently
        if isinstance(old, dict):
            tools[key] = {**old, "note": "not in the discovered catalog (removed upstream, or its upstream is "
                                         "not configured here)"}
    draft: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "revision": issued.strftime("%Y-%m-%d.%H%M%S"),
        "issued_at": format_time(issued),
        "expires_at": format_time(issued + timedelta(days=days)),
        "defaults": {"auto_approve": auto_approve, **({"trust_annotations": trusted} if trusted else {})},
        "tools": tools,
        "toolsets": {},
        "groups": {},
        "profiles": [],
    }
    if existing:
        for name in ("defaults", "toolsets", "groups", "profiles"):
            if name in existing:
                draft[name] = existing[name]
    return draft
