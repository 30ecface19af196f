"""No call without a record, through the real process: a call in flight when the client stops the proxy
(SIGTERM, or stdin closed) is let finish for a grace, or recorded `cancelled`; a call that reached the
vendor is on record (`mcp.tool.started`) before the vendor answers."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.proxy import stdio_upstream
from tests._support.wire import initialize_line, spawn

INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


class SlowPagerDuty:
    """A PagerDuty REST stand-in whose list of incidents takes `delay` seconds; it counts what arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrived = threading.Event()
        self.headers: list[dict[str, str]] = []  # each request's headers, names in lower case
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                outer.arrived.set()
                time.sleep(outer.delay)
                body = json.dumps({"incidents": [], "limit": 25, "offset": 0, "more": False, "total": None}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the proxy went away meanwhile

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def slow_pagerduty(delay: float) -> Iterator[SlowPagerDuty]:
    vendor = SlowPagerDuty(delay)
    thread = threading.Thread(target=vendor.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield vendor
    finally:
        vendor.server.shutdown()
        vendor.server.server_close()


def _call(rid: int, name: str, arguments: dict) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}})


def _start(proxy, upstreams: dict, env: dict | None = None):
    proxy.write(upstreams)
    p = spawn(proxy, env=proxy.env(**(env or {})))
    replies: list[dict] = []
    threading.Thread(target=lambda: replies.extend(json.loads(line) for line in p.stdout), daemon=True).start()
    p.stdin.write("\n".join([initialize_line("2025-11-25"), INITIALIZED]) + "\n")
    p.stdin.flush()
    deadline = time.monotonic() + 20
    while not any(m.get("id") == 1 for m in replies):
        assert time.monotonic() < deadline, "no answer to initialize"
        time.sleep(0.02)
    return p, replies


def _wait_started(proxy, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not any(r["event_name"] == "mcp.tool.started" for r in _tool_records(proxy)):
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.05)


def _tool_records(proxy) -> list[dict]:
    return [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]


@pytest.mark.parametrize("delay, outcome", [(1.0, "ok"), (30.0, "cancelled")])
def test_sigterm_lets_a_rest_call_finish_within_the_grace_or_records_it_cancelled(proxy, delay, outcome):
    with slow_pagerduty(delay) as vendor:
        p, replies = _start(proxy, {"pd": {"kind": "pagerduty", "base_url": vendor.url, "api_key": "env:PD_KEY"}},
                            env={"PD_KEY": "u+abcdefghijklmnopqrst"})
        p.stdin.write(_call(2, "pd_list_incidents", {}) + "\n")
        p.stdin.flush()
        assert vendor.arrived.wait(20), "the call never reached the vendor"
        started = [r for r in _tool_records(proxy) if r["event_name"] == "mcp.tool.started"]
        assert len(started) == 1, "the started record is on disk while the vendor works"
        stopped_at = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
        took = time.monotonic() - stopped_at
    records = _tool_records(proxy)
    [started] = [r for r in records if r["event_name"] == "mcp.tool.started"]
    [ended] = [r for r in records if r["event_name"] == "mcp.tool.call"]
    assert ended["gen_ai.tool.call.id"] == started["gen_ai.tool.call.id"]
    assert ended["outcome"] == outcome
    if outcome == "ok":
        assert any(m.get("id") == 2 and "result" in m for m in replies), "the finished call was answered"
        assert took < 3.0
    else:
        assert 2.5 < took < 8.0, f"the grace is about 3 s, then the process ends ({took:.1f} s)"


def test_stdin_closed_lets_a_call_in_flight_finish_and_answer(proxy):
    p, replies = _start(proxy, {"f": stdio_upstream()})
    p.stdin.write(_call(2, "f_slow", {"seconds": 1}) + "\n")
    p.stdin.flush()
    _wait_started(proxy)
    p.stdin.close()
    assert p.wait(15) == 0
    assert any(m.get("id") == 2 and "result" in m and not m["result"].get("isError") for m in replies)
    outcomes = [(r["event_name"], r.get("outcome")) for r in _tool_records(proxy)]
    assert outcomes == [("mcp.tool.started", None), ("mcp.tool.call", "ok")]


def test_stdin_closed_with_a_call_that_outlasts_the_grace_records_it_cancelled(proxy):
    p, _replies = _start(proxy, {"f": stdio_upstream()})
    p.stdin.write(_call(2, "f_slow", {"seconds": 30}) + "\n")
    p.stdin.flush()
    _wait_started(proxy)
    closed_at = time.monotonic()
    p.stdin.close()
    assert p.wait(15) == 0
    assert time.monotonic() - closed_at < 8.0
    outcomes = [(r["event_name"], r.get("outcome")) for r in _tool_records(proxy)]
    assert outcomes == [("mcp.tool.started", None), ("mcp.tool.call", "cancelled")]
