"""Kill -9 while appending and while pushing, then restart: every record arrives, duplicates keep their id."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mcp_proxy.audit.checkpoint import ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.audit.verify import verify
from mcp_proxy.config import AuditConfig
from tests._support.audit import (
    RawProxy,
    audit_toml,
    call,
    fake_upstream,
    home_paths,
    spool_records,
    wait_for,
    wait_sync,
)
from tests._support.proxy import PY

pytestmark = pytest.mark.anyio

WRITER = str(Path(__file__).with_name("writer_proc.py"))


def _run_writer_until(home: Path, durability: str, instance: str, count: int) -> list[str]:
    """Start a writer process, SIGKILL it once it has reported `count` appends; every id it printed."""
    p = subprocess.Popen([PY, WRITER, str(home), durability, instance], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    ids: list[str] = []
    for line in p.stdout:
        ids.append(line.strip())
        if len(ids) >= count:
            p.kill()  # mid-stream: it is appending the next record right now
            break
    ids += [line.strip() for line in p.stdout]  # what it printed before it died
    p.wait(10)
    return [i for i in ids if i]


@pytest.mark.parametrize("durability", ["group", "fsync"])
async def test_kill9_during_append_loses_nothing_that_was_acknowledged(tmp_path, collector, durability):
    c, url = collector
    home = tmp_path / "home"
    paths = home_paths(home)
    acknowledged = _run_writer_until(home, durability, "victim", 300)
    on_disk = {r["id"] for r in spool_records(paths)}
    assert set(acknowledged) <= on_disk
    segments = [s for s in Layout(paths).segments() if s.instance == "victim"]
    with open(segments[-1].path, "ab") as fh:  # and a torn last line, whether or not the kill made one
        fh.write(b'{"id":"torn-by-crash","seq":99999,"ti')
    assert verify(Layout(paths)).ok  # a torn tail is a crash, not a broken chain
    shipper = Shipper(paths, AuditConfig(collector=url, batch_max_records=100), None)
    report = await shipper.push_once()
    await shipper.aclose()
    assert report.result == "ok"
    assert set(acknowledged) <= c.ids and "torn-by-crash" not in c.ids
    assert c.duplicates == 0 and all(r["id"] for r in c.records)
    assert ShipState.load(Layout(paths).state).torn_records >= 1
    assert not [s for s in Layout(paths).segments() if s.instance == "victim"]  # shipped and gone


async def test_kill9_of_the_proxy_keeps_every_answered_call_and_a_restart_ships_them(proxy, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()})
    raw = RawProxy(proxy).start()
    answered = []
    for i in range(10):
        reply = raw.call("fake_echo", {"text": f"call {i}"})
        assert "result" in reply
        answered.append(f"call {i}")
    raw.kill9()  # no chance to flush or fsync anything
    paths = home_paths(proxy.home)
    calls = [r for r in spool_records(paths) if r["event_name"] == "mcp.tool.call"]
    assert [r["gen_ai.tool.call.arguments"]["text"] for r in calls] == answered
    dead_instance = calls[0]["service.instance.id"]

    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, push_interval=0.2, max_retry_interval=0.5))
    async with proxy.client() as client:
        await client.list_tools()
        await wait_for(lambda: {r["id"] for r in calls} <= c.ids, 30)
        await wait_for(lambda: not [s for s in Layout(paths).segments() if dead_instance in s.name], 30)
    assert c.duplicates == 0


async def test_kill9_during_push_then_push_again_sends_the_batch_twice_with_the_same_ids(proxy, collector, spool):
    c, url = collector
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, batch_max_records=20))
    spool.paths = home_paths(proxy.home)
    log = spool.open(instance="writer")
    written = [r["id"] for r in call(log, 50)]
    log.close()
    c.delay = 60.0  # the collector keeps the first batch and does not answer
    push = subprocess.Popen([PY, *proxy.argv(), "audit", "push"], env=proxy.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_sync(lambda: c.records, 30)
    push.kill()  # after "sent", before "acknowledged"
    push.wait(10)
    first_batch = len(c.records)
    assert first_batch == 20
    c.delay = 0.0
    again = subprocess.run([PY, *proxy.argv(), "audit", "push"], env=proxy.env(), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert set(written) <= c.ids
    assert c.duplicates == first_batch  # re-sent, and recognisable as the same records
    assert len(c.records) == len(c.ids)


async def test_two_processes_append_at_once_and_both_chains_hold(proxy):
    proxy.write({"fake": fake_upstream()})
    results: dict[str, list[str]] = {}

    async def session(name: str) -> None:
        async with proxy.client(client_name=name) as client:
            await client.list_tools()
            import anyio

            async with anyio.create_task_group() as tg:
                for i in range(15):
                    tg.start_soon(client.call_tool, "fake_echo", {"text": f"{name} {i}"})
            results[name] = [f"{name} {i}" for i in range(15)]

    import anyio

    async with anyio.create_task_group() as tg:
        tg.start_soon(session, "first")
        tg.start_soon(session, "second")
    paths = home_paths(proxy.home)
    records = spool_records(paths)
    by_instance: dict[str, list[dict]] = {}
    for r in records:
        by_instance.setdefault(r["service.instance.id"], []).append(r)
    assert len(by_instance) == 2
    for mine in by_instance.values():
        client = mine[0].get("mcp.client.name") or next(r["mcp.client.name"] for r in mine if "mcp.client.name" in r)
        texts = sorted(r["gen_ai.tool.call.arguments"]["text"] for r in mine if r["event_name"] == "mcp.tool.call")
        assert texts == sorted(results[client])
    assert len({r["id"] for r in records}) == len(records)
    report = verify(Layout(paths))
    assert report.ok and report.records == len(records) and report.segments == 2
