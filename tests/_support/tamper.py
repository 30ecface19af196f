"""Helpers of the tampering tests: what a local user can do to the spool and its checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mcp_proxy.audit.layout import Layout, Segment
from mcp_proxy.paths import Paths


def segments(paths: Paths) -> list[Segment]:
    return sorted(Layout(paths).segments(), key=lambda s: s.index)


def rewrite(path: Path, lines: list[bytes], start: int, prev: str, first_seq: int) -> None:
    """Write `lines` (records without newlines) to `path`, renumbering `seq` from `first_seq` and re-chaining
    `prev_hash` from line `start` on, exactly as the writer would have (the key order kept)."""
    out = lines[:start]
    seq = first_seq
    for raw in lines[start:]:
        record = json.loads(raw)
        record["seq"], record["prev_hash"] = seq, prev
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        out.append(line)
        prev = hashlib.sha256(line).hexdigest()
        seq += 1
    path.write_bytes(b"".join(line + b"\n" for line in out))


def remove_and_rehash(seg: Segment, index: int) -> None:
    """Remove line `index` (0-based) of a segment and re-chain and renumber every line after it."""
    lines = seg.path.read_bytes().splitlines()
    prev = hashlib.sha256(lines[index - 1]).hexdigest() if index else json.loads(lines[0])["prev_hash"]
    first_seq = json.loads(lines[index])["seq"]
    rewrite(seg.path, lines[:index] + lines[index + 1:], index, prev, first_seq)


def edit_and_rehash(seg: Segment, index: int, **fields: Any) -> None:
    """Change fields of line `index` (0-based) and re-chain every line from it on."""
    lines = seg.path.read_bytes().splitlines()
    record = json.loads(lines[index])
    record.update(fields)
    lines[index] = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    prev = record["prev_hash"]
    rewrite(seg.path, lines, index, prev, record["seq"])


def forge_checkpoint(paths: Paths, **extra: Any) -> dict[str, int]:
    """Write a checkpoint.json claiming every byte of every segment was delivered."""
    layout = Layout(paths)
    acked = {s.name: s.size for s in layout.segments()}
    layout.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    layout.checkpoint.write_text(json.dumps({"version": 2, "acked": acked, **extra}))
    return acked
