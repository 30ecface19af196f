"""`audit status` and `doctor` show what is set aside: how many records, since when, why, and how to re-send."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.audit.status import audit_health, collect
from mcp_proxy.cli import run
from tests._support.audit import audit_toml, call, fake_upstream, home_paths

pytestmark = pytest.mark.anyio
COMMAND = "mcp-access-proxy audit push --retry-rejected"


async def _set_aside(spool, url, c, n: int) -> None:
    log = spool.open()
    call(log, n)
    c.fault, c.fault_times = "400", 1
    shipper = Shipper(spool.paths, spool.config(collector=url, push_interval=0.05), None)
    assert (await shipper.push_once()).result == "rejected"
    await shipper.aclose()
    spool.now += 1


async def test_status_and_doctor_show_set_aside_records_since_when_why_and_the_command(spool, collector):
    c, url = collector
    await _set_aside(spool, url, c, 3)
    cfg = spool.config(collector=url)
    s = collect(spool.paths, cfg, chain=False)["set_aside"]
    (aside,) = Layout(spool.paths).rejected_files()
    meta = json.loads(aside.with_suffix(".json").read_text())
    assert s["batches"] == 1 and s["records"] == 3 and s["oldest"] == meta["time"]
    assert s["reason"] == "the collector answered 400 Bad Request: bad data (emulated)" and s["status"] == 400
    assert s["command"] == COMMAND
    doctor = {name: (st, detail) for st, name, detail in audit_health(spool.paths, cfg)}
    status, detail = doctor["audit rejected"]
    assert status == "warn" and "3 records in 1 batches set aside" in detail and "since " in detail
    assert "bad data (emulated)" in detail and COMMAND in detail


async def test_the_latest_refusal_is_the_reason_shown(spool, collector):
    c, url = collector
    await _set_aside(spool, url, c, 2)
    (aside,) = Layout(spool.paths).rejected_files()
    about = aside.with_suffix(".json")
    meta = json.loads(about.read_text())
    meta["last_retry"] = {"time": meta["time"] + 60, "status": 422, "reason": "schema changed again"}
    about.write_text(json.dumps(meta))
    s = collect(spool.paths, spool.config(collector=url), chain=False)["set_aside"]
    assert s["reason"] == "schema changed again" and s["status"] == 422 and s["records"] == 2


def test_audit_status_prints_the_set_aside_line(proxy, spool, collector, capsys, monkeypatch):
    c, url = collector
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(proxy.home))
    spool.paths = home_paths(proxy.home)
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    call(spool.open(), 2)
    c.fault, c.fault_times = "400", 1
    assert run(["--config", str(proxy.config), "audit", "push"]) == 1
    capsys.readouterr()
    assert run(["--config", str(proxy.config), "audit", "status"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("set aside"))
    assert "2 records in 1 batches" in line and "since " in line and "bad data (emulated)" in line
    assert COMMAND in line
    assert run(["--config", str(proxy.config), "audit", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["set_aside"]["records"] == 2
