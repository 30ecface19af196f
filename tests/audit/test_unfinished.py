"""The sweep of unfinished calls (audit/unfinished.py), in-process: which started records it closes, that it
closes each once (concurrent sweeps, a sweeper that died half-way, a lost or damaged note), and what a
second start costs."""

from __future__ import annotations

import json
import threading

from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.reader import iter_lines
from mcp_proxy.audit.unfinished import LOCK_NAME, NOTE_NAME, sweep
from mcp_proxy.audit.verify import verify
from mcp_proxy.config import AuditConfig
from mcp_proxy.fsutil import FileLock
from tests._support.unfinished import closes, cut_last_record, ended, started


def _sweep(spool, instance: str = "sweeper", **kw):
    log = spool.open(instance=instance)
    return sweep(Layout(spool.paths), instance, log.append_on_disk, **kw), log


def test_a_dead_writers_started_call_is_closed_unknown_with_what_the_collector_joins_on(spool):
    dead = spool.open(instance="dead1")
    record = started(dead, "call-a")
    started(dead, "call-b")
    ended(dead, "call-b")
    dead.close()
    report, _ = _sweep(spool)
    assert report.closed == 1
    [close] = closes(spool.records())
    assert close["gen_ai.tool.call.id"] == "call-a"
    assert (close["outcome"], close["error.type"]) == ("unknown", "process_ended")
    assert close["audit.closes_instance"] == "dead1" and close["audit.closes_record"] == record["id"]
    assert (close["gen_ai.tool.name"], close["upstream"], close["upstream.tool"]) == ("f_slow", "f", "slow")
    assert close["user.email"] == "bob@example.com" and close["trace_id"] == record["trace_id"]
    assert close["service.instance.id"] == "sweeper"
    assert "gen_ai.tool.call.arguments" not in close, "the arguments are in the started record already"


def test_a_live_writers_started_call_is_never_closed(spool):
    live = spool.open(instance="live1")
    started(live, "in-flight")
    report, _ = _sweep(spool)
    assert report.closed == 0 and report.live == 1
    assert closes(spool.records()) == []
    live.close()  # now it is gone (without an end): the next start closes it
    report, _ = _sweep(spool, "sweeper2")
    assert [c["gen_ai.tool.call.id"] for c in closes(spool.records())] == ["in-flight"]


def test_an_end_in_a_later_segment_of_the_same_writer_counts(spool):
    dead = spool.open(AuditConfig(segment_max_bytes=4096, max_disk_bytes=1 << 30), instance="dead1")
    started(dead, "long-call")
    for i in range(40):
        ended(dead, f"filler-{i}")
    ended(dead, "long-call")
    dead.close()
    assert len(Layout(spool.paths).segments()) > 1
    report, _ = _sweep(spool)
    assert report.closed == 0 and report.instances == 1


def test_a_second_sweep_closes_nothing_and_reads_nothing(spool):
    dead = spool.open(instance="dead1")
    started(dead, "call-a")
    dead.close()
    first, _ = _sweep(spool, "s1")
    second, _ = _sweep(spool, "s2")
    assert (first.closed, second.closed) == (1, 0)
    assert second.bytes == 0 and second.lines == 0, "what was swept is noted, not read again"
    assert len(closes(spool.records())) == 1


def test_concurrent_sweeps_close_each_call_once(spool):
    dead = spool.open(instance="dead1")
    for i in range(5):
        started(dead, f"call-{i}")
    dead.close()
    sweepers = [spool.open(instance=f"sweeper{i}") for i in range(6)]
    barrier = threading.Barrier(len(sweepers))

    def run(log) -> None:
        barrier.wait()
        sweep(Layout(spool.paths), log.context.instance_id, log.append_on_disk)

    threads = [threading.Thread(target=run, args=(log,)) for log in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = sorted(c["gen_ai.tool.call.id"] for c in closes(spool.records()))
    assert ids == [f"call-{i}" for i in range(5)]


def test_a_sweep_waits_for_the_one_under_way_then_finds_its_work(spool):
    dead = spool.open(instance="dead1")
    started(dead, "call-a")
    dead.close()
    holder = FileLock(Layout(spool.paths).locks / LOCK_NAME)
    assert holder.try_acquire()
    report, _ = _sweep(spool, "waiting", wait=0.2)
    assert report.busy and report.closed == 0
    holder.release()
    report, _ = _sweep(spool, "after")
    assert report.closed == 1


def test_a_sweeper_that_died_after_some_closes_leaves_the_rest_to_the_next(spool):
    dead = spool.open(instance="dead1")
    for i in range(3):
        started(dead, f"call-{i}")
    dead.close()
    crashed = spool.open(instance="crashed")
    written = []

    def append_then_die(event, fields) -> bool:
        if len(written) == 1:
            return False  # the process went away here: the note still says pending
        written.append(fields["gen_ai.tool.call.id"])
        return crashed.append_on_disk(event, fields)

    report = sweep(Layout(spool.paths), "crashed", append_then_die)
    assert report.incomplete and report.closed == 1
    crashed.close()
    note = json.loads((Layout(spool.paths).root / NOTE_NAME).read_text())
    assert [p["by"] for p in note["pending"]] == ["crashed"]
    crashed2 = spool.open(instance="crashed2")  # and the next sweeper dies after one close too

    def append_one_more(event, fields) -> bool:
        if len(written) == 2:
            return False
        written.append(fields["gen_ai.tool.call.id"])
        return crashed2.append_on_disk(event, fields)

    report = sweep(Layout(spool.paths), "crashed2", append_one_more)
    assert report.incomplete and report.closed == 1
    crashed2.close()
    report, _ = _sweep(spool, "next")
    assert report.closed == 1
    ids = sorted(c["gen_ai.tool.call.id"] for c in closes(spool.records()))
    assert ids == ["call-0", "call-1", "call-2"]
    assert "pending" not in json.loads((Layout(spool.paths).root / NOTE_NAME).read_text())


def test_a_lost_or_damaged_note_does_not_close_twice(spool):
    dead = spool.open(instance="dead1")
    started(dead, "call-a")
    dead.close()
    _sweep(spool, "s1")
    note = Layout(spool.paths).root / NOTE_NAME
    note.unlink()
    report, _ = _sweep(spool, "s2")
    assert report.closed == 0
    note.write_text("{not json")
    report, _ = _sweep(spool, "s3")
    assert report.closed == 0
    assert len(closes(spool.records())) == 1


def test_a_torn_started_line_is_skipped_a_torn_end_leaves_the_call_open(spool):
    dead = spool.open(instance="dead1")
    started(dead, "complete-start")
    ended(dead, "complete-start")
    dead.close()
    [seg] = Layout(spool.paths).segments()
    before = cut_last_record(seg.path)  # the end is torn: the started record counts, unmatched
    other = spool.open(instance="dead2")
    started(other, "torn-start")
    other.close()
    [seg2] = [s for s in Layout(spool.paths).segments() if s.instance == "dead2"]
    cut_last_record(seg2.path)  # the started record itself is torn: it is not a record
    report, _ = _sweep(spool)
    assert [c["gen_ai.tool.call.id"] for c in closes(spool.records())] == ["complete-start"]
    assert report.closed == 1
    assert seg.path.read_bytes() == before, "the dead writer's segment is left as it is"
    chain = verify(Layout(spool.paths))
    assert chain.ok and chain.torn_tails == 2


def test_the_note_forgets_writers_whose_segments_are_gone(spool):
    dead = spool.open(instance="dead1")
    started(dead, "call-a")
    dead.close()
    _sweep(spool, "s1")
    for seg in Layout(spool.paths).segments():
        if seg.instance == "dead1":
            seg.path.unlink()  # shipped and deleted
    dead2 = spool.open(instance="dead2")
    started(dead2, "call-b")
    dead2.close()
    _sweep(spool, "s2")
    note = json.loads((Layout(spool.paths).root / NOTE_NAME).read_text())
    assert "dead1" not in note["instances"] and "dead2" in note["instances"]


def test_records_written_before_the_sweep_are_all_kept(spool):
    dead = spool.open(instance="dead1")
    ids = [started(dead, f"c{i}")["id"] for i in range(3)] + [ended(dead, "c0")["id"]]
    dead.close()
    _sweep(spool)
    on_disk = [json.loads(line.raw)["id"] for s in Layout(spool.paths).segments() for line in iter_lines(s.path)]
    assert set(ids) <= set(on_disk)


def test_fields_that_look_like_a_records_own_do_not_fool_the_scan(spool):
    dead = spool.open(instance="dead1")
    # arguments holding another call's id and event name, and a tool name with a brace and a quote
    started(dead, "call-a", **{"gen_ai.tool.name": 'we{ird"name'})
    started(dead, "call-b", arguments={"gen_ai.tool.call.id": "call-a", "event_name": "mcp.tool.call"})
    dead.append_nowait("mcp.tool.denied", {"gen_ai.tool.call.id": "call-b", "arguments": {}})
    dead.close()
    report, _ = _sweep(spool)
    assert sorted(c["gen_ai.tool.call.id"] for c in closes(spool.records())) == ["call-a", "call-b"]
    assert report.closed == 2
    [close_a] = closes(spool.records(), "call-a")
    assert close_a["gen_ai.tool.name"] == 'we{ird"name'
