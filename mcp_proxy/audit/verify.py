"""Checking the hash chain of the segments on disk against the checkpoint: gaps, edits, deletions.

Every record carries `seq`, `audit.segment` (the number of its segment within its writer instance) and
`prev_hash` (the SHA-256 of the previous line's bytes, continuing across an instance's segments). A
record's place in its instance is (segment, seq): `seq` restarts at 1 in each segment in records written
so far; a writer that numbers records per instance (seq continuing across segments) is checked the same
way, and then a missing segment's records are named by seq. The authenticated checkpoint (checkpoint.py)
adds, per instance, the chain head (the last record the collector acknowledged: segment, seq, hash,
offset) and the newest segment the shipper has listed. So:

* a removed line shows as a jump in `seq` (and a `prev_hash` that does not match);
* an edited line shows as the next record's `prev_hash` not matching it;
* an inserted or reordered line shows as both;
* a missing first segment shows as the instance starting after segment 1 with no delivered head before
  it; a missing middle segment as a jump in segment numbers; a missing last segment as the shipper having
  listed a newer segment than any on disk or delivered;
* a segment the collector acknowledged in part and that is gone, though housekeeping did not delete it,
  is reported as vanished (the records after the head were never delivered);
* a delivered record that was edited, removed or inserted afterwards shows as the line at the head's
  offset no longer hashing to the head (the collector holds the originals);
* segments the disk quota dropped (state.json, authenticated) are noted, not reported as tampering;
* bytes after the last newline of a segment whose writer is gone are a torn tail (a crash), reported as
  such, not as tampering.

What this cannot see locally: anything not yet delivered that was rewritten together with the rest of
its chain (renumbered and rehashed), the removal of trailing records the shipper never listed, or a
checkpoint rewritten with the key (its owner can read it). The collector sees more: every shipped record
carries `audit.record_hash`, and every OTLP batch carries the chain head it continues (encode.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp_proxy.audit.checkpoint import Checkpoint, Head
from mcp_proxy.audit.layout import SEGMENT_RE, Layout, Liveness, Segment
from mcp_proxy.audit.reader import iter_lines

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass
class ChainProblem:
    segment: str
    line: int  # 1-based line number in the segment file (0: not about one line)
    kind: str  # "gap" | "edit" | "corrupt" | "missing-segment" | "vanished" | "changed" | "checkpoint"
    detail: str
    instance: str = ""

    def __str__(self) -> str:
        if not self.segment:
            return self.detail
        return f"{self.segment} line {self.line}: {self.detail}" if self.line else f"{self.segment}: {self.detail}"


@dataclass
class ChainReport:
    records: int = 0
    segments: int = 0
    torn_tails: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)  # one line per torn tail (a crash, not tampering)
    notes: list[str] = field(default_factory=list)  # gaps explained by the disk quota

    @property
    def ok(self) -> bool:
        return not self.problems


def _has_tail(seg: Segment) -> bool:
    if seg.size == 0:
        return False
    with open(seg.path, "rb") as fh:
        fh.seek(seg.size - 1)
        return fh.read(1) != b"\n"


def _spans(numbers: Iterable[int]) -> str:
    """[1, 2, 3, 5] -> "1..3, 5"."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].split("..")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('..')[0]}..{n}"
        else:
            out.append(str(n))
    return ", ".join(s if ".." in s else f"{s}..{s}" for s in out)


@dataclass
class _Walk:
    """Where the chain of one instance stands while its segments are read."""

    instance: str
    prev_hash: str | None = None  # the hash the next line must carry as prev_hash (None: unknown)
    prev_index: int | None = None
    prev_seq: int | None = None  # the last seq read (or delivered)
    after: str = ""  # where the chain stood, for messages

    def place(self) -> str:
        if self.prev_index is None or self.prev_index == 0:
            return "the start of the instance"
        return f"segment {self.prev_index}" + (f" seq {self.prev_seq}" if self.prev_seq is not None else "")


def verify(layout: Layout, segments: list[Segment] | None = None, checkpoint: Checkpoint | None = None,
           dropped: Iterable[str] = ()) -> ChainReport:
    """Check every instance's chain. `checkpoint` (else loaded, read-only) must have been loaded *before*
    `segments` were listed; `dropped`: segment names the disk quota dropped (ShipState.dropped_segments)."""
    report = ChainReport()
    if checkpoint is None:
        checkpoint = Checkpoint.load(layout.checkpoint, repair=False)
    segments = layout.segments() if segments is None else segments
    if checkpoint.unauthenticated:
        report.problems.append(ChainProblem("", 0, "checkpoint", f"the shipping checkpoint {checkpoint.problem}"))
    dropped_at: dict[str, set[int]] = {}
    for name in dropped:
        m = SEGMENT_RE.match(name)
        if m:
            dropped_at.setdefault(m["instance"], set()).add(int(m["index"]))
    liveness = Liveness(layout)
    by_instance: dict[str, list[Segment]] = {}
    for seg in segments:
        by_instance.setdefault(seg.instance, []).append(seg)
    for instance in sorted({*by_instance, *checkpoint.heads, *checkpoint.seen}):
        segs = sorted(by_instance.get(instance, []), key=lambda s: s.index)
        _instance(instance, segs, segments, checkpoint, dropped_at.get(instance, set()), liveness, report)
    _vanished(layout, segments, checkpoint, report)
    return report


def _instance(instance: str, segs: list[Segment], segments: list[Segment], checkpoint: Checkpoint,
              dropped: set[int], liveness: Liveness, report: ChainReport) -> None:
    head = checkpoint.heads.get(instance)
    walk = _Walk(instance)
    first = segs[0].index if segs else None
    if head is not None and (first is None or head.index < first):
        # Everything up to the head was delivered (and deleted): the chain must go on from it.
        walk.prev_hash, walk.prev_index, walk.prev_seq = head.hash, head.index, head.seq
        walk.after = f"the last record delivered ({head.position()})"
    elif head is None and first is not None and first > 1:
        _missing(report, walk, range(1, first), segs[0], dropped, "never acknowledged by the collector")
    elif first == 1:
        walk.prev_hash, walk.prev_index = "", 0
    for seg in segs:
        report.segments += 1
        if walk.prev_index is not None and seg.index > walk.prev_index + 1:
            _missing(report, walk, range(walk.prev_index + 1, seg.index), seg, dropped,
                     "not deleted by housekeeping, which deletes in order" if head is None or head.index < seg.index
                     else "delivered, but deleted out of order")
        want = head if head is not None and head.segment == seg.name else None
        walk.prev_index = seg.index
        try:
            _check_segment(seg, walk, want, report)
            if _has_tail(seg) and liveness.sealed(seg, segments):
                report.torn_tails += 1
                report.torn.append(f"instance {instance}: {seg.name} ends with a torn record after {walk.place()} "
                                   "(its writer stopped in the middle of a write: a crash or a full disk, not "
                                   "tampering; the record is lost)")
        except FileNotFoundError:
            walk.prev_hash = None  # shipped and deleted while we read
    top = max([s.index for s in segs] + ([head.index] if head is not None else []) + [0])
    seen = checkpoint.seen.get(instance, 0)
    if seen > top:
        _missing(report, walk, range(top + 1, seen + 1), None, dropped,
                 "the shipper listed them, the collector never acknowledged them")


def _missing(report: ChainReport, walk: _Walk, indices: range, before: Segment | None, dropped: set[int],
             why: str) -> None:
    """Report segments `indices` of an instance as gone: a gap, unless the disk quota dropped them."""
    quota = [i for i in indices if i in dropped]
    gone = [i for i in indices if i not in dropped]
    if quota:
        report.notes.append(f"instance {walk.instance}: segments {_spans(quota)} were dropped by the disk quota "
                            "before delivery (counted in `dropped`, reported to the collector)")
    if not gone:
        walk.prev_hash = None
        return
    upto = f" up to {before.name}" if before is not None else " up to the end"
    what = f"the records after {walk.after or walk.place()}{upto}"
    seq_range = _seq_range(walk, before)
    report.problems.append(ChainProblem(
        before.name if before is not None else "", 1 if before is not None else 0, "missing-segment",
        f"instance {walk.instance}: segments {_spans(gone)} are missing ({why}): {what}{seq_range} are gone",
        walk.instance))
    walk.prev_hash = None


def _seq_range(walk: _Walk, before: Segment | None) -> str:
    """The seq range of a gap, when the records say it (seq numbered per instance)."""
    if before is None or walk.prev_seq is None:
        return ""
    try:
        line = next(iter(iter_lines(before.path)), None)
        first = json.loads(line.raw).get("seq") if line is not None else None
    except (OSError, ValueError, AttributeError):
        return ""
    if isinstance(first, int) and first > walk.prev_seq + 1:
        return f" (seq {walk.prev_seq + 1}..{first - 1})"
    return ""


def _check_segment(seg: Segment, walk: _Walk, head: Head | None, report: ChainReport) -> None:
    """Check one segment's lines, moving `walk` on to its last line. `head`: the delivered head inside it."""
    expected_seq: int | None = None
    number = 0
    head_seen = False
    last_seq = walk.prev_seq
    for line in iter_lines(seg.path):
        number += 1
        digest = hashlib.sha256(line.raw).hexdigest()
        if head is not None and line.end == head.offset:
            head_seen = digest == head.hash
        try:
            record = json.loads(line.raw)
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            report.problems.append(ChainProblem(seg.name, number, "corrupt", "not a JSON record (damaged or edited)",
                                                walk.instance))
            expected_seq = None if expected_seq is None else expected_seq + 1
            walk.prev_hash = digest
            continue
        report.records += 1
        seq = record.get("seq")
        where = f"instance {walk.instance}, segment {seg.index}"
        if expected_seq is None:  # the first line: seq 1, or the instance's count going on
            if seq == 1 or (last_seq is not None and seq == last_seq + 1):
                expected_seq = seq
            elif isinstance(seq, int) and seq > 1:
                low = last_seq + 1 if last_seq is not None and seq > last_seq + 1 else 1
                expected_seq = low
        if seq != expected_seq:
            detail = (f"{where}: seq {seq} follows {expected_seq - 1}: records {expected_seq}..{seq - 1} are missing"
                      if isinstance(seq, int) and isinstance(expected_seq, int) and seq > expected_seq else
                      f"{where}: seq {seq} where {expected_seq} was expected (a record was inserted or reordered)")
            report.problems.append(ChainProblem(seg.name, number, "gap", detail, walk.instance))
        elif walk.prev_hash is not None and record.get("prev_hash") != walk.prev_hash:
            detail = ("prev_hash does not match the line before it: that line was edited" if number > 1 else
                      f"prev_hash does not continue {walk.after}: it was edited after delivery, or the chain was "
                      "rewritten" if walk.after else "prev_hash does not match the end of the previous segment")
            report.problems.append(ChainProblem(seg.name, number, "edit", f"{where}: {detail}", walk.instance))
        expected_seq = (seq if isinstance(seq, int) else (expected_seq or 0)) + 1
        last_seq = seq if isinstance(seq, int) else last_seq
        walk.prev_hash = digest
        walk.after = ""
    walk.prev_seq = last_seq
    if head is not None and not head_seen:
        report.problems.append(ChainProblem(
            seg.name, 0, "changed",
            f"instance {walk.instance}: the collector acknowledged the records up to {head.position()} (offset "
            f"{head.offset}), but the line there is not the one delivered: records already delivered were edited, "
            "removed or inserted afterwards (the collector holds the originals)", walk.instance))


def _vanished(layout: Layout, segments: list[Segment], checkpoint: Checkpoint, report: ChainReport) -> None:
    """Segments the collector acknowledged in part that are gone, though housekeeping did not delete them."""
    present = {s.name for s in segments}
    for entry in checkpoint.vanished:
        report.problems.append(ChainProblem(str(entry.get("segment", "")), 0, "vanished", str(entry.get("detail", "")),
                                            str(entry.get("instance", ""))))
    candidates = [name for name in checkpoint.acked if name not in present and not (layout.spool / name).exists()]
    if not candidates:
        return
    fresh = Checkpoint.load(layout.checkpoint, repair=False)  # housekeeping may have deleted it just now
    for name in candidates:
        if name in fresh.acked and not (layout.spool / name).exists():
            report.problems.append(ChainProblem(name, 0, "vanished", vanished_text(name, checkpoint),
                                                instance_of(name)))


def instance_of(name: str) -> str:
    m = SEGMENT_RE.match(name)
    return m["instance"] if m else ""


def vanished_text(name: str, checkpoint: Checkpoint) -> str:
    """What a segment gone before full delivery means (for status and the shipper's event)."""
    instance = instance_of(name)
    head = checkpoint.heads.get(instance)
    upto = (f"up to {head.position()}" if head is not None and head.segment == name else
            f"up to byte {checkpoint.acked.get(name, 0)}")
    return (f"instance {instance}: {name} is gone, but housekeeping did not delete it: the collector had "
            f"acknowledged it only {upto}; whatever followed in it was never delivered")
