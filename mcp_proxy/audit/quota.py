"""The disk quota (`[audit] max_disk_bytes`) over the spool and the set-aside batches.

When the spool is over its quota, space is freed, down to LOW_WATER of the quota (so that a
full spool does not drop a little on every record), in this order:

1. delivered data: segments whose every record the collector acknowledged (about to be deleted
   anyway), then the copies of partial successes kept in rejected/ (the collector took those batches
   and itself reported the records it rejected);
2. batches set aside in rejected/, oldest first: the collector refused them, each was announced to it
   by an `audit.batch_rejected` (or `audit.corrupt_record` ...) event naming its ids, count and reason,
   and none will be delivered without a person running `audit push --retry-rejected`;
3. the oldest never-sent segments, whole: the collector has never heard of these records, and they
   are the ones that arrive by themselves once it answers again.

Set-aside batches go before never-sent records because they are already known to the collector (an
event says what is missing) and are stuck, while never-sent records are the live trail; keeping the
stuck ones would also let them crowd the spool out for good, since nothing else ever removes them.
Whatever undelivered data goes (2 and 3) is added to the state's counters (`dropped_records`,
`dropped_bytes`: counted before deleted, so a kill can count a batch twice but never lose a count)
and returned, so the caller records an `audit.dropped` event (which itself reaches the collector),
with the set-aside and the never-sent parts told apart.

Only the process holding the ship lock changes the spool's files and checkpoint, so a drop never
races a push: a writer that finds the spool over quota while another process ships leaves the work
to that shipper. Segments still being written by another process are never touched; our own current
segment is sealed first when it is the oldest data left.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout, Liveness, Segment
from mcp_proxy.audit.reader import count_from, read_chunk
from mcp_proxy.fsutil import FileLock

if TYPE_CHECKING:
    from mcp_proxy.audit.spool import SegmentWriter
    from mcp_proxy.config import AuditConfig

log = logging.getLogger(__name__)

LOW_WATER = 0.9


@dataclass
class DropReport:
    quota: int
    records: int = 0
    bytes: int = 0
    segments: list[str] = field(default_factory=list)
    oldest_time: str | None = None
    newest_time: str | None = None
    acked_freed: int = 0
    rejected_files: int = 0  # every file deleted from rejected/ (partial-success copies included)
    set_aside_records: int = 0  # of `records`: undelivered records of set-aside batches
    set_aside_batches: int = 0
    changed: bool = False

    def event_fields(self) -> dict[str, Any]:
        return {"audit.dropped.records": self.records, "audit.dropped.bytes": self.bytes,
                "audit.dropped.unsent_records": self.records - self.set_aside_records,
                "audit.dropped.set_aside_records": self.set_aside_records,
                "audit.dropped.set_aside_batches": self.set_aside_batches,
                "audit.dropped.segments": self.segments[:20], "audit.dropped.oldest_time": self.oldest_time,
                "audit.dropped.newest_time": self.newest_time, "audit.quota_bytes": self.quota,
                "audit.reason": f"the audit spool reached its disk quota ({self.quota} bytes, [audit] "
                                "max_disk_bytes) while the collector had not acknowledged these records"}

    def add_time_range(self, oldest: str | None, newest: str | None) -> None:
        if oldest is not None and (self.oldest_time is None or oldest < self.oldest_time):
            self.oldest_time = oldest
        if newest is not None and (self.newest_time is None or newest > self.newest_time):
            self.newest_time = newest


def spool_bytes(layout: Layout) -> int:
    total = sum(s.size for s in layout.segments())
    for path in layout.rejected_files():
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def _time_of(raw: bytes) -> str | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value.get("time") if isinstance(value, dict) else None


def _time_range(path: Path, start: int, size: int) -> tuple[str | None, str | None]:
    first = read_chunk(path, start, max_records=1).lines
    tail_from = max(start, size - 65536)
    last = read_chunk(path, tail_from).lines if size > start else []
    return (_time_of(first[0].raw) if first else None, _time_of(last[-1].raw) if last else None)


def finish_drops(layout: Layout, checkpoint: Checkpoint, state: ShipState) -> bool:
    """Delete the segments an earlier drop counted but did not get to delete (it was killed)."""
    if not state.dropping:
        return False
    left = []
    for name in state.dropping:
        try:
            (layout.spool / name).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete the dropped audit segment %s (%s)", name, exc.strerror)
            left.append(name)  # still counted as dropped: never shipped, deleted next time
            continue
        checkpoint.acked.pop(name, None)
    state.dropping = left
    return True


def enforce(layout: Layout, quota: int, checkpoint: Checkpoint, state: ShipState, *,
            own: SegmentWriter | None = None) -> DropReport:
    """Free space until the spool fits `quota`. The caller holds the ship lock and saves both files
    (this saves the state itself, fsync'd, before deleting unsent records, so their count survives a
    kill; see ShipState.dropping)."""
    report = DropReport(quota)
    report.changed = finish_drops(layout, checkpoint, state)
    segments = layout.segments()
    rejected = layout.rejected_files()
    total = sum(s.size for s in segments) + sum(_size(p) for p in rejected)
    if total <= quota:
        return report
    target = int(quota * LOW_WATER)
    liveness = Liveness(layout)

    def delete(seg: Segment) -> bool:
        nonlocal total
        try:
            seg.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete the audit segment %s (%s)", seg.name, exc.strerror)
            return False
        checkpoint.acked.pop(seg.name, None)
        total -= seg.size
        report.changed = True
        return True

    for seg in list(segments):
        if total <= target:
            return report
        if liveness.done(seg, segments, checkpoint.acked.get(seg.name, 0)) and delete(seg):
            report.acked_freed += seg.size
            segments.remove(seg)
    copies, stuck = _set_aside_in_order(rejected)
    for path in copies:  # delivered: the collector took these batches
        if total <= target:
            return report
        total -= _delete_aside(path)
        report.rejected_files += 1
        report.changed = True
    for path in stuck:  # undelivered, refused: counted, then deleted
        if total <= target:
            return report
        records, size = _aside_records(path)
        oldest, newest = _time_range(path, 0, size) if size else (None, None)
        report.records += records
        report.bytes += size
        report.set_aside_records += records
        report.set_aside_batches += 1
        report.add_time_range(oldest, newest)
        state.dropped_records += records
        state.dropped_bytes += size
        state.save(layout.state)  # counted first (fsync'd), deleted second: a kill may count it twice, never zero
        total -= _delete_aside(path)
        report.rejected_files += 1
        report.changed = True
    for attempt in range(2):
        victims: list[Segment] = []
        for seg in list(segments):
            if total <= target:
                break
            if not liveness.sealed(seg, segments):
                continue
            start = min(checkpoint.acked.get(seg.name, 0), seg.size)
            try:
                records, _, _ = count_from(seg.path, start)
                oldest, newest = _time_range(seg.path, start, seg.size)
            except FileNotFoundError:
                segments.remove(seg)
                continue
            segments.remove(seg)
            victims.append(seg)
            total -= seg.size
            report.records += records
            report.bytes += seg.size - start
            report.segments.append(seg.name)
            report.add_time_range(oldest, newest)
            state.dropped_records += records
            state.dropped_bytes += seg.size - start
        if victims:
            # Counted first (fsync'd), deleted second: a kill in between leaves `dropping` for the next run.
            state.dropping = [seg.name for seg in victims]
            state.save(layout.state)
            for seg in victims:
                total += seg.size
                if not delete(seg):
                    total -= seg.size  # counted as dropped all the same; never shipped (see `dropping`)
            state.dropping = [seg.name for seg in victims if seg.path.exists()]
            report.changed = True
        if total <= target or own is None or attempt:
            break
        own.seal()  # our own current segment holds the oldest data left: finish it, then drop it
        segments = layout.segments()
        liveness = Liveness(layout)
    if report.records:
        log.error("audit spool over its disk quota (%d bytes): dropped %d unsent records (%d bytes); the "
                  "collector has been unreachable or refusing for too long", quota, report.records, report.bytes)
    return report


def _set_aside_in_order(rejected: list[Path]) -> tuple[list[Path], list[Path]]:
    """(copies of partial successes, every other set-aside batch), each oldest first (names start with
    the time they were set aside)."""
    copies = [p for p in rejected if _kind(p) == "partial"]
    return copies, [p for p in rejected if p not in copies]


def _kind(path: Path) -> str | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_bytes())
    except (OSError, ValueError):
        meta = None
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if isinstance(kind, str):
        return kind
    parts = path.stem.split("-")  # <stamp>-<kind>-<status>-<random>, when the .json is gone
    return parts[1] if len(parts) == 4 else None


def _aside_records(path: Path) -> tuple[int, int]:
    """(records, bytes) of a set-aside file: its lines, counted (the .json's count may be missing)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0, 0
    return len(raw.splitlines()), len(raw)


def _delete_aside(path: Path) -> int:
    size = _size(path)
    path.unlink(missing_ok=True)
    path.with_suffix(".json").unlink(missing_ok=True)
    return size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def enforce_if_over(layout: Layout, cfg: AuditConfig, own: SegmentWriter | None = None) -> DropReport | None:
    """For writers: enforce the quota when over it and no other process is shipping (else the shipper
    does it). Returns the report when something was dropped."""
    if spool_bytes(layout) <= cfg.max_disk_bytes:
        return None
    lock = FileLock(layout.ship_lock)
    if not lock.try_acquire():
        return None
    try:
        # An unreadable checkpoint is left for the shipper to reset (and report); here it counts as
        # "nothing acknowledged", which can only make the drop accounting count more as unsent.
        checkpoint = Checkpoint.load(layout.checkpoint, repair=False)
        state = ShipState.load(layout.state)
        report = enforce(layout, cfg.max_disk_bytes, checkpoint, state, own=own)
        if report.changed:  # the counters first, as everywhere (checkpoint.py)
            state.save(layout.state)
            if not checkpoint.problem:
                checkpoint.save(layout.checkpoint)
        return report if report.records else None
    finally:
        lock.release()
