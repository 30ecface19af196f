"""The last known good policy on disk, in one file written atomically.

The file holds the document exactly as fetched (JSON or JWS) with its source
and ETag, so that loading it runs the same verification as a fresh download.
Several proxy processes share it; temp file + fsync + rename means a reader
sees either the old or the new file, never a torn one (a torn file from a
crashed filesystem is reported and ignored).

Beside it, in the data dir's `state/` (not in the cache's directory), the high-water mark: per source, the
newest document ever activated (its `issued_at`, revision and SHA-256) and the ETag that came with it. A
document older than the mark is never activated, from the cache or the network, and the cached ETag is
used for a conditional GET only when the cached document is the one that ETag came with, so a server's
304 cannot keep an older document that was swapped into the cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mcp_proxy.errors import LockTimeout, PolicyError
from mcp_proxy.fsutil import FileLock, atomic_write
from mcp_proxy.policy.jsondepth import too_deep

log = logging.getLogger(__name__)

CACHE_FILE = "last-known-good.json"
CACHE_FORMAT = 1
MARK_FILE = "policy-high-water.json"
MARK_LOCK = "policy-high-water.lock"
MARK_FORMAT = 1


@dataclass(frozen=True)
class Cached:
    raw: bytes
    source: str
    etag: str | None
    fetched_at: float


class CacheError(PolicyError):
    """The cache file exists but cannot be used; the message says why and what to do."""


def cache_path(policy_dir: Path) -> Path:
    return policy_dir / CACHE_FILE


def save(policy_dir: Path, entry: Cached) -> None:
    data = {"format": CACHE_FORMAT, "source": entry.source, "etag": entry.etag, "fetched_at": entry.fetched_at,
            "document": entry.raw.decode("utf-8")}
    atomic_write(cache_path(policy_dir), json.dumps(data).encode("utf-8"))


def load(policy_dir: Path) -> Cached | None:
    """The cached entry, None when there is none, or CacheError when the file is unusable."""
    path = cache_path(policy_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CacheError(f"the cached policy {path} is unreadable ({type(exc).__name__}); "
                         "run `mcp-access-proxy policy sync` to fetch it again") from None
    try:
        if too_deep(text) is not None:  # a valid cache file is two levels deep; json.loads would recurse
            raise ValueError("nested too deep")
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise ValueError("unknown format")
        raw = data["document"]
        if not isinstance(raw, str):
            raise ValueError("no document")
        etag = data.get("etag")
        return Cached(raw.encode("utf-8"), str(data.get("source") or ""), etag if isinstance(etag, str) else None,
                      float(data.get("fetched_at") or 0.0))
    except (ValueError, KeyError, TypeError):
        raise CacheError(f"the cached policy {path} is damaged (incomplete or not in the expected format); "
                         "run `mcp-access-proxy policy sync` to fetch it again") from None


# -- the high-water mark ----------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """The newest document activated from one source, and the ETag that came with exactly that document."""

    issued_at: float
    revision: str
    sha256: str
    etag: str | None


def mark_path(state_dir: Path) -> Path:
    return state_dir / MARK_FILE


def load_marks(state_dir: Path) -> dict[str, Mark] | None:
    """Source -> mark; {} when there is no file yet; None when the file is unusable (reported)."""
    path = mark_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("the policy high-water mark %s is unusable (%s)", path, type(exc).__name__)
        return None
    sources = data.get("sources") if isinstance(data, dict) and data.get("format") == MARK_FORMAT else None
    if not isinstance(sources, dict):
        log.warning("the policy high-water mark %s is not in the expected format", path)
        return None
    marks: dict[str, Mark] = {}
    for source, m in sources.items():
        try:
            etag = m.get("etag")
            marks[str(source)] = Mark(float(m["issued_at"]), str(m["revision"]), str(m["sha256"]),
                                      etag if isinstance(etag, str) else None)
        except (AttributeError, KeyError, TypeError, ValueError):
            log.warning("the policy high-water mark %s has a damaged entry; it is ignored", path)
    return marks


def save_checked(policy_dir: Path, state_dir: Path, locks_dir: Path, entry: Cached, mark: Mark) -> bool:
    """Cache `entry` and raise the mark of its source to `mark`, under one lock shared by every process;
    False (nothing written) when another process has activated a newer document meanwhile, so that neither
    the cache nor the mark ever goes back. The cache is written first: a crash in between leaves a cache
    newer than the mark, which is accepted (without its ETag), never the reverse."""
    try:
        with FileLock(locks_dir / MARK_LOCK, timeout=5.0):
            marks = load_marks(state_dir) or {}
            newest = marks.get(entry.source)
            if newest is not None and mark.issued_at < newest.issued_at:
                return False
            save(policy_dir, entry)
            marks[entry.source] = mark
            data = {"format": MARK_FORMAT,
                    "sources": {s: {"issued_at": m.issued_at, "revision": m.revision, "sha256": m.sha256,
                                    "etag": m.etag} for s, m in marks.items()}}
            atomic_write(mark_path(state_dir), json.dumps(data, sort_keys=True).encode("utf-8"))
            return True
    except LockTimeout:
        raise OSError(f"{locks_dir / MARK_LOCK} is held by another process") from None
