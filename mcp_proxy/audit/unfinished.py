"""Closing the calls a process left open: a `mcp.tool.started` with no `mcp.tool.call` from a writer gone.

A process killed with kill -9 (or a power cut) between a call's two records leaves its `mcp.tool.started`
without an end. At the next start of any proxy process, `sweep` appends, for each of them, one
`mcp.tool.call` with outcome `unknown`, `error.type` `process_ended`, the call's `gen_ai.tool.call.id`,
tool, upstream and user, and `audit.closes_instance` / `audit.closes_record` (the writer and the started
record it closes), so the collector can join the two.

Which calls are open, and why only those:

* Only writers that are gone are swept: an instance whose writer lock is free (layout.py: the OS frees
  it even after kill -9). A live process's open calls are in flight, never closed here.
* An instance's calls end in its own segments (AuditCall writes in the same process), so a writer's
  open calls are its started records (complete lines only: reader.py skips a torn last line) whose
  call id none of its own `mcp.tool.call` records carries, minus those a sweep closed before.
* What was swept is noted in `<audit dir>/unfinished.json`, so a start scans only the segments of
  writers that died since: the note maps each swept instance to the segments scanned and the calls
  closed, and forgets instances whose segments are all gone (shipped and deleted).

Exactly once, across processes starting together and across a crash of the sweeper itself:

* One sweep at a time, under `<locks>/audit-unfinished.lock`; a second process waits for it, then
  finds the first one's work in the note.
* The note is written twice around the appends: first a `pending` entry naming this sweeper's
  instance and the calls it is about to close, then (once the closes are fsync'd) the instances as
  swept, without `pending`. A sweep that finds `pending` entries (their sweepers died in between) looks
  in those sweepers' segments for the closes they wrote and closes only the rest. With no readable note (the
  first sweep, or a damaged note) every segment is searched for earlier closes once.

Limit: a started record in a segment that was shipped and deleted before any process started again
(another proxy kept running and shipped the dead writer's segments) cannot be checked here; the
collector holds it and can tell that no end arrived.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_proxy.audit.layout import Layout, Liveness, Segment
from mcp_proxy.audit.reader import iter_raw
from mcp_proxy.fsutil import FileLock, atomic_write

log = logging.getLogger(__name__)

NOTE_NAME = "unfinished.json"
LOCK_NAME = "audit-unfinished.lock"
LOCK_WAIT = 30.0  # seconds a sweep waits for another process's sweep (it then finds that one's work noted)
NOTE_VERSION = 1

# Parsing every line as JSON is most of a scan's cost, so lines are matched on the writer's own compact
# form (spool.py: `{"id":…,"seq":…,"time":…,"event_name":…` first) and only the started records left open
# are parsed. A call id matched before any nested `{` is the record's own: a `"key":"value"` pair can only
# be inside an object, and a string cannot hold an unescaped quote.
_HEAD = re.compile(rb'\{"id":"[^"\\]*","seq":\d+,"time":"[^"\\]*","event_name":"mcp\.tool\.(started|call)"')
_CALL_ID = re.compile(rb'"gen_ai\.tool\.call\.id":"([^"\\]+)"')
_CLOSES = b'"audit.closes_instance"'

# What a close copies from the started record: who called what, where, in which trace. Not the
# arguments: they are in the started record already.
COPIED = ("mcp.method.name", "gen_ai.tool.name", "gen_ai.tool.call.id", "jsonrpc.request.id", "upstream",
          "upstream.tool", "user.email", "mcp.client.name", "mcp.client.version", "policy.revision", "decision",
          "reason", "policy.decision.code", "trace_id", "span_id", "parent_span_id")

# Appends one record and makes it durable; True once it is on disk (False: not written, or not synced).
Append = Callable[[str, dict[str, Any]], bool]


@dataclass
class SweepReport:
    instances: int = 0  # dead writers scanned now
    live: int = 0  # writers skipped because they are running
    segments: int = 0
    bytes: int = 0
    lines: int = 0
    closed: int = 0
    busy: bool = False  # another process's sweep held the lock for longer than we waited
    stopped: bool = False  # the process is stopping: the rest is left to the next start
    incomplete: bool = False  # a close could not be written: the note keeps it pending
    seconds: float = 0.0


@dataclass
class _Note:
    instances: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # inst -> segments, closed
    # Sweeps that died between their appends and their note: [{"by": sweeper, "calls": {inst: [ids]}}, ...]
    pending: list[dict[str, Any]] = field(default_factory=list)
    trusted: bool = True  # False: absent or unreadable, so earlier closes must be searched for

    @classmethod
    def load(cls, path: Path) -> _Note:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(trusted=False)
        except (OSError, ValueError) as exc:
            log.warning("the note of swept audit segments %s is unreadable (%s); searching the whole spool once",
                        path, type(exc).__name__)
            return cls(trusted=False)
        if not isinstance(data, dict) or data.get("version") != NOTE_VERSION:
            return cls(trusted=False)
        instances, pending = data.get("instances"), data.get("pending")
        if not isinstance(instances, dict):
            return cls(trusted=False)
        try:
            clean = {str(k): {"segments": [str(s) for s in v["segments"]], "closed": [str(c) for c in v["closed"]]}
                     for k, v in instances.items()}
        except (KeyError, TypeError):
            return cls(trusted=False)
        pending = pending if isinstance(pending, list) else []
        if not all(isinstance(p, dict) and isinstance(p.get("by"), str) and isinstance(p.get("calls"), dict)
                   for p in pending):
            return cls(trusted=False)
        return cls(clean, pending)

    def save(self, path: Path) -> None:
        data: dict[str, Any] = {"version": NOTE_VERSION, "instances": self.instances}
        if self.pending:
            data["pending"] = self.pending
        atomic_write(path, json.dumps(data, separators=(",", ":")).encode())  # durable: fsync'd, renamed


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _call_of(raw: bytes) -> tuple[str, str] | None:
    """(event, call id) of a started or ended call's line; None for any other line."""
    head = _HEAD.match(raw)
    if head is None:
        return None
    event = "mcp.tool.started" if head[1] == b"started" else "mcp.tool.call"
    found = _CALL_ID.search(raw, head.end())
    nested = raw.find(b"{", 1)
    if found is not None and (nested < 0 or nested > found.start()):
        return event, found[1].decode("utf-8", "replace")
    record = _parse(raw)  # an unusual layout: parse it
    cid = record.get("gen_ai.tool.call.id") if record is not None else None
    return (event, cid) if isinstance(cid, str) and record is not None and record.get("event_name") == event \
        else None


class _Scan:
    """What one instance's segments say: started records by call id, the call ids that ended."""

    def __init__(self) -> None:
        self.started: dict[str, bytes] = {}
        self.ended: set[str] = set()

    def read(self, segments: Iterable[Segment], report: SweepReport, stop: threading.Event | None) -> bool:
        for seg in segments:
            if stop is not None and stop.is_set():
                return False
            report.segments += 1
            report.bytes += seg.size
            try:
                for raw in iter_raw(seg.path):  # complete lines only: a torn last line is not a record
                    report.lines += 1
                    call = _call_of(raw)
                    if call is None:
                        continue
                    if call[0] == "mcp.tool.call":
                        self.ended.add(call[1])
                    else:
                        self.started.setdefault(call[1], raw)
            except FileNotFoundError:
                continue  # shipped and deleted while we read: its records reached the collector
        return True

    def open_calls(self, closed: set[str]) -> list[dict[str, Any]]:
        out = []
        for cid, raw in self.started.items():
            if cid in self.ended or cid in closed:
                continue
            record = _parse(raw)  # parsed only now: the few left open
            if record is not None and record.get("event_name") == "mcp.tool.started" \
                    and record.get("gen_ai.tool.call.id") == cid:
                out.append(record)
        return out


def closes_in(segments: Iterable[Segment]) -> dict[str, set[str]]:
    """Closes written by earlier sweeps in these segments: closed instance -> call ids."""
    out: dict[str, set[str]] = {}
    for seg in segments:
        try:
            for raw in iter_raw(seg.path):
                if _CLOSES not in raw:
                    continue
                record = _parse(raw)
                if record is None or record.get("event_name") != "mcp.tool.call":
                    continue
                inst, cid = record.get("audit.closes_instance"), record.get("gen_ai.tool.call.id")
                if isinstance(inst, str) and isinstance(cid, str):
                    out.setdefault(inst, set()).add(cid)
        except FileNotFoundError:
            continue
    return out


def close_fields(started: dict[str, Any], instance: str) -> dict[str, Any]:
    """The `mcp.tool.call` fields that close `started`, a record of writer `instance` that is gone."""
    fields = {k: started[k] for k in COPIED if started.get(k) is not None}
    fields.update({"outcome": "unknown", "error.type": "process_ended",
                   "audit.closes_instance": started.get("service.instance.id") or instance,
                   "audit.closes_record": started.get("id"), "audit.started_time": started.get("time")})
    return fields


def sweep(layout: Layout, own_instance: str, append: Append, *, wait: float = LOCK_WAIT,
          stop: threading.Event | None = None) -> SweepReport:
    """Close every open call of every writer that is gone, once. Blocking (reads the spool, fsyncs): run it
    in a worker thread. `own_instance` is this process's (alive, never swept)."""
    began = time.perf_counter()
    report = SweepReport()
    lock = FileLock(layout.locks / LOCK_NAME)
    deadline = time.monotonic() + wait
    while not lock.try_acquire():
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            report.busy = True
            return report
        time.sleep(0.05)
    try:
        _sweep_locked(layout, own_instance, append, stop, report)
    finally:
        lock.release()
    report.seconds = time.perf_counter() - began
    return report


def _sweep_locked(layout: Layout, own: str, append: Append, stop: threading.Event | None,
                  report: SweepReport) -> None:
    path = layout.root / NOTE_NAME
    note = _Note.load(path)
    by_instance: dict[str, list[Segment]] = {}
    for seg in layout.segments():
        by_instance.setdefault(seg.instance, []).append(seg)
    known: dict[str, set[str]] = {inst: set(entry["closed"]) for inst, entry in note.instances.items()}
    if not note.trusted:  # the first sweep, or a damaged note: find what earlier sweeps closed
        for inst, ids in closes_in(s for segs in by_instance.values() for s in segs).items():
            known.setdefault(inst, set()).update(ids)
    for pending in note.pending:  # a sweeper died between its appends and its note: what did it write?
        by = pending["by"]
        if by in by_instance:
            for inst, ids in closes_in(by_instance[by]).items():
                known.setdefault(inst, set()).update(ids)
        else:  # its segments were shipped and deleted, so its closes reached the collector
            for inst, ids in pending["calls"].items():
                known.setdefault(str(inst), set()).update(str(i) for i in ids)
    liveness = Liveness(layout)
    to_close: list[tuple[str, dict[str, Any]]] = []
    swept: dict[str, dict[str, list[str]]] = {}
    for inst, segs in by_instance.items():
        names = [s.name for s in segs]
        noted = note.instances.get(inst)
        if inst == own or (noted is not None and set(names) <= set(noted["segments"])):
            continue
        if liveness.alive(inst):
            report.live += 1
            continue
        scan = _Scan()
        if not scan.read(segs, report, stop):
            report.stopped = True
            return  # nothing appended, nothing noted: the next start does it all
        report.instances += 1
        closed = known.get(inst, set())
        opened = scan.open_calls(closed)
        to_close += [(inst, r) for r in opened]
        swept[inst] = {"segments": names, "closed": sorted(closed | {str(r["gen_ai.tool.call.id"]) for r in opened})}
    if not swept and note.trusted and not note.pending:
        return  # nothing new since the last sweep: no write at all (the common start)
    if to_close:
        calls: dict[str, list[str]] = {}
        for inst, record in to_close:
            calls.setdefault(inst, []).append(str(record["gen_ai.tool.call.id"]))
        note.pending.append({"by": own, "calls": calls})  # earlier ones kept: their closes are not noted yet
        note.save(path)
        for inst, record in to_close:
            if not append("mcp.tool.call", close_fields(record, inst)):
                report.incomplete = True  # kept pending: the next start finds what got written
                log.warning("could not write the close of an unfinished call to the audit log; the next start "
                            "closes it")
                return
            report.closed += 1
    for inst, entry in swept.items():
        note.instances[inst] = entry
    for inst in [i for i in note.instances if i not in by_instance]:
        del note.instances[inst]  # every segment of it is gone: nothing left to sweep
    note.pending = []
    note.save(path)


class SweepThread(threading.Thread):
    """Runs one sweep in a daemon thread, so start-up never waits for it; `stop` asks it to end early."""

    def __init__(self, layout: Layout, own_instance: str, append: Append) -> None:
        super().__init__(name="audit-unfinished", daemon=True)
        self.layout = layout
        self.own_instance = own_instance
        self.append = append
        self.halt = threading.Event()
        self.report: SweepReport | None = None

    def run(self) -> None:
        try:
            report = sweep(self.layout, self.own_instance, self.append, stop=self.halt)
        except OSError as exc:
            log.warning("could not close the calls earlier processes left unfinished (%s); the next start "
                        "tries again", exc.strerror or type(exc).__name__)
            return
        except Exception:  # a bug here must not take serve down; the next start tries again
            log.exception("closing the calls earlier processes left unfinished failed")
            return
        self.report = report
        log.debug("unfinished calls swept: %d closed, %d segments read in %.3f s", report.closed, report.segments,
                  report.seconds)
        if report.closed or report.instances:
            log.info("closed %d call(s) left unfinished by %d process(es) that ended (%d segments, %.1f MiB, "
                     "%.2f s)", report.closed, report.instances, report.segments, report.bytes / 2**20,
                     report.seconds)
        if report.busy:
            log.info("another process is closing unfinished calls; left to it")

    def stop(self, timeout: float) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout)
