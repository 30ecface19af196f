"""Exposed tool names: `<prefix>_<tool>` from `[a-z0-9_-]` only.

Rules, chosen so a name depends only on (upstream key, upstream tool name):
- deterministic and stable across restarts and policy updates (no counters,
  no dependence on which other tools exist or are approved);
- collision-free by construction: the prefix contains no `_`, so it ends at the
  first `_`; a tool name kept verbatim is unique within its upstream; any name
  that had to be changed (case folded, characters replaced, or shortened) gets
  an 8-hex-digit hash of the original, so two changed names cannot meet; and a
  name that already ends like such a hash (`foo-9a0ada05`) is never kept
  verbatim, so it cannot meet the changed form of another (`Foo`);
- at most MAX_NAME_LENGTH characters, so that with the default server name
  "mcp-access-proxy" (16) a client stays within Cursor's 60-character limit on
  server name + tool name, and within Claude Code's 64 for the whole
  `mcp__<server>__<tool>` (7 + 16 + 40 = 63).
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME_LENGTH = 40
_INVALID = re.compile(r"[^a-z0-9_-]")
_HASH_LEN = 8
_LOOKS_HASHED = re.compile(rf"-[0-9a-f]{{{_HASH_LEN}}}$")


def exposed_name(prefix: str, tool_name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """The name the client sees for `tool_name` of upstream `prefix`."""
    clean = _INVALID.sub("_", tool_name.lower())
    candidate = f"{prefix}_{clean}"
    if clean == tool_name and len(candidate) <= max_length and not _LOOKS_HASHED.search(clean):
        return candidate
    digest = hashlib.sha256(f"{prefix}\0{tool_name}".encode()).hexdigest()[:_HASH_LEN]
    room = max_length - len(prefix) - 1 - 1 - _HASH_LEN
    base = clean[: max(room, 1)].rstrip("_-") or "tool"
    return f"{prefix}_{base}-{digest}"
