"""A call left open by a process that was killed (kill -9, a power cut) is closed `unknown` at the next start,
exactly once, through the real process; a running process's open call never is."""

from __future__ import annotations

import json
import subprocess
import time

from mcp_proxy.audit.layout import Layout
from tests._support.audit import RawProxy, home_paths, spool_records, wait_sync
from tests._support.proxy import PY, stdio_upstream
from tests._support.unfinished import closes, cut_last_record, kill9_tree

SWEPT = "unfinished calls swept"


def _records(proxy) -> list[dict]:
    return spool_records(home_paths(proxy.home))


def _started(proxy) -> list[dict]:
    return [r for r in _records(proxy) if r["event_name"] == "mcp.tool.started"]


def _sweeps(proxy) -> int:
    return proxy.stderr_text().count(SWEPT)


def _call_in_flight(p: RawProxy, seconds: float = 60) -> None:
    p.send({"jsonrpc": "2.0", "id": 900, "method": "tools/call",
            "params": {"name": "f_slow", "arguments": {"seconds": seconds}}})


def _status(proxy) -> tuple[int, dict]:
    out = subprocess.run([PY, *proxy.argv()[:-2], "audit", "status", "--json"], capture_output=True, text=True,
                         env=proxy.env(), timeout=60)
    return out.returncode, json.loads(out.stdout)


def test_a_call_in_flight_at_kill9_is_closed_unknown_once_by_two_proxies_starting_together(proxy):
    proxy.write({"f": stdio_upstream()})
    victim = RawProxy(proxy).start()
    _call_in_flight(victim)
    wait_sync(lambda: _started(proxy))
    [started] = _started(proxy)
    kill9_tree(victim.p.pid)
    victim.p.wait(10)

    base = _sweeps(proxy)  # the victim swept at its own start
    a, b = RawProxy(proxy), RawProxy(proxy)  # two clients starting at the same moment
    try:
        a.start()
        b.start()
        wait_sync(lambda: _sweeps(proxy) >= base + 2, timeout=30)
    finally:
        a.close()
        b.close()
    [close] = closes(_records(proxy), started["gen_ai.tool.call.id"])
    assert (close["outcome"], close["error.type"]) == ("unknown", "process_ended")
    assert close["audit.closes_instance"] == started["service.instance.id"]
    assert close["audit.closes_record"] == started["id"]
    for key in ("gen_ai.tool.name", "upstream", "upstream.tool", "user.email", "trace_id"):
        assert close[key] == started[key], key

    again = RawProxy(proxy).start()  # a later start finds it done
    try:
        wait_sync(lambda: _sweeps(proxy) >= base + 3, timeout=30)
    finally:
        again.close()
    assert len(closes(_records(proxy))) == 1


def test_a_power_cut_mid_record_leaves_the_started_call_open_and_the_next_start_closes_it(proxy):
    proxy.write({"f": stdio_upstream()})
    victim = RawProxy(proxy).start()
    answer = victim.call("f_echo", {"text": "before the cut"})
    assert not answer["result"].get("isError")
    [started] = _started(proxy)
    kill9_tree(victim.p.pid)
    victim.p.wait(10)
    [seg] = Layout(home_paths(proxy.home)).segments()
    cut = cut_last_record(seg.path)  # the call's end was being written when the power went
    assert json.loads(cut.splitlines()[-2])["id"] == started["id"], "the started record is the last complete one"
    before_records = _records(proxy)
    code, before = _status(proxy)
    assert code == 0 and before["chain"]["torn_tails"] == 1

    base = _sweeps(proxy)
    nxt = RawProxy(proxy).start()
    try:
        wait_sync(lambda: _sweeps(proxy) >= base + 1, timeout=30)
    finally:
        nxt.close()
    assert seg.path.read_bytes() == cut, "the damaged segment is left exactly as the power cut left it"
    after_records = _records(proxy)
    assert after_records[: len(before_records)] == before_records, "no record lost or changed"
    [close] = closes(after_records, started["gen_ai.tool.call.id"])
    assert close["audit.closes_instance"] == started["service.instance.id"]
    code, after = _status(proxy)
    assert code == 0 and after["chain"]["ok"]
    assert after["chain"]["torn_tails"] == 1, "the torn line is still reported as torn"
    assert after["backlog_records"] == before["backlog_records"] + len(after_records) - len(before_records)
    assert after["chain"]["records"] == len(after_records)


def test_a_running_processs_call_in_flight_is_not_closed_by_another_starting(proxy):
    proxy.write({"f": stdio_upstream()})
    live = RawProxy(proxy).start()
    try:
        _call_in_flight(live)
        wait_sync(lambda: _started(proxy))
        base = _sweeps(proxy)
        other = RawProxy(proxy).start()
        try:
            wait_sync(lambda: _sweeps(proxy) >= base + 1, timeout=30)
        finally:
            other.close()
        assert closes(_records(proxy)) == []
    finally:
        started_at = time.monotonic()
        live.close()  # stdin closed: the grace runs out and the call is recorded cancelled, by its own process
        assert time.monotonic() - started_at < 15
    [started] = _started(proxy)
    ends = [r for r in _records(proxy)
            if r["event_name"] == "mcp.tool.call" and r["gen_ai.tool.call.id"] == started["gen_ai.tool.call.id"]]
    assert [e["outcome"] for e in ends] == ["cancelled"]
