"""Where the spool lives and how its files are named; which writers are alive.

    <data dir>/audit/spool/<UTC stamp>-<instance>-<n>.jsonl   segments (one writer process each)
    <data dir>/audit/checkpoint.json                           what the collector acknowledged
    <data dir>/audit/state.json                                last push, counters (status, doctor)
    <data dir>/audit/rejected/                                 batches the collector refused, kept
    <data dir>/locks/audit-writer-<instance>.lock              held by a writer for its lifetime
    <data dir>/locks/audit-ship.lock                           held by the one process shipping

A segment's name starts with its creation time, so names sort oldest first. A
writer only ever appends to its newest segment; a segment is *sealed* (nothing
will be appended any more) once a newer one of the same instance exists or its
writer is gone (its lock is free: the OS frees it even after kill -9).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from mcp_proxy.fsutil import FileLock
from mcp_proxy.paths import Paths

SEGMENT_RE = re.compile(r"^(?P<stamp>\d{8}T\d{9}Z)-(?P<instance>[A-Za-z0-9_]+)-(?P<index>\d{6})\.jsonl$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def safe_instance(instance_id: str) -> str:
    return _UNSAFE.sub("_", instance_id)[:64] or "x"


def stamp(ts: float) -> str:
    ms = int((ts - int(ts)) * 1000)
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(int(ts))) + f"{ms:03d}Z"


@dataclass(frozen=True)
class Segment:
    path: Path
    instance: str
    index: int
    stamp: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


class Layout:
    def __init__(self, paths: Paths) -> None:
        self.root = paths.audit_dir
        self.spool = self.root / "spool"
        self.rejected = self.root / "rejected"
        self.checkpoint = self.root / "checkpoint.json"
        self.state = self.root / "state.json"
        self.locks = paths.locks_dir
        self.ship_lock = self.locks / "audit-ship.lock"

    def segment_path(self, instance: str, index: int, ts: float) -> Path:
        return self.spool / f"{stamp(ts)}-{safe_instance(instance)}-{index:06d}.jsonl"

    def writer_lock(self, instance: str) -> Path:
        return self.locks / f"audit-writer-{safe_instance(instance)}.lock"

    def segments(self) -> list[Segment]:
        """Every segment, oldest first. Files that vanish while listing are skipped."""
        out = []
        try:
            entries = list(self.spool.iterdir())
        except FileNotFoundError:
            return []
        for path in entries:
            m = SEGMENT_RE.match(path.name)
            if not m:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            out.append(Segment(path, m["instance"], int(m["index"]), m["stamp"], size))
        out.sort(key=lambda s: (s.stamp, s.instance, s.index))
        return out

    def rejected_files(self) -> list[Path]:
        try:
            return sorted(p for p in self.rejected.iterdir() if p.suffix == ".jsonl")
        except FileNotFoundError:
            return []


class Liveness:
    """Answers "is this instance's writer still running?", once per instance per scan."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._alive: dict[str, bool] = {}

    def alive(self, instance: str) -> bool:
        if instance not in self._alive:
            path = self.layout.writer_lock(instance)
            if not path.exists():
                self._alive[instance] = False
            else:
                lock = FileLock(path)
                free = lock.try_acquire()
                if free:
                    lock.release()
                self._alive[instance] = not free
        return self._alive[instance]

    def sealed(self, segment: Segment, segments: list[Segment]) -> bool:
        newer = any(s.instance == segment.instance and s.index > segment.index for s in segments)
        return newer or not self.alive(segment.instance)

    def done(self, segment: Segment, segments: list[Segment], acked: int) -> bool:
        """Whether `segment` may be deleted: sealed, and every byte in it acknowledged. The size is read
        again *after* the liveness check: a writer may have appended its last record and exited between
        the directory listing and the check, and those bytes are not acknowledged."""
        if acked < segment.size or not self.sealed(segment, segments):
            return False
        try:
            return segment.path.stat().st_size <= acked
        except FileNotFoundError:
            return False
