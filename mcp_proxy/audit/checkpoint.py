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

from mcp_proxy.audit.layout import SEGMENT_RE
from mcp_proxy.fsutil import atomic_write

log = logging.getLogger(__name__)


@dataclass
class Checkpoint:
    acked: dict[str, int] = field(default_factory=dict)
    problem: str | None = None  # why the file on disk could not be used (it was reset)

    @classmethod
    def load(cls, path: Path, *, repair: bool = True) -> Checkpoint:
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
    """What `audit status` and `doctor` show. Counters only ever grow.

    The shipper saves it (fsync'd) *before* the checkpoint or the deletion its counters account for, so
    a kill at any moment never loses a count (at worst a batch re-sent after the kill counts twice).
    `dropping` lists the segments the disk quota has counted as dropped but maybe not yet deleted: the
    next holder of the ship lock finishes deleting them without counting them again.
    """

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
    unencodable_records: int = 0
    checkpoint_resets: int = 0
    # Shipping paused by a credential/address/config failure: no automatic retry on a timer.
    paused_key: str | None = None  # the distinct failure ("401 https://collector/v1/logs"): one event each
    paused_url: str | None = None
    paused_fingerprint: str | None = None  # of the collector URL and header values in use when it failed
    paused_since: float | None = None
    dropping: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> ShipState:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "dropping":
                if isinstance(value, list):
                    kwargs[key] = [v for v in value if isinstance(v, str) and SEGMENT_RE.match(v)]
            elif key in known and (value is None or isinstance(value, (int, float, str))):
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except TypeError:
            return cls()

    def save(self, path: Path, *, durable: bool = True) -> None:
        """Raises OSError: a caller must not advance the checkpoint or delete what the counters account for
        when they could not be saved."""
        atomic_write(path, json.dumps(asdict(self), sort_keys=True).encode(), durable=durable)

    def pause_text(self) -> str | None:
        """What `audit status` and `doctor` say while shipping is paused; None when it is not."""
        if self.paused_key is None:
            return None
        what = (f"HTTP {self.last_status} from {self.paused_url}" if self.last_status
                else (self.last_detail or "a configuration problem"))
        return f"paused: {what}; fix [audit] headers/collector, then run `mcp-access-proxy audit push`"
