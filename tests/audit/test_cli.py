"""`audit status`, `audit tail [-f]`, `audit push`, and the doctor's audit lines."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from mcp_proxy.audit import audit_health
from mcp_proxy.audit.layout import Layout
from mcp_proxy.cli import run
from mcp_proxy.config import AuditConfig
from mcp_proxy.fsutil import FileLock
from tests._support.audit import audit_toml, call, fake_upstream, home_paths
from tests._support.proxy import PY

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(proxy, spool, monkeypatch):
    """Run `mcp-access-proxy --config ... ARGS` in-process against the proxy env's home."""
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(proxy.home))
    spool.paths = home_paths(proxy.home)

    def invoke(*args: str) -> int:
        return run(["--config", str(proxy.config), *args])

    return invoke


def test_status_reports_backlog_oldest_unsent_and_the_chain(proxy, spool, cli, capsys, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    log = spool.open()
    first = call(log, 4)
    assert cli("audit", "status", "--json") == 0
    s = json.loads(capsys.readouterr().out)
    assert s["backlog_records"] == 4 and s["segments"] == 1 and s["writers_alive"] == 1
    assert s["last_result"] is None and s["chain"]["ok"] and s["chain"]["records"] == 4
    assert abs(s["oldest_unsent"] - time.time()) < 60
    assert cli("audit", "push") == 0
    assert "pushed 4 records in 1 batches" in capsys.readouterr().out
    assert {r["id"] for r in first} <= c.ids
    assert cli("audit", "status") == 0
    out = capsys.readouterr().out
    assert "0 records (0.0 KiB) not yet acknowledged" in out and "last push" in out and ": ok" in out
    assert "chain          ok: 4 records link up" in out


def test_status_exits_1_on_a_broken_chain(proxy, spool, cli, capsys):
    proxy.write({"fake": fake_upstream()})
    log = spool.open()
    call(log, 3)
    log.close()
    (seg,) = Layout(spool.paths).segments()
    lines = seg.path.read_bytes().splitlines(keepends=True)
    seg.path.write_bytes(lines[0] + lines[2])  # the middle record removed
    assert cli("audit", "status") == 1
    captured = capsys.readouterr()
    assert "BROKEN: 1 problems" in captured.out and "records 2..2 are missing" in captured.out
    assert "keep the files" in captured.err


def test_tail_prints_one_line_per_record_across_processes(proxy, spool, cli, capsys):
    proxy.write({"fake": fake_upstream()})
    a, b = spool.open(instance="a", client_name="cursor"), spool.open(instance="b", governed=False)
    call(a, 2)
    b.append_nowait("mcp.tool.denied", {"gen_ai.tool.name": "fake_fail", "policy.decision.code": "pending",
                                        "reason": "pending review"})
    call(a, 1, outcome="tool_error", **{"error.type": "tool_error"})
    assert cli("audit", "tail", "-n", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "mcp.tool.call" in lines[0] and "alice@example.com called fake_echo: ok in 1.0 ms" in lines[0]
    assert "[cursor]" in lines[0]
    assert "was denied fake_fail (pending): pending review" in lines[1] and lines[1].endswith("UNGOVERNED")
    assert "tool_error" in lines[2]
    assert cli("audit", "tail", "-n", "1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "tool_error"


def test_tail_follow_prints_new_records_until_ctrl_c(proxy, spool):
    proxy.write({"fake": fake_upstream()})
    spool.paths = home_paths(proxy.home)
    log = spool.open(instance="first")
    call(log, 1)
    p = subprocess.Popen([PY, *proxy.argv(), "audit", "tail", "-n", "1", "-f", "--interval", "0.1"],
                         env=proxy.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "called fake_echo" in p.stdout.readline()
        call(log, 1, **{"gen_ai.tool.name": "fake_first"})
        other = spool.open(instance="second")  # a new process, a new segment
        call(other, 1, **{"gen_ai.tool.name": "fake_second"})
        assert "called fake_first" in p.stdout.readline()
        assert "called fake_second" in p.stdout.readline()
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    assert p.returncode == 0


def test_push_failures_say_why_and_exit_1(proxy, spool, cli, capsys, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()})
    assert cli("audit", "push") == 1
    assert "no [audit] collector is configured" in capsys.readouterr().err
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    call(spool.open(), 2)
    c.fault, c.fault_times = "400", 1
    assert cli("audit", "push") == 1
    err = capsys.readouterr().err
    assert "rejected: the collector answered 400 Bad Request: bad data (emulated)" in err and "rejected/" in err
    c.fault = "down"
    assert cli("audit", "push") == 1
    err = capsys.readouterr().err
    assert "retrying: the collector answered 503" in err and "the next automatic try is in" in err
    c.fault = None
    assert cli("audit", "push") == 0  # the batch_rejected event goes out now
    assert c.by_event("audit.batch_rejected")


def test_push_says_when_another_process_is_shipping(proxy, spool, cli, capsys, collector):
    _, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    call(spool.open(), 1)
    lock = FileLock(Layout(spool.paths).ship_lock)
    lock.acquire()
    try:
        assert cli("audit", "push", "--wait", "0.2") == 1
    finally:
        lock.release()
    assert "another mcp-access-proxy process is pushing the audit log now" in capsys.readouterr().err


def test_push_reports_partial_rejections(proxy, spool, cli, capsys, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    call(spool.open(), 3)
    c.fault, c.fault_times, c.reject = "partial", 1, 1
    assert cli("audit", "push") == 1
    captured = capsys.readouterr()
    assert "pushed" in captured.out and "the collector rejected 1 records" in captured.err


def test_doctor_lines(spool, collector):
    c, url = collector
    cfg = AuditConfig(collector=url)
    call(spool.open(), 2)
    lines = {name: (status, detail) for status, name, detail in audit_health(spool.paths, cfg)}
    assert lines["audit spool"][0] == "ok" and "2 records not yet sent" in lines["audit spool"][1]
    assert lines["audit push"][0] == "warn" and "nothing pushed" in lines["audit push"][1]
    assert lines["audit chain"][0] == "ok"
    local = {name: status for status, name, _ in audit_health(spool.paths, AuditConfig())}
    assert local["audit collector"] == "warn"
