"""The shipper's checkpoint (what the collector acknowledged) and its state (last push, counters).

Both are JSON files replaced atomically (temp file, fsync, rename), and both are
written only by the process that holds the ship lock. The checkpoint maps a
segment's name to the byte offset up to which every record was accepted (or
set aside): it advances only after the collector answered. A checkpoint that is
missing or unreadable means "nothing acknowledged": everything is shipped again,
and the collector drops the duplicates by record id.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mcp_proxy.fsutil import atomic_write

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    acked: dict[str, int] = field(default_factory=dict)
    problem: str | None = None  # why the file on disk could not be used (it was reset)

    @classmethod
    def load(cls, path: Path, *, repair: bool = True) -> "Checkpoint":
        """The checkpoint on disk. An unreadable one is moved aside (unless `repair` is off: read-only
        callers such as `audit status`) and an empty one returned, with `problem` saying so."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            return cls(problem=f"unreadable ({exc.strerror})")
        try:
            data = json.loads(raw)
            acked = data["acked"]
            if not isinstance(acked, dict) or not all(isinstance(k, str) and isinstance(v, int) and v >= 0
                                                      for k, v in acked.items()):
                raise ValueError("bad offsets")
        except (ValueError, KeyError, TypeError):
            if not repair:
                return cls(problem="is unreadable; the next push resets it and sends every record again")
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            try:
                path.replace(aside)
            except OSError:
                aside = path
            log.warning("the audit checkpoint %s was unreadable; kept it as %s and will ship every record "
                        "again (the collector drops duplicates by record id)", path, aside.name)
            return cls(problem=f"was unreadable and was reset (kept as {aside.name})")
        return cls(acked=dict(acked))

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps({"version": 1, "acked": self.acked}, sort_keys=True).encode())


@dataclass
class ShipState:
    """What `audit status` and `doctor` show. Counters only ever grow."""

    last_attempt: float | None = None
    last_success: float | None = None
    last_result: str | None = None  # "ok" | "retrying" | "rejected" | "partial" | "paused" | "error"
    last_detail: str | None = None
    last_status: int | None = None
    consecutive_failures: int = 0
    not_before: float = 0.0  # no automatic push before this time (backoff, shared by all processes)
    shipped_records: int = 0
    rejected_batches: int = 0
    rejected_records: int = 0
    partial_rejected_records: int = 0
    dropped_records: int = 0
    dropped_bytes: int = 0
    torn_records: int = 0
    torn_bytes: int = 0
    corrupt_records: int = 0
    checkpoint_resets: int = 0

    @classmethod
    def load(cls, path: Path) -> "ShipState":
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in known and (value is None or isinstance(value, (int, float, str))):
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except TypeError:
            return cls()

    def save(self, path: Path) -> None:
        try:
            atomic_write(path, json.dumps(asdict(self), sort_keys=True).encode(), durable=False)
        except OSError as exc:
            log.warning("could not save the audit shipping state (%s)", exc.strerror)
