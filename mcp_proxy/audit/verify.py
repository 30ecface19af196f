"""Checking the hash chain of the segments on disk: gaps, edits, damaged lines.

Every record carries `seq` (1, 2, ... within its segment) and `prev_hash` (the
SHA-256 of the previous line's bytes, continuing across an instance's segments).
So, within what is still on disk:

* a removed line shows as a jump in `seq` (and a `prev_hash` that does not match);
* an edited line shows as the next record's `prev_hash` not matching it;
* an inserted or reordered line shows as both;
* a missing segment (not deleted by the shipper, whose deletions are in order) shows as a jump in
  segment numbers.

What this cannot see locally: an edit of the very last line of an instance, or
the removal of whole trailing lines (nothing follows them). The collector can:
every shipped record carries `audit.record_hash` (its own line's hash), so the
next record's `prev_hash` can be checked there, across everything ever shipped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from mcp_proxy.audit.layout import Layout, Liveness, Segment
from mcp_proxy.audit.reader import iter_lines


@dataclass
class ChainProblem:
    segment: str
    line: int  # 1-based line number in the segment file
    kind: str  # "gap" | "edit" | "corrupt" | "missing-segment"
    detail: str

    def __str__(self) -> str:
        return f"{self.segment} line {self.line}: {self.detail}"


@dataclass
class ChainReport:
    records: int = 0
    segments: int = 0
    torn_tails: int = 0
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _has_tail(seg: Segment) -> bool:
    if seg.size == 0:
        return False
    with open(seg.path, "rb") as fh:
        fh.seek(seg.size - 1)
        return fh.read(1) != b"\n"


def verify(layout: Layout, segments: list[Segment] | None = None) -> ChainReport:
    report = ChainReport()
    segments = layout.segments() if segments is None else segments
    liveness = Liveness(layout)
    by_instance: dict[str, list[Segment]] = {}
    for seg in segments:
        by_instance.setdefault(seg.instance, []).append(seg)
    for segs in by_instance.values():
        segs.sort(key=lambda s: s.index)
        prev_hash: str | None = None
        prev_index: int | None = None
        for seg in segs:
            report.segments += 1
            if prev_index is None:
                prev_hash = "" if seg.index == 1 else None  # earlier segments were shipped and deleted
            elif seg.index != prev_index + 1:
                report.problems.append(ChainProblem(seg.name, 1, "missing-segment",
                                                    f"segments {prev_index + 1}..{seg.index - 1} of this instance "
                                                    "are missing"))
                prev_hash = None
            prev_index = seg.index
            try:
                prev_hash = _check_segment(seg, prev_hash, report)
                if _has_tail(seg) and liveness.sealed(seg, segments):
                    report.torn_tails += 1
            except FileNotFoundError:
                prev_hash = None  # shipped and deleted while we read
    return report


def _check_segment(seg: Segment, prev_hash: str | None, report: ChainReport) -> str | None:
    """Check one segment's lines; returns the hash of its last line (the next segment's expected link)."""
    expected_seq = 1
    number = 0
    for line in iter_lines(seg.path):
        number += 1
        digest = hashlib.sha256(line.raw).hexdigest()
        try:
            record = json.loads(line.raw)
        except (ValueError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict):
            report.problems.append(ChainProblem(seg.name, number, "corrupt", "not a JSON record (damaged or edited)"))
            expected_seq += 1
            prev_hash = digest
            continue
        report.records += 1
        seq = record.get("seq")
        if seq != expected_seq:
            detail = (f"seq {seq} follows {expected_seq - 1}: records {expected_seq}..{seq - 1} are missing"
                      if isinstance(seq, int) and seq > expected_seq else
                      f"seq {seq} where {expected_seq} was expected (a record was inserted or reordered)")
            report.problems.append(ChainProblem(seg.name, number, "gap", detail))
        elif prev_hash is not None and record.get("prev_hash") != prev_hash:
            report.problems.append(ChainProblem(
                seg.name, number, "edit", "prev_hash does not match the line before it: that line was edited"
                if number > 1 else "prev_hash does not match the end of the previous segment"))
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
        prev_hash = digest
    return prev_hash
