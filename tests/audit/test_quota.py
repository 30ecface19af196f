"""The disk quota: acknowledged data goes first, then the oldest unsent data, with exact accounting."""

from __future__ import annotations

import pytest

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.quota import LOW_WATER, enforce, spool_bytes
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.fsutil import FileLock
from tests._support.audit import call

pytestmark = pytest.mark.anyio

SMALL = dict(max_disk_bytes=65536, segment_max_bytes=4096)


async def test_a_full_spool_drops_the_oldest_records_and_counts_them_exactly(spool):
    log = spool.open(spool.config(**SMALL))
    written = call(log, 600)  # ~350 KB of records into a 64 KiB quota, nobody shipping
    log.close()
    layout = Layout(spool.paths)
    assert spool_bytes(layout) <= 65536 + 65536  # checked every 64 KiB written, so at most one interval over
    remaining = spool.records()
    state = ShipState.load(layout.state)
    assert state.dropped_records > 0
    assert state.dropped_records + len(remaining) == log.writer.written  # every line is either here or counted
    user = [r["id"] for r in remaining if r["event_name"] == "mcp.tool.call"]
    assert user == [w["id"] for w in written][-len(user):]  # the newest survive, in order
    drops = [r for r in remaining if r["event_name"] == "audit.dropped"]
    assert drops and all(d["audit.dropped.records"] > 0 and d["audit.quota_bytes"] == 65536 for d in drops)
    assert drops[-1]["audit.dropped.oldest_time"] <= drops[-1]["audit.dropped.newest_time"]


async def test_acknowledged_segments_are_freed_before_any_unsent_record(spool):
    log = spool.open(spool.config(segment_max_bytes=4096, max_disk_bytes=1 << 20))
    call(log, 60)
    log.close()
    layout = Layout(spool.paths)
    segments = layout.segments()
    acked_lines = sum(len(s.path.read_bytes().splitlines()) for s in segments[:2])
    s0, s1 = segments[0].size, segments[1].size
    checkpoint = Checkpoint(acked={segments[0].name: s0, segments[1].name: s1})  # acked, not yet deleted
    state = ShipState()
    total = sum(s.size for s in segments)
    quota = int((total - s0 - s1) / LOW_WATER) + 1  # freeing both acked segments is just enough
    report = enforce(layout, quota, checkpoint, state)
    assert report.records == 0 and state.dropped_records == 0 and report.acked_freed == s0 + s1
    assert [s.name for s in layout.segments()] == [s.name for s in segments[2:]]
    report = enforce(layout, 1, checkpoint, state)  # now only unsent data is left to drop
    assert report.records == 60 - acked_lines == state.dropped_records
    assert report.segments == [s.name for s in segments[2:]]


async def test_set_aside_batches_go_before_unsent_records(spool):
    log = spool.open(spool.config(segment_max_bytes=4096, max_disk_bytes=1 << 20))
    call(log, 20)
    log.close()
    layout = Layout(spool.paths)
    layout.rejected.mkdir(parents=True)
    (layout.rejected / "old-rejected.jsonl").write_bytes(b"x" * 5000)
    (layout.rejected / "old-rejected.json").write_text("{}")
    state = ShipState()
    report = enforce(layout, spool_bytes(layout) - 1000, Checkpoint(), state)
    assert report.rejected_files == 1 and report.segments == []  # no never-sent segment touched
    assert report.records == report.set_aside_records == state.dropped_records == 1  # undelivered: counted
    assert layout.rejected_files() == []


async def test_writers_leave_the_quota_to_the_process_that_is_shipping(spool):
    layout = Layout(spool.paths)
    lock = FileLock(layout.ship_lock)
    lock.acquire()
    try:
        log = spool.open(spool.config(**SMALL))
        call(log, 400)
        log.close()
        assert ShipState.load(layout.state).dropped_records == 0  # nothing dropped behind the shipper's back
    finally:
        lock.release()


async def test_the_shipper_drops_while_the_collector_is_down_and_reports_it_later(spool, collector):
    c, url = collector
    layout = Layout(spool.paths)
    lock = FileLock(layout.ship_lock)
    lock.acquire()  # keep the writer from dropping, so the shipper does it
    log = spool.open(spool.config(**SMALL), instance="w")
    call(log, 400)
    log.close()
    lock.release()
    assert spool_bytes(layout) > 65536
    c.fault = "down"
    reporter = spool.open(spool.config(**SMALL), instance="r")
    config = spool.config(collector=url, push_interval=0.05, max_retry_interval=0.1, **SMALL)
    shipper = Shipper(spool.paths, config, None, emit=reporter.append_nowait)
    assert (await shipper.push_once()).result == "retrying"
    assert spool_bytes(layout) <= 65536 + 4096
    dropped = ShipState.load(layout.state).dropped_records
    assert dropped > 0
    c.fault = None
    await shipper.push_once(force=True)
    await shipper.aclose()
    events = c.by_event("audit.dropped")
    assert events and sum(e["audit.dropped.records"] for e in events) == ShipState.load(layout.state).dropped_records
    dropped = ShipState.load(layout.state).dropped_records
    received = [r for r in c.records if r["event_name"] == "mcp.tool.call"]
    assert len(received) + dropped == 400
