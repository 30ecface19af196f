"""Checking what reached the collector emulator: records lost, records delivered more than once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mcp_proxy.sandbox.collector import Collector


def lost(collector: Collector, written: list[dict[str, Any]]) -> list[str]:
    """The ids of `written` records the collector never received."""
    return [r["id"] for r in written if r["id"] not in collector.ids]


def delivered_exactly_once(collector: Collector, written: list[dict[str, Any]]) -> bool:
    """Every record of `written` arrived, and (after the collector's dedup by `log.record.uid`) once."""
    kept = Counter(r.get("id") for r in collector.records)
    missing = lost(collector, written)
    twice = [rid for rid, n in kept.items() if n > 1]
    assert not missing, f"{len(missing)} records lost: {missing[:5]}"
    assert not twice, f"records kept more than once: {twice[:5]}"
    return True
