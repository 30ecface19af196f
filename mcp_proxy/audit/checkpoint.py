"""The shipper's checkpoint (what the collector acknowledged) and its state (last push, counters).

Both are JSON files replaced atomically (temp file, fsync, rename), and both are
written only by the process that holds the ship lock. The checkpoint maps a
segment's name to the byte offset up to which every record was accepted (or
set aside): it advances only after the collector answered. It also keeps, per
writer instance, the chain head (the last record delivered: segment, seq, hash,
offset) and the newest segment the shipper has listed, so that `audit status`
can tell segments and records that vanished before delivery from ones that
were delivered and deleted.

The checkpoint is authenticated: it carries an HMAC-SHA256 of its content, keyed
with `fingerprint.key` beside it (32 random bytes, 0600, the key of the pause
fingerprint, ship_connection.py). A checkpoint whose MAC is missing or wrong
(forged, copied from elsewhere, or written by a version before 2) is not used:
it counts as "nothing acknowledged", so housekeeping deletes nothing on its
word, everything is shipped again (the collector drops the duplicates by record
id), and the shipper reports it (`audit.checkpoint_reset`). A missing or
unreadable checkpoint means the same. The key is readable by the laptop's owner,
so the MAC stops tools and hand edits that do not know it, not its owner (see
the README's audit section for what is still detectable then).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mcp_proxy.audit.layout import SEGMENT_RE
from mcp_proxy.fsutil import atomic_write

log = logging.getLogger(__name__)

KEY_NAME = "fingerprint.key"  # shared with the pause fingerprint (ship_connection.py)
FORMAT = 2
MAX_VANISHED = 200
MAX_DROPPED = 1000  # segments remembered as gone before delivery (oldest forgotten first)
_HEX64 = frozenset("0123456789abcdef")


def key_path(checkpoint_path: Path) -> Path:
    return checkpoint_path.with_name(KEY_NAME)


def read_key(path: Path) -> bytes | None:
    """The key in `path`, or None when it is missing, unreadable or too short to be one."""
    try:
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) >= 32 else None


def ensure_key(path: Path) -> bytes:
    """The key, created (32 random bytes, 0600) when there is none. A key another process wrote first
    wins the race: a written key is never replaced (only a damaged, too short one is). Raises OSError."""
    key = read_key(path)
    if key is not None:
        return key
    if path.exists():  # damaged: replaced, as ship_connection.py does; checkpoints signed with it are void
        atomic_write(path, secrets.token_bytes(32), mode=0o600)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if another process created the key meanwhile: theirs is kept
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    key = read_key(path)
    if key is None:
        raise OSError(f"could not create the key {path}")
    return key


def mac(key: bytes, content: dict[str, Any]) -> str:
    data = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


@dataclass
class Head:
    """The last record of one writer instance that the collector acknowledged (or that was set aside)."""

    segment: str  # the segment file's name
    index: int  # its number within the instance
    seq: int | None  # the record's `seq` (None: the line was not a record, set aside as corrupt)
    hash: str  # SHA-256 of the line: the `prev_hash` of the record after it
    offset: int  # the offset just after the line in its segment

    def position(self) -> str:
        return f"segment {self.index} seq {self.seq}" if self.seq is not None else f"segment {self.index}"

    @classmethod
    def parse(cls, value: Any) -> Head:
        if not isinstance(value, dict):
            raise ValueError("bad head")
        seg, index, seq, digest, offset = (value.get(k) for k in ("segment", "index", "seq", "hash", "offset"))
        if not (isinstance(seg, str) and SEGMENT_RE.match(seg) and isinstance(index, int)
                and (seq is None or isinstance(seq, int)) and isinstance(digest, str) and len(digest) == 64
                and set(digest) <= _HEX64 and isinstance(offset, int) and offset >= 0):
            raise ValueError("bad head")
        return cls(seg, index, seq, digest, offset)


@dataclass
class Checkpoint:
    acked: dict[str, int] = field(default_factory=dict)
    heads: dict[str, Head] = field(default_factory=dict)  # instance (as in segment names) -> chain head
    seen: dict[str, int] = field(default_factory=dict)  # instance -> newest segment index the shipper listed
    vanished: list[dict[str, Any]] = field(default_factory=list)  # acknowledged in part, gone before delivery
    problem: str | None = None  # why the file on disk could not be used (it was reset)
    unauthenticated: bool = False  # the file on disk was readable but its MAC missing or wrong

    @classmethod
    def load(cls, path: Path, *, repair: bool = True) -> Checkpoint:
        """The checkpoint on disk. An unreadable or unauthenticated one is moved aside (unless `repair` is
        off: read-only callers such as `audit status`) and an empty one returned, with `problem` saying so.
        Never creates the key: without one, no checkpoint on disk can be authentic."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            return cls(problem=f"unreadable ({exc.strerror})")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            acked = data["acked"]
            if not isinstance(acked, dict) or not all(isinstance(k, str) and isinstance(v, int) and v >= 0
                                                      for k, v in acked.items()):
                raise ValueError("bad offsets")
        except (ValueError, KeyError, TypeError):
            return cls._reset(path, repair, "corrupt", "is unreadable; the next push resets it and sends every "
                              "record again", "was unreadable and was reset")
        key = read_key(key_path(path))
        claimed = data.pop("mac", None)
        if key is None or not isinstance(claimed, str) or not hmac.compare_digest(claimed, mac(key, data)):
            why = ("is not authenticated (no valid MAC with this machine's key: forged, copied, or written by "
                   "an older version)")
            reset = cls._reset(path, repair, "unauthenticated", f"{why}; it is ignored: nothing counts as "
                               "delivered, nothing is deleted on its word, and the next push sends every "
                               "record again", f"{why} and was reset")
            reset.unauthenticated = True
            return reset
        try:
            heads = {str(k): Head.parse(v) for k, v in dict(data.get("heads") or {}).items()}
            seen = {str(k): v for k, v in dict(data.get("seen") or {}).items() if isinstance(v, int)}
            vanished = [v for v in list(data.get("vanished") or []) if isinstance(v, dict)]
        except (ValueError, TypeError):
            return cls._reset(path, repair, "corrupt", "is unreadable; the next push resets it and sends every "
                              "record again", "was unreadable and was reset")
        return cls(acked=dict(acked), heads=heads, seen=seen, vanished=vanished)

    @classmethod
    def _reset(cls, path: Path, repair: bool, kind: str, read_only: str, repaired: str) -> Checkpoint:
        if not repair:
            return cls(problem=read_only)
        aside = path.with_name(f"{path.name}.{kind}-{int(time.time())}")
        try:
            path.replace(aside)
        except OSError:
            aside = path
        log.warning("the audit checkpoint %s %s; kept it as %s and will ship every record again (the "
                    "collector drops duplicates by record id)", path, repaired, aside.name)
        return cls(problem=f"{repaired} (kept as {aside.name})")

    def content(self) -> dict[str, Any]:
        return {"version": FORMAT, "acked": self.acked, "heads": {k: asdict(v) for k, v in self.heads.items()},
                "seen": self.seen, "vanished": self.vanished[-MAX_VANISHED:]}

    def save(self, path: Path) -> None:
        """Raises OSError (also when the key cannot be created)."""
        content = self.content()
        content["mac"] = mac(ensure_key(key_path(path)), content)
        atomic_write(path, json.dumps(content, sort_keys=True).encode())

    def advance(self, segment: str, seq: Any, raw: bytes, offset: int) -> None:
        """Record a delivered (or set-aside) line as its instance's chain head, if it is the newest."""
        m = SEGMENT_RE.match(segment)
        if not m:
            return
        instance, index = m["instance"], int(m["index"])
        seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        digest = hashlib.sha256(raw).hexdigest()
        old = self.heads.get(instance)
        if old is None or (index, offset) > (old.index, old.offset):
            self.heads[instance] = Head(segment, index, seq, digest, offset)

    def saw(self, segments: list[Any]) -> bool:
        """Remember the newest segment index listed per instance; returns whether anything changed."""
        changed = False
        for seg in segments:
            if seg.index > self.seen.get(seg.instance, 0):
                self.seen[seg.instance] = seg.index
                changed = True
        return changed


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
    checkpoint_reset_reason: str | None = None  # the latest reset's cause (an unauthenticated checkpoint...)
    checkpoint_reset_at: float | None = None
    # Shipping paused by a credential/address/config failure: no automatic retry on a timer.
    paused_key: str | None = None  # the distinct failure ("401 https://collector/v1/logs"): one event each
    paused_url: str | None = None
    paused_fingerprint: str | None = None  # of the collector URL and header values in use when it failed
    paused_since: float | None = None
    dropping: list[str] = field(default_factory=list)
    # Every segment the disk quota dropped (the latest MAX_DROPPED), with a MAC keyed like the checkpoint's:
    # `audit status` tells these gaps from segments deleted by hand.
    dropped_segments: list[str] = field(default_factory=list)
    dropped_mac: str | None = None

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
            if key in ("dropping", "dropped_segments"):
                if isinstance(value, list):
                    kwargs[key] = [v for v in value if isinstance(v, str) and SEGMENT_RE.match(v)]
            elif key in known and (value is None or isinstance(value, (int, float, str))):
                kwargs[key] = value
        try:
            state = cls(**kwargs)
        except TypeError:
            return cls()
        if state.dropped_segments:
            key = read_key(key_path(path))
            if key is None or not isinstance(state.dropped_mac, str) or not hmac.compare_digest(
                    state.dropped_mac, mac(key, {"dropped_segments": state.dropped_segments})):
                state.dropped_segments = []  # not ours: such gaps are reported as deletions
        return state

    def save(self, path: Path, *, durable: bool = True) -> None:
        """Raises OSError: a caller must not advance the checkpoint or delete what the counters account for
        when they could not be saved."""
        new = [name for name in self.dropping if name not in self.dropped_segments]
        if new or (self.dropped_segments and self.dropped_mac is None):
            self.dropped_segments = (self.dropped_segments + new)[-MAX_DROPPED:]
            self.dropped_mac = mac(ensure_key(key_path(path)), {"dropped_segments": self.dropped_segments})
        atomic_write(path, json.dumps(asdict(self), sort_keys=True).encode(), durable=durable)

    def pause_text(self) -> str | None:
        """What `audit status` and `doctor` say while shipping is paused; None when it is not."""
        if self.paused_key is None:
            return None
        what = (f"HTTP {self.last_status} from {self.paused_url}" if self.last_status
                else (self.last_detail or "a configuration problem"))
        return f"paused: {what}; fix [audit] headers/collector, then run `mcp-access-proxy audit push`"
