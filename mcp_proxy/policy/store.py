"""The last known good policy on disk, in one file written atomically.

The file holds the document exactly as fetched (JSON or JWS) with its source
and ETag, so that loading it runs the same verification as a fresh download.
Several proxy processes share it; temp file + fsync + rename means a reader
sees either the old or the new file, never a torn one (a torn file from a
crashed filesystem is reported and ignored).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mcp_proxy.errors import PolicyError
from mcp_proxy.fsutil import atomic_write
from mcp_proxy.policy.jsondepth import too_deep

log = logging.getLogger(__name__)

CACHE_FILE = "last-known-good.json"
CACHE_FORMAT = 1


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
