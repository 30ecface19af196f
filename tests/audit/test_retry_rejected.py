"""`audit push --retry-rejected`: set-aside batches are sent again and removed only once accepted."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.audit.housekeeping import write_aside
from mcp_proxy.audit.layout import Layout
from mcp_proxy.cli import run
from tests._support.audit import audit_toml, call, fake_upstream, home_paths
from tests._support.collector_faults import delivered_exactly_once


@pytest.fixture
def cli(proxy, spool, monkeypatch):
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(proxy.home))
    spool.paths = home_paths(proxy.home)

    def invoke(*args: str) -> int:
        return run(["--config", str(proxy.config), *args])

    return invoke


def test_set_aside_batches_are_re_sent_and_removed_only_once_accepted(proxy, spool, cli, capsys, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, batch_max_records=3))
    first = call(spool.open(), 4)
    c.fault, c.fault_times = "400", 1
    assert cli("audit", "push") == 1  # the first batch of 3 is refused and set aside; the rest waits
    layout = Layout(spool.paths)
    (aside,) = layout.rejected_files()
    assert cli("audit", "push") == 0  # the rest and the batch_rejected event
    capsys.readouterr()
    refused = [r for r in first if r["id"] not in c.ids]
    assert len(refused) == 3

    c.fault = "400"  # refused again: it stays, the reason is recorded, the command says so and fails
    assert cli("audit", "push", "--retry-rejected") == 1
    out, err = capsys.readouterr()
    assert "re-sent 0 set-aside records in 0 batches" in out and "3 records in 1 batches stay in rejected/" in out
    assert "kept in rejected/: the collector answered 400 Bad Request: bad data (emulated)" in err
    assert layout.rejected_files() == [aside]
    assert json.loads(aside.with_suffix(".json").read_text())["last_retry"]["status"] == 400

    c.fault, c.max_body_bytes = None, 3500  # the collector is fixed; its size limit makes us split
    assert cli("audit", "push", "--retry-rejected") == 0
    out, _ = capsys.readouterr()
    assert "re-sent 3 set-aside records in 1 batches" in out and "0 records in 0 batches stay" in out
    assert layout.rejected_files() == [] and list(layout.rejected.glob("*.json")) == []
    assert any(q["status"] == 413 for q in c.requests)
    assert delivered_exactly_once(c, first)

    assert cli("audit", "push", "--retry-rejected") == 0
    assert "no set-aside batches to send again" in capsys.readouterr().out


def test_an_unreachable_collector_stops_the_re_send_and_keeps_everything(proxy, spool, cli, capsys, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url))
    layout = Layout(spool.paths)
    log = spool.open(instance="gone")
    records = call(log, 2)
    log.close()
    (seg,) = layout.segments()
    raws = seg.path.read_bytes().splitlines()
    seg.path.unlink()
    # A batch an older version set aside for a 500, and a line that is not a record.
    write_aside(layout, raws, kind="rejected", status=500, reason="the collector answered 500", segments=[seg.name],
                protocol="otlp-json", now=1_700_000_000.0)
    write_aside(layout, [b"not a record"], kind="corrupt", status=None, reason="not a record", segments=[seg.name],
                protocol="otlp-json", now=1_700_000_001.0)
    c.fault = "down"
    assert cli("audit", "push", "--retry-rejected") == 1
    out, err = capsys.readouterr()
    assert "re-sending stopped: the collector answered 503" in err and len(layout.rejected_files()) == 2
    c.fault = None
    assert cli("audit", "push", "--retry-rejected") == 1  # the corrupt line can never be sent: it stays
    out, err = capsys.readouterr()
    assert "re-sent 2 set-aside records in 1 batches" in out and "not an audit record" in err
    (left,) = layout.rejected_files()
    assert "-corrupt-" in left.name
    assert delivered_exactly_once(c, records)
