"""The shipper under faults the review found: a tail completed while looking, a set-aside copy that cannot be
written, records the encoder refuses, header values that must not leak, credential failures that pause."""

from __future__ import annotations

import errno
import json
import time

import pytest

from mcp_proxy.audit import housekeeping
from mcp_proxy.audit import layout as layout_module
from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.audit.status import audit_health, collect
from mcp_proxy.config import SecretRef
from mcp_proxy.fsutil import FileLock
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from tests._support.audit import call, dead_writer, spool_records

pytestmark = pytest.mark.anyio
KEY = "9f86d081884c7d659a2feaa0c55ad015"


def _shipper(spool, url, emit=None, **cfg):
    cfg.setdefault("push_interval", 0.05)
    cfg.setdefault("max_retry_interval", 1.0)
    return Shipper(spool.paths, spool.config(collector=url, **cfg), None, emit=emit)


async def test_a_line_completed_while_the_shipper_looks_is_delivered_not_torn(spool, collector, monkeypatch):
    c, url = collector
    layout = Layout(spool.paths)
    layout.spool.mkdir(parents=True)
    lock = FileLock(layout.writer_lock("busy"))
    lock.acquire()  # the live writer, mid-append
    path = layout.segment_path("busy", 1, time.time())
    line = json.dumps({"id": "rec-1", "seq": 1, "time": "2026-01-01T00:00:00.000000Z",
                       "event_name": "mcp.tool.call", "prev_hash": ""}).encode()
    path.write_bytes(line[:30])
    real_alive = layout_module.Liveness.alive

    def alive(self, instance):  # the writer completes its line and exits right when the shipper asks
        if lock.held:
            with open(path, "ab") as fh:
                fh.write(line[30:] + b"\n")
            lock.release()
        return real_alive(self, instance)

    monkeypatch.setattr(layout_module.Liveness, "alive", alive)
    shipper = _shipper(spool, url)
    await shipper.push_once()
    await shipper.push_once(force=True)
    await shipper.aclose()
    state = ShipState.load(layout.state)
    assert "rec-1" in c.ids and state.torn_records == 0 and state.corrupt_records == 0


@pytest.mark.parametrize("fault", ["400", "partial"])
async def test_nothing_is_acknowledged_when_the_set_aside_copy_cannot_be_written(spool, collector, monkeypatch,
                                                                                 fault, caplog):
    c, url = collector
    log = spool.open(instance="w")
    written = call(log, 4)
    log.close()
    layout = Layout(spool.paths)
    c.fault, c.fault_times = fault, 1
    real = housekeeping.atomic_write

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(housekeeping, "atomic_write", full)
    shipper = _shipper(spool, url)
    report = await shipper.push_once()
    assert report.result == "error" and "No space left on device" in report.detail
    assert "could not keep a copy" in caplog.text
    assert layout.rejected_files() == [] and list(layout.rejected.glob("*")) == []
    assert Checkpoint.load(layout.checkpoint).acked == {}  # nothing acknowledged: the batch stays
    assert len(layout.segments()) == 1 and report.retry_in and report.retry_in > 0
    monkeypatch.setattr(housekeeping, "atomic_write", real)
    c.fault, c.fault_times = fault, 1
    report = await shipper.push_once(force=True)
    await shipper.aclose()
    (aside,) = layout.rejected_files()  # now the copy is kept, then the batch acknowledged
    assert [json.loads(x)["id"] for x in aside.read_bytes().splitlines()] == [w["id"] for w in written]
    assert layout.segments() == []


@pytest.mark.parametrize("bad,kind", [
    (b'{"id":"x1","event_name":"mcp.tool.call","time":1700000000}', "corrupt"),
    (b'{"id":"x2","event_name":7,"time":"2026-01-01T00:00:00.000000Z"}', "corrupt"),
    (b'{"id":"x3","event_name":"mcp.tool.call","time":"2026-01-01T00:00:00.000000Z","v":NaN}', "unencodable"),
])
async def test_one_bad_record_is_set_aside_and_everything_behind_it_ships(spool, collector, bad, kind):
    c, url = collector
    before, seg = dead_writer(spool, "w", 2, bad + b"\n")
    reporter = spool.open(instance="later")
    later = call(reporter, 3)
    protocol = "ndjson" if kind == "unencodable" else "otlp-json"
    shipper = _shipper(spool, url + "/ndjson" if protocol == "ndjson" else url, emit=reporter.append_nowait,
                       protocol=protocol)
    report = await shipper.push_once()
    await shipper.push_once(force=True)  # the event about it
    await shipper.aclose()
    assert report.result == "ok"
    assert {r["id"] for r in before + later} <= c.ids
    state = ShipState.load(Layout(spool.paths).state)
    assert (state.corrupt_records, state.unencodable_records) == ((1, 0) if kind == "corrupt" else (0, 1))
    (event,) = c.by_event(f"audit.{kind}_record")
    assert event["audit.segment_file"] == seg.name
    assert any(bad in p.read_bytes() for p in Layout(spool.paths).rejected_files())


async def test_a_header_value_the_http_stack_refuses_is_a_config_error_that_leaks_nothing(
        spool, collector, monkeypatch, caplog):
    c, url = collector
    monkeypatch.setenv("DD_KEY", KEY + "\n")  # a trailing newline, as `echo` into a secrets file leaves
    call(spool.open(), 1)
    headers = {"dd-api-key": SecretRef("env", "DD_KEY", "audit.headers.dd-api-key")}
    shipper = _shipper(spool, url, headers=headers)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "paused" and report.retry_in is None  # not retried as a connection failure
    assert "headers.dd-api-key" in report.detail and "env:DD_KEY" in report.detail
    assert "line break" in report.detail and c.requests == []
    state = Layout(spool.paths).state.read_text()
    for text in (report.detail, state, caplog.text, json.dumps(spool_records(spool.paths))):
        assert KEY not in text


async def test_a_collector_echoing_only_the_token_part_of_a_header_is_scrubbed(spool):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request):  # quotes the token without its "Bearer " prefix
        token = request.headers.get("authorization", "").split()[-1]
        return JSONResponse({"code": 3, "message": f"token {token} is not valid here"}, status_code=400)

    server = serve_in_thread(Starlette(routes=[Route("/v1/logs", echo, methods=["POST"])]))
    try:
        log = spool.open()
        call(log, 1)
        shipper = _shipper(spool, server.url, emit=log.append_nowait, headers={"Authorization": f"Bearer {KEY}"})
        report = await shipper.push_once()
        await shipper.aclose()
    finally:
        server.stop()
    assert report.result == "rejected" and "[REDACTED]" in report.detail
    everything = [report.detail, Layout(spool.paths).state.read_text(), json.dumps(spool_records(spool.paths))]
    everything += [p.read_text() for p in Layout(spool.paths).rejected.glob("*.json")]
    assert not [t for t in everything if KEY in t]


async def test_transport_errors_are_reported_by_type_never_by_their_text(spool, monkeypatch):
    import httpx

    from mcp_proxy.audit.transport import Sender

    sender = Sender("http://127.0.0.1:9", "otlp-json", {"Authorization": f"Bearer {KEY}"}, use_gzip=False,
                    scrub=lambda s: s)

    def boom(*a, **k):
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {KEY}\\n'")

    monkeypatch.setattr(sender._client, "stream", boom)
    outcome = await sender.send(b"{}")
    await sender.aclose()
    assert outcome.kind == "retry" and "LocalProtocolError" in outcome.detail and KEY not in outcome.detail


async def test_an_answer_that_cannot_be_decoded_is_retried_not_paused():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from mcp_proxy.audit.transport import Sender

    class BadGzip(BaseHTTPRequestHandler):  # a 200 whose body claims gzip but is not (a broken proxy in between)
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"junk")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), BadGzip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sender = Sender(f"http://127.0.0.1:{server.server_port}", "otlp-json", {}, use_gzip=False, scrub=lambda t: t)
        outcome = await sender.send(b"{}")
        await sender.aclose()
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.kind == "retry" and "DecodingError" in outcome.detail


@pytest.mark.parametrize("status", [401, 404])
async def test_credential_and_address_failures_pause_until_something_changes(spool, monkeypatch, status):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[str] = []

    async def refuse(request):
        seen.append(request.headers.get("authorization", ""))
        if request.headers.get("authorization") == "Bearer fixed-token-value-1":
            return JSONResponse({})
        return JSONResponse({"code": 16, "message": "no"}, status_code=status)

    server = serve_in_thread(Starlette(routes=[Route("/v1/logs", refuse, methods=["POST"])]))
    monkeypatch.setenv("AUDIT_AUTH", "Bearer wrong-token-value-0")
    headers = {"Authorization": SecretRef("env", "AUDIT_AUTH", "audit.headers.Authorization")}
    try:
        log = spool.open()
        call(log, 2)
        first = _shipper(spool, server.url, emit=log.append_nowait, headers=headers, max_retry_interval=0.01)
        results = [(await first.push_once()).result for _ in range(3)]  # automatic cycles of one process
        assert results == ["paused"] * 3 and len(seen) == 1  # tried once, then no request on a timer
        events = [r for r in spool.records() if r["event_name"] == "audit.ship_failed"]
        assert len(events) == 1 and events[0]["http.response.status_code"] == status
        assert events[0]["url.full"] == f"{server.url}/v1/logs" and "wrong-token" not in json.dumps(events)
        s = collect(spool.paths, first.cfg, chain=False)
        assert s["paused"] == (f"paused: HTTP {status} from {server.url}/v1/logs; fix [audit] headers/collector, "
                               "then run `mcp-access-proxy audit push`")
        doctor = {name: (st, detail) for st, name, detail in audit_health(spool.paths, first.cfg)}
        assert doctor["audit push"][0] == "FAIL" and s["paused"] in doctor["audit push"][1]

        restarted = _shipper(spool, server.url, emit=log.append_nowait, headers=headers)
        assert (await restarted.push_once()).result == "paused" and len(seen) == 2  # a new process tries once
        assert (await restarted.push_once()).result == "paused" and len(seen) == 2
        assert (await restarted.push_once(force=True)).result == "paused" and len(seen) == 3  # `audit push`
        assert len([r for r in spool.records() if r["event_name"] == "audit.ship_failed"]) == 1  # same failure

        monkeypatch.setenv("AUDIT_AUTH", "Bearer fixed-token-value-1")  # the header value changes
        report = await restarted.push_once()
        assert report.result == "ok" and len(seen) == 4 and report.sent == 3  # the backlog and the event
        assert collect(spool.paths, first.cfg, chain=False)["paused"] is None
        await first.aclose()
        await restarted.aclose()
    finally:
        server.stop()


async def test_a_record_appended_while_clean_looks_is_not_deleted(spool, monkeypatch):
    log = spool.open()
    log.append_nowait("mcp.tool.call", {"outcome": "ok"})
    layout = Layout(spool.paths)
    (seg,) = layout.segments()
    checkpoint = Checkpoint(acked={seg.name: seg.size})  # everything written so far was shipped
    real_alive = layout_module.Liveness.alive
    exited: list[bool] = []

    def alive(self, instance):  # the writer appends its last record and exits right when clean() asks
        if not exited:
            exited.append(True)
            log.append_nowait("mcp.session.end", {"outcome": "ok"})
            log.close()
        return real_alive(self, instance)

    monkeypatch.setattr(layout_module.Liveness, "alive", alive)
    housekeeping.clean(layout, checkpoint)
    assert [r["event_name"] for r in spool_records(spool.paths)] == ["mcp.tool.call", "mcp.session.end"]
