"""The disk quota's order: delivered data first (acknowledged segments, copies of partial successes), then
batches set aside, then never-sent records; whatever undelivered goes is counted in `audit.dropped`."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.housekeeping import write_aside
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.quota import LOW_WATER, enforce, spool_bytes
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.fsutil import FileLock
from tests._support.audit import call

pytestmark = pytest.mark.anyio


def _aside(spool, layout, kind: str, n: int, now: float) -> tuple[str, list[dict]]:
    """A batch of `n` real records set aside in rejected/ as the shipper does, gone from the spool."""
    log = spool.open(instance=f"aside_{kind}_{n}")
    records = call(log, n)
    log.close()
    segs = [s for s in layout.segments() if s.instance == f"aside_{kind}_{n}"]
    raws = [line for s in segs for line in s.path.read_bytes().splitlines()]
    for s in segs:
        s.path.unlink()
    name = write_aside(layout, raws, kind=kind, status=400 if kind == "rejected" else 200, reason=f"{kind} (test)",
                       segments=[s.name for s in segs], protocol="otlp-json", now=now,
                       first_id=records[0]["id"], last_id=records[-1]["id"])
    return name, records


async def test_delivered_goes_first_then_set_aside_then_never_sent_each_loss_counted(spool):
    layout = Layout(spool.paths)
    _, partial = _aside(spool, layout, "partial", 4, 1_700_000_000.0)
    rejected_name, rejected = _aside(spool, layout, "rejected", 12, 1_700_000_001.0)
    log = spool.open(spool.config(segment_max_bytes=4096, max_disk_bytes=1 << 30), instance="w")
    call(log, 30)
    log.close()
    segments = layout.segments()
    acked = segments[:2]
    checkpoint = Checkpoint(acked={s.name: s.size for s in acked})
    (partial_file,) = [p for p in layout.rejected_files() if "-partial-" in p.name]
    total = spool_bytes(layout)

    # Freeing the acknowledged segments and the partial copy is just enough: no undelivered record goes.
    quota = int((total - sum(s.size for s in acked) - partial_file.stat().st_size) / LOW_WATER) + 1
    state = ShipState()
    report = enforce(layout, quota, checkpoint, state)
    assert report.records == 0 and state.dropped_records == 0
    assert [p.name for p in layout.rejected_files()] == [rejected_name]
    assert [s.name for s in layout.segments()] == [s.name for s in segments[2:]]

    # One byte less than that: the set-aside batch goes next, counted, before any never-sent record.
    rejected_size = (layout.rejected / rejected_name).stat().st_size
    quota = int((spool_bytes(layout) - rejected_size) / LOW_WATER) + 1
    assert quota < spool_bytes(layout)
    report = enforce(layout, quota, checkpoint, state)
    assert layout.rejected_files() == [] and [s.name for s in layout.segments()] == [s.name for s in segments[2:]]
    assert report.records == 12 == state.dropped_records and report.set_aside_records == 12
    fields = report.event_fields()
    assert fields["audit.dropped.records"] == 12 and fields["audit.dropped.set_aside_records"] == 12
    assert fields["audit.dropped.set_aside_batches"] == 1 and fields["audit.dropped.unsent_records"] == 0
    assert fields["audit.dropped.oldest_time"] == rejected[0]["time"]

    # Only never-sent records are left to drop.
    never_sent = sum(len(s.path.read_bytes().splitlines()) for s in segments[2:])
    report = enforce(layout, 1, checkpoint, state)
    assert report.records == never_sent and report.event_fields()["audit.dropped.unsent_records"] == never_sent
    assert state.dropped_records == 12 + never_sent
    assert partial  # (a partial copy's records reached the collector, all but the ones it reported)


async def test_records_lost_to_the_quota_are_exactly_what_was_dropped_and_reported(spool, collector):
    """Appended = delivered + counted as dropped, with set-aside batches among what the quota drops."""
    c, url = collector
    layout = Layout(spool.paths)
    small = dict(max_disk_bytes=65536, segment_max_bytes=4096)
    _, rejected = _aside(spool, layout, "rejected", 5, 1_700_000_000.0)
    lock = FileLock(layout.ship_lock)
    lock.acquire()  # keep the writer from dropping, so the shipper does it
    log = spool.open(spool.config(**small), instance="w")
    written = call(log, 400)
    log.close()
    lock.release()
    c.fault = "down"
    reporter = spool.open(spool.config(**small), instance="r")
    config = spool.config(collector=url, push_interval=0.05, max_retry_interval=0.1, **small)
    shipper = Shipper(spool.paths, config, None, emit=reporter.append_nowait)
    assert (await shipper.push_once()).result == "retrying"
    assert layout.rejected_files() == []  # set aside goes before any never-sent record
    c.fault = None
    await shipper.push_once(force=True)
    await shipper.aclose()
    state = ShipState.load(layout.state)
    events = c.by_event("audit.dropped")
    assert sum(e["audit.dropped.records"] for e in events) == state.dropped_records
    assert sum(e["audit.dropped.set_aside_records"] for e in events) == 5
    received = {r["id"] for r in c.records}
    lost = [r for r in written + rejected if r["id"] not in received]
    assert len(lost) == state.dropped_records
    assert json.dumps(events)  # the events reached the collector like any record
