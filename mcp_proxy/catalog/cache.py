"""The on-disk cache of each upstream's last known tool list.

It lets `initialize` and `tools/list` answer at once, before any upstream has
started, and lets offline commands (`tools`, `policy draft`) see the catalog.
One JSON file per upstream, written atomically; a torn or foreign file is
ignored, never trusted.

The same file remembers which protocol era the upstream speaks (`era`: a verdict
the upstream itself writes and reads through `CachedEra`), so that the next
start connects in that era without probing `server/discover` again. Each of the
two writers keeps the other's part of the file. Two processes writing at the
same instant may lose one part: a lost verdict costs one probe, a lost list is
replaced when the upstream connects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.fsutil import atomic_write

CACHE_FORMAT = 1


def cache_file_name(upstream_key: str) -> str:
    return f"{upstream_key}.json"


def _file(cache_dir: Path, upstream_key: str) -> Path:
    return cache_dir / cache_file_name(upstream_key)


def fingerprint(upstream_identity: str) -> str:
    """Ties a cache file to the upstream's connection settings: a changed URL or command invalidates it."""
    return hashlib.sha256(upstream_identity.encode()).hexdigest()[:16]


def _read(cache_dir: Path, upstream_key: str, identity: str) -> dict[str, Any] | None:
    """The cache file's content if it is ours and belongs to this identity, else None."""
    try:
        data = json.loads(_file(cache_dir, upstream_key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return None
    if data.get("fingerprint") != fingerprint(identity):
        return None
    return data


def _write(cache_dir: Path, upstream_key: str, identity: str, data: dict[str, Any]) -> None:
    payload = json.dumps({**data, "format": CACHE_FORMAT, "fingerprint": fingerprint(identity)},
                         ensure_ascii=False, separators=(",", ":"))
    # Not fsync'd: a cache lost in a power cut is rebuilt from the upstream.
    atomic_write(_file(cache_dir, upstream_key), payload.encode("utf-8"), durable=False)


def load_tools(cache_dir: Path, upstream_key: str, identity: str) -> list[dict[str, Any]] | None:
    """The cached tool list (wire-format dicts) or None when absent, torn or stale."""
    data = _read(cache_dir, upstream_key, identity)
    tools = data.get("tools") if data is not None else None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return None
    return tools


def save_tools(cache_dir: Path, upstream_key: str, identity: str, tools: list[dict[str, Any]]) -> None:
    era = load_era(cache_dir, upstream_key, identity)
    _write(cache_dir, upstream_key, identity, {"tools": tools, **({"era": era} if era is not None else {})})


def load_era(cache_dir: Path, upstream_key: str, identity: str) -> dict[str, Any] | None:
    """The remembered protocol-era verdict of the upstream (a JSON object), or None."""
    data = _read(cache_dir, upstream_key, identity)
    era = data.get("era") if data is not None else None
    return era if isinstance(era, dict) else None


def save_era(cache_dir: Path, upstream_key: str, identity: str, era: dict[str, Any]) -> None:
    data = _read(cache_dir, upstream_key, identity) or {}
    kept = {"tools": data["tools"]} if isinstance(data.get("tools"), list) else {}
    _write(cache_dir, upstream_key, identity, {**kept, "era": era})


class CachedEra:
    """One upstream's era verdict in the tool cache (`upstreams.mcp_upstream.EraMemory`)."""

    def __init__(self, cache_dir: Path, upstream_key: str, identity: str) -> None:
        self.cache_dir = cache_dir
        self.upstream_key = upstream_key
        self.identity = identity

    def recall(self) -> dict[str, Any] | None:
        return load_era(self.cache_dir, self.upstream_key, self.identity)

    def remember(self, verdict: dict[str, Any]) -> None:
        try:
            save_era(self.cache_dir, self.upstream_key, self.identity, verdict)
        except OSError:  # a cache that cannot be written costs the next start one probe, nothing more
            return


def era_memory(cache_dir: Path) -> Callable[[UpstreamConfig], CachedEra]:
    """For `build_upstreams(eras=...)`: each MCP upstream's era verdict, kept in the tool cache."""
    # Imported here: the rest of this module is read before the SDK is loaded (server/first_answers.py).
    from mcp_proxy.upstreams.base import connection_identity

    return lambda cfg: CachedEra(cache_dir, cfg.key, connection_identity(cfg))
