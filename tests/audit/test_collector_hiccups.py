"""A collector hiccup loses nothing: 500, 429 with Retry-After, 413 and an outage, scripted on the emulator.

Every record appended must arrive exactly once at the collector (deduplicated by `log.record.uid`), and a
server error never sets a batch aside: it is the server's fault, not the data's.
"""

from __future__ import annotations

import email.utils
import time

import anyio
import pytest

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper, run_shipper
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.collector import create_app
from tests._support.audit import call, wait_for
from tests._support.collector_faults import delivered_exactly_once

pytestmark = pytest.mark.anyio


def _shipper(spool, url, emit=None, **cfg):
    cfg.setdefault("push_interval", 0.05)
    cfg.setdefault("max_retry_interval", 1.0)
    return Shipper(spool.paths, spool.config(collector=url, **cfg), None, emit=emit)


async def test_a_500_keeps_the_batch_and_is_retried_not_set_aside(spool, collector):
    c, url = collector
    log = spool.open()
    written = call(log, 5)
    c.script = ["500"]
    shipper = _shipper(spool, url, emit=log.append_nowait, push_interval=1.0, max_retry_interval=8.0)
    report = await shipper.push_once()
    layout = Layout(spool.paths)
    assert report.result == "retrying" and report.status == 500 and report.set_aside == 0
    assert 0.5 <= report.retry_in <= 1.0  # the normal schedule: push_interval, jittered
    assert layout.rejected_files() == [] and Checkpoint.load(layout.checkpoint).acked == {}
    state = ShipState.load(layout.state)
    assert state.rejected_batches == 0 and state.consecutive_failures == 1 and state.not_before > time.time()
    assert (await shipper.push_once()).result == "waiting" and len(c.requests) == 1  # no hammering
    report = await shipper.push_once(force=True)
    await shipper.aclose()
    assert report.result == "ok" and report.sent == 5
    assert delivered_exactly_once(c, written) and not c.by_event("audit.batch_rejected")


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 507, 599])
def test_every_server_error_is_retryable_and_honours_retry_after(status):
    from mcp_proxy.audit.transport import Sender

    sender = Sender("http://127.0.0.1:9", "otlp-json", {}, use_gzip=False, scrub=lambda s: s, clock=lambda: 1000.0)
    outcome = sender._classify(status, "Error", "application/json", "12", b'{"message": "boom"}')
    assert outcome.kind == "retry" and outcome.retry_after == 12.0 and "boom" in outcome.detail
    date = email.utils.formatdate(1030.0, usegmt=True)
    assert sender._classify(status, "Error", "", date, b"").retry_after == 30.0
    assert sender._classify(400, "Bad Request", "", None, b"").kind == "reject"  # the data's fault: set aside
    for paused in (401, 403, 404, 405, 407):  # the contract stays: config problems pause
        assert sender._classify(paused, "No", "", None, b"").kind == "pause"


@pytest.mark.parametrize("retry_after", ["3", "date"])
async def test_a_500_with_retry_after_is_honoured(spool, collector, retry_after):
    c, url = collector
    call(spool.open(), 2)
    c.script = ["500"]
    c.retry_after = retry_after if retry_after != "date" else email.utils.formatdate(time.time() + 30, usegmt=True)
    shipper = _shipper(spool, url)
    report = await shipper.push_once()
    await shipper.aclose()
    low, high = (3.0, 3.3) if retry_after == "3" else (25.0, 34.0)
    assert report.result == "retrying" and report.status == 500 and low <= report.retry_in <= high
    assert Layout(spool.paths).rejected_files() == []


async def test_a_collector_answering_500_for_ever_is_retried_at_a_bounded_pace_and_keeps_everything(spool, collector):
    c, url = collector
    written = call(spool.open(), 3)
    c.fault = "500"
    shipper = _shipper(spool, url, push_interval=1.0, max_retry_interval=8.0)
    delays = [(await shipper.push_once(force=True)).retry_in for _ in range(7)]
    assert len(c.requests) == 7  # one request per cycle: never a tight loop inside a cycle
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[3:])  # capped at max_retry_interval, jittered
    layout = Layout(spool.paths)
    assert layout.rejected_files() == [] and ShipState.load(layout.state).consecutive_failures == 7
    c.fault = None
    assert (await shipper.push_once(force=True)).sent == 3
    await shipper.aclose()
    assert delivered_exactly_once(c, written)


async def test_records_lost_is_zero_across_500_429_413_and_an_outage(spool, tmp_path):
    """The background loop of `serve` against a collector that answers 500, 429 with Retry-After, 413,
    503 and then goes away altogether (connection refused) while records keep being appended."""
    app = create_app()
    c = app.state.collector
    server = serve_in_thread(app)
    port, url = server.port, server.url
    log = spool.open()
    config = spool.config(collector=url, push_interval=0.05, max_retry_interval=0.3, batch_max_records=4)
    stop = anyio.Event()
    written = call(log, 6)
    c.retry_after = "1"
    c.script = ["500", "500", "429", "413", None, None, "down"]
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run_shipper(spool.paths, config, None, stop, emit=log.append_nowait))
            await wait_for(lambda: not c.script, timeout=30)
            written += call(log, 5)
            await wait_for(lambda: {r["id"] for r in written} <= c.ids, timeout=30)
            server.stop()  # the collector goes away: connection refused
            written += call(log, 7)
            await anyio.sleep(1.0)
            server = serve_in_thread(app, port=port)
            await wait_for(lambda: {r["id"] for r in written} <= c.ids, timeout=30)
            stop.set()
    finally:
        server.stop()
    survived = {q["status"] for q in c.requests if q["status"] != 200}
    assert {500, 429, 413, 503} <= survived
    after_429 = [q["at"] for q in c.requests]
    i = next(n for n, q in enumerate(c.requests) if q["status"] == 429)
    assert after_429[i + 1] - after_429[i] >= 0.95  # Retry-After: 1 was honoured
    layout = Layout(spool.paths)
    assert layout.rejected_files() == []
    assert delivered_exactly_once(c, written)
    state = ShipState.load(layout.state)
    assert state.rejected_records == 0 and state.dropped_records == 0
