"""The shipper against the collector emulator: protocols, retries, set-aside, partial success, 413, the checkpoint."""

from __future__ import annotations

import email.utils
import json
import time

import anyio
import pytest

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper, run_shipper
from mcp_proxy.config import SecretRef
from mcp_proxy.fsutil import FileLock
from mcp_proxy.sandbox.asgi_thread import free_port
from tests._support.audit import call, dead_writer, wait_for

pytestmark = pytest.mark.anyio


def _shipper(spool, url, emit=None, **cfg):
    cfg.setdefault("push_interval", 0.05)
    cfg.setdefault("max_retry_interval", 1.0)
    config = spool.config(collector=url, **cfg)
    return Shipper(spool.paths, config, None, emit=emit), config


@pytest.mark.parametrize("protocol", ["otlp-json", "otlp-protobuf", "ndjson", "splunk-hec"])
@pytest.mark.parametrize("gzip", [True, False])
async def test_every_protocol_delivers_every_record_once(spool, collector, protocol, gzip, monkeypatch):
    c, url = collector
    monkeypatch.setenv("HEC_AUTH", "Splunk hec-test-token-123")
    headers = {"Authorization": SecretRef("env", "HEC_AUTH", "audit.headers.Authorization")} \
        if protocol == "splunk-hec" else {}
    target = url + "/ndjson" if protocol == "ndjson" else url
    log = spool.open()
    written = call(log, 23)
    shipper, _ = _shipper(spool, target, protocol=protocol, gzip=gzip, headers=headers, batch_max_records=10)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "ok" and report.sent == 23 and report.batches == 3
    assert [r["id"] for r in c.records] == [w["id"] for w in written]
    assert c.duplicates == 0
    assert [q["records"] for q in c.requests] == [10, 10, 3]
    assert all(q["encoding"] == ("gzip" if gzip else None) for q in c.requests)
    assert all(q["authorization"] == (protocol == "splunk-hec") for q in c.requests)
    first = c.records[0]
    assert first["event_name"] == "mcp.tool.call" and first["user.email"] == "alice@example.com"
    if protocol.startswith("otlp"):
        assert first["log.record.uid"] == first["id"] and first["service.instance.id"] == "inst1"
        assert first["gen_ai.tool.call.arguments"] == {"text": "call 0"}
        assert first["severity_number"] == 9 and first["time_unix_nano"].isdigit()
        assert len(first["audit.record_hash"]) == 64
        assert c.records[1]["prev_hash"] == first["audit.record_hash"]  # the chain is checkable at the collector
    state = ShipState.load(Layout(spool.paths).state)
    assert state.shipped_records == 23 and state.last_result == "ok"


async def test_batches_are_bounded_by_bytes_too(spool, collector):
    c, url = collector
    log = spool.open()
    call(log, 12, arguments={"text": "x" * 1500})
    shipper, _ = _shipper(spool, url, batch_max_bytes=4000, gzip=False)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.sent == 12 and all(q["records"] <= 3 for q in c.requests)


@pytest.mark.parametrize("fault,status", [("down", 503), ("429", 429)])
async def test_retryable_answers_keep_the_batch_and_honour_retry_after(spool, collector, fault, status):
    c, url = collector
    log = spool.open()
    call(log, 5)
    c.fault, c.retry_after = fault, "7"
    shipper, _ = _shipper(spool, url)
    report = await shipper.push_once()
    assert report.result == "retrying" and report.status == status and 7.0 <= report.retry_in <= 7.8
    assert shipper.delay_after(report) == report.retry_in
    state = ShipState.load(Layout(spool.paths).state)
    assert state.not_before > time.time() + 5 and state.consecutive_failures == 1
    again = await shipper.push_once()  # another cycle (or process) honours the stored wait
    assert again.result == "waiting" and len(c.requests) == 1
    c.fault = None
    forced = await shipper.push_once(force=True)
    await shipper.aclose()
    assert forced.result == "ok" and forced.sent == 5 and len(c.records) == 5
    assert ShipState.load(Layout(spool.paths).state).consecutive_failures == 0


async def test_retry_after_as_an_http_date(spool, collector):
    c, url = collector
    call(spool.open(), 1)
    c.fault, c.retry_after = "429", email.utils.formatdate(time.time() + 30, usegmt=True)
    shipper, _ = _shipper(spool, url)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "retrying" and 25 <= report.retry_in <= 34


async def test_backoff_without_retry_after_grows_jittered_and_capped(spool, collector):
    c, url = collector
    call(spool.open(), 1)
    c.fault = "down"
    shipper, _ = _shipper(spool, url, push_interval=1.0, max_retry_interval=8.0)
    delays = []
    for _ in range(6):
        delays.append((await shipper.push_once(force=True)).retry_in)
    await shipper.aclose()
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[3:])  # capped at max_retry_interval, jittered below it


async def test_connection_refused_is_retried(spool):
    call(spool.open(), 2)
    shipper, _ = _shipper(spool, f"http://127.0.0.1:{free_port()}")
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "retrying" and report.status is None and "cannot reach the collector" in report.detail
    assert Checkpoint.load(Layout(spool.paths).checkpoint).acked == {}


async def test_a_refused_batch_is_set_aside_reported_and_never_looped(spool, collector):
    c, url = collector
    log = spool.open()
    bad = call(log, 4)
    c.fault, c.fault_times = "400", 1
    shipper, _ = _shipper(spool, url, emit=log.append_nowait)
    report = await shipper.push_once()
    assert report.result == "rejected" and report.status == 400 and "bad data (emulated)" in report.detail
    layout = Layout(spool.paths)
    (aside,) = layout.rejected_files()
    assert [json.loads(x)["id"] for x in aside.read_bytes().splitlines()] == [b["id"] for b in bad]
    meta = json.loads(aside.with_suffix(".json").read_text())
    assert meta["status"] == 400 and meta["records"] == 4 and meta["first_id"] == bad[0]["id"]
    later = call(log, 2)
    report = await shipper.push_once(force=True)
    await shipper.aclose()
    assert report.result == "ok"
    ids = [r["id"] for r in c.records]
    assert not set(ids) & {b["id"] for b in bad}  # the refused batch is not sent again
    (event,) = c.by_event("audit.batch_rejected")
    assert event["http.response.status_code"] == 400 and event["audit.batch.records"] == 4
    assert event["audit.first_id"] == bad[0]["id"]
    assert {r["id"] for r in later} <= set(ids)
    assert len(c.requests) == 2
    state = ShipState.load(layout.state)
    assert state.rejected_batches == 1 and state.rejected_records == 4


async def test_a_collector_refusing_its_own_error_events_does_not_loop(spool, collector):
    c, url = collector
    log = spool.open()
    call(log, 1)
    c.fault = "400"  # everything refused, forever
    shipper, _ = _shipper(spool, url, emit=log.append_nowait)
    for _ in range(4):
        await shipper.push_once(force=True)
    await shipper.aclose()
    # one user record -> one rejection event -> that event refused too, with no event about it
    assert len(c.requests) == 2 and len(spool.records()) == 2


async def test_auth_failures_pause_without_setting_the_backlog_aside(spool):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from mcp_proxy.sandbox.asgi_thread import serve_in_thread

    async def refuse(request):  # a collector that echoes what it got, header included
        return JSONResponse({"code": 16, "message": f"bad credentials {request.headers.get('authorization')}"},
                            status_code=401)

    server = serve_in_thread(Starlette(routes=[Route("/v1/logs", refuse, methods=["POST"])]))
    try:
        call(spool.open(), 3)
        config = spool.config(collector=server.url, push_interval=0.05, max_retry_interval=60.0,
                              headers={"Authorization": "Bearer the-audit-token-value-123"})
        shipper = Shipper(spool.paths, config, None)
        report = await shipper.push_once()
        await shipper.aclose()
    finally:
        server.stop()
    assert report.result == "paused" and report.status == 401 and report.retry_in is None  # no timer: see below
    assert "the-audit-token-value-123" not in report.detail and "[REDACTED]" in report.detail
    assert Layout(spool.paths).rejected_files() == []
    assert "the-audit-token-value-123" not in Layout(spool.paths).state.read_text()


async def test_partial_success_is_accounted_and_not_retried(spool, collector):
    c, url = collector
    log = spool.open()
    call(log, 5)
    c.fault, c.fault_times, c.reject = "partial", 1, 2
    shipper, _ = _shipper(spool, url, emit=log.append_nowait)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "ok" and report.partial == 2
    assert len(c.requests) == 2  # the batch once (not retried), then the partial_rejected event
    (event,) = c.by_event("audit.partial_rejected")
    assert event["audit.rejected_records"] == 2 and event["audit.batch.records"] == 5
    state = ShipState.load(Layout(spool.paths).state)
    assert state.partial_rejected_records == 2 and state.shipped_records == 4  # 3 of the 5, then the event
    assert len(Layout(spool.paths).rejected_files()) == 1  # a copy of the batch, for whoever investigates


async def test_413_splits_the_batch_and_sets_aside_only_a_record_too_big_alone(spool, collector):
    c, url = collector
    log = spool.open()
    small = call(log, 6)
    (big,) = call(log, 1, arguments={"text": "y" * 4000})
    more = call(log, 3)
    c.max_body_bytes = 3500
    shipper, _ = _shipper(spool, url, emit=log.append_nowait, gzip=False)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "rejected" and report.set_aside == 1
    assert report.sent == 10 and c.by_event("audit.batch_rejected")  # the 9 others, then the event about it
    delivered = {r["id"] for r in c.records}
    assert {r["id"] for r in small + more} <= delivered and big["id"] not in delivered
    assert any(q["status"] == 413 for q in c.requests)
    (aside,) = Layout(spool.paths).rejected_files()
    assert json.loads(aside.read_bytes())["id"] == big["id"]
    assert json.loads(aside.with_suffix(".json").read_text())["status"] == 413


@pytest.mark.parametrize("damage", ["torn", "missing", "garbage"])
async def test_a_torn_or_missing_checkpoint_resends_with_the_same_ids(spool, collector, damage):
    c, url = collector
    log = spool.open()
    written = call(log, 8)
    shipper, _ = _shipper(spool, url, emit=log.append_nowait)
    assert (await shipper.push_once()).sent == 8
    layout = Layout(spool.paths)
    text = layout.checkpoint.read_text()
    if damage == "torn":
        layout.checkpoint.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        layout.checkpoint.write_bytes(b"\x00\xff" * 10)
    else:
        layout.checkpoint.unlink()
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "ok"
    assert c.duplicates == 8  # everything again, same ids: the collector drops them
    assert {r["id"] for r in written} <= set(c.ids)
    if damage != "missing":
        assert ShipState.load(layout.state).checkpoint_resets == 1
        assert c.by_event("audit.checkpoint_reset")
        assert list(layout.root.glob("checkpoint.json.corrupt-*"))


async def test_a_torn_tail_of_a_dead_writer_is_counted_never_sent(spool, collector):
    c, url = collector
    written, seg = dead_writer(spool, "dead", 3, b'{"id":"0190-torn","seq":4,"time":"2026-')  # killed mid-append
    reporter = spool.open(instance="alive")
    shipper, _ = _shipper(spool, url, emit=reporter.append_nowait)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "ok"
    assert [r["id"] for r in c.records][:3] == [w["id"] for w in written]
    assert "0190-torn" not in c.ids
    (event,) = c.by_event("audit.torn_tail")
    assert event["audit.segment_file"] == seg.name and event["audit.bytes"] == 39
    state = ShipState.load(Layout(spool.paths).state)
    assert state.torn_records == 1 and state.torn_bytes == 39
    assert not seg.path.exists()  # fully handled and its writer gone: deleted


async def test_a_partial_line_of_a_live_writer_is_left_until_it_is_complete(spool, collector):
    c, url = collector
    layout = Layout(spool.paths)
    layout.spool.mkdir(parents=True)
    lock = FileLock(layout.writer_lock("busy"))
    lock.acquire()  # another process's writer, mid-append
    path = layout.segment_path("busy", 1, time.time())
    line = json.dumps({"id": "rec-1", "seq": 1, "time": "2026-01-01T00:00:00.000000Z", "event_name": "x"}).encode()
    path.write_bytes(line[:20])
    shipper, _ = _shipper(spool, url)
    try:
        assert (await shipper.push_once()).result == "nothing"
        assert ShipState.load(layout.state).torn_records == 0
        with open(path, "ab") as fh:
            fh.write(line[20:] + b"\n")
        report = await shipper.push_once()
        assert report.sent == 1 and c.records[0]["id"] == "rec-1"
        assert path.exists()  # acknowledged, but its writer may still append: kept
    finally:
        lock.release()
    await shipper.push_once()
    await shipper.aclose()
    assert not path.exists()  # writer gone: deleted


async def test_a_line_that_is_not_a_record_is_set_aside_and_the_rest_delivered(spool, collector):
    c, url = collector
    first, seg = dead_writer(spool, "w", 2, b"this is not json\n")
    reporter = spool.open(instance="r")
    shipper, _ = _shipper(spool, url, emit=reporter.append_nowait)
    await shipper.push_once()
    await shipper.aclose()
    assert [r["id"] for r in first] == [r["id"] for r in c.records[:2]]
    assert c.by_event("audit.corrupt_record") and ShipState.load(Layout(spool.paths).state).corrupt_records == 1
    assert any(b"this is not json" in p.read_bytes() for p in Layout(spool.paths).rejected_files())


async def test_only_one_process_ships_at_a_time(spool, collector):
    c, url = collector
    call(spool.open(), 2)
    other = FileLock(Layout(spool.paths).ship_lock)
    other.acquire()
    shipper, _ = _shipper(spool, url)
    try:
        report = await shipper.push_once(lock_wait=0.3)
        assert report.result == "busy" and c.requests == []
    finally:
        other.release()
    assert (await shipper.push_once()).sent == 2
    await shipper.aclose()


async def test_segments_of_every_process_are_shipped_and_deleted_once_sealed_and_acked(spool, collector):
    c, url = collector
    a, b = spool.open(instance="a"), spool.open(instance="b")
    ids = [r["id"] for r in call(a, 3) + call(b, 4)]
    a.close()
    shipper, _ = _shipper(spool, url)
    await shipper.push_once()
    await shipper.aclose()
    assert sorted(c.ids) == sorted(ids)
    left = Layout(spool.paths).segments()
    assert [s.instance for s in left] == ["b"]  # a's writer is gone: deleted; b's is alive: kept
    assert not Layout(spool.paths).writer_lock("a").exists()


async def test_the_background_loop_rides_out_an_outage(spool, collector):
    c, url = collector
    log = spool.open()
    call(log, 3)
    c.fault = "down"
    config = spool.config(collector=url, push_interval=0.05, max_retry_interval=0.2)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_shipper(spool.paths, config, None, stop, emit=log.append_nowait))
        await wait_for(lambda: len(c.requests) >= 3)
        assert c.records == []
        c.fault = None
        call(log, 2)
        await wait_for(lambda: len(c.records) == 5)
        stop.set()
    assert c.duplicates == 0
