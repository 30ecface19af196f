"""The on-disk cache of each upstream's last known tool list.

It lets `initialize` and `tools/list` answer at once, before any upstream has
started, and lets offline commands (`tools`, `policy draft`) see the catalog.
One JSON file per upstream, written atomically; a torn or foreign file is
ignored, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mcp_proxy.fsutil import atomic_write

CACHE_FORMAT = 1


def _file(cache_dir: Path, upstream_key: str) -> Path:
    return cache_dir / f"{upstream_key}.json"


def fingerprint(upstream_identity: str) -> str:
    """Ties a cache file to the upstream's connection settings: a changed URL or command invalidates it."""
    return hashlib.sha256(upstream_identity.encode()).hexdigest()[:16]


def load_tools(cache_dir: Path, upstream_key: str, identity: str) -> list[dict[str, Any]] | None:
    """The cached tool list (wire-format dicts) or None when absent, torn or stale."""
    try:
        data = json.loads(_file(cache_dir, upstream_key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    if data.get("fingerprint") != fingerprint(identity):
        return None
    tools = data.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return None
    return tools


def save_tools(cache_dir: Path, upstream_key: str, identity: str, tools: list[dict[str, Any]]) -> None:
    payload = json.dumps({"format": CACHE_FORMAT, "fingerprint": fingerprint(identity), "tools": tools},
                         ensure_ascii=False, separators=(",", ":"))
    # Not fsync'd: a cache lost in a power cut is rebuilt from the upstream.
    atomic_write(_file(cache_dir, upstream_key), payload.encode("utf-8"), durable=False)
