"""Tamper evidence (issue 14, item 7): what `audit status` and the collector see after a local user deletes
segments, removes or edits records and rehashes, forges the checkpoint, or a writer dies mid-record."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.audit import housekeeping
from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.audit.status import collect
from mcp_proxy.cli import run
from mcp_proxy.config import AuditConfig
from tests._support.audit import call, dead_writer, fake_upstream, home_paths
from tests._support.tamper import edit_and_rehash, forge_checkpoint, remove_and_rehash, segments

pytestmark = pytest.mark.anyio

SMALL = 2048  # bytes per segment: 30 records make several


def _config(url: str | None = None, **kw) -> AuditConfig:
    kw.setdefault("segment_max_bytes", SMALL)
    kw.setdefault("push_interval", 0.05)
    kw.setdefault("max_retry_interval", 1.0)
    return AuditConfig(collector=url, **kw)


def _writer(spool, n: int = 30, close: bool = True, **kw):
    log = spool.open(_config(**kw))
    call(log, n)
    if close:
        log.close()
    return log


async def _push(spool, url: str, events: list | None = None, **kw):
    shipper = Shipper(spool.paths, _config(url, **kw), None,
                      emit=(lambda e, f: events.append((e, f))) if events is not None else None)
    try:
        return await shipper.push_once(force=True)
    finally:
        await shipper.aclose()


def _chain(spool) -> dict:
    return collect(spool.paths, _config())["chain"]


def _gaps(chain: dict, kind: str | None = None) -> list[dict]:
    return [g for g in chain["gaps"] if kind is None or g["kind"] == kind]


async def test_a_whole_run_ships_without_a_break_and_carries_the_chain_head(spool, collector):
    c, url = collector
    log = spool.open(_config())
    call(log, 12)
    assert (await _push(spool, url, batch_max_records=5)).sent == 12
    call(log, 20)  # rotates into new segments
    assert (await _push(spool, url, batch_max_records=5)).sent == 20
    log.close()
    assert (await _push(spool, url)).result in ("ok", "nothing")
    assert c.chain_breaks == []
    by_id = {r["id"]: r for r in c.records}
    first, second = c.records[4], c.records[5]  # the last of the first batch, the first of the second
    assert second["audit.chain.head"] == second["prev_hash"] == first["audit.record_hash"]
    assert c.records[0]["audit.chain.head"] == "" and c.records[0]["audit.seq.first"] == 1
    assert c.records[0]["audit.seq.last"] == 5 and len(by_id) == 32
    assert _chain(spool)["ok"]


@pytest.mark.parametrize("protocol", ["otlp-json", "otlp-protobuf"])
async def test_both_otlp_encodings_carry_the_chain_attributes(spool, collector, protocol):
    c, url = collector
    _writer(spool, 6, close=False)
    await _push(spool, url, protocol=protocol, batch_max_records=3)
    heads = [r["audit.chain.head"] for r in c.records]
    assert heads[:3] == ["", "", ""] and heads[3:] == [c.records[2]["audit.record_hash"]] * 3
    assert [(r["audit.seq.first"], r["audit.seq.last"]) for r in c.records] == [(1, 3)] * 3 + [(4, 6)] * 3
    assert c.chain_breaks == []


async def test_deleting_the_first_segment_shows_as_a_gap(spool, collector):
    c, url = collector
    _writer(spool)
    first, *rest = segments(spool.paths)
    assert len(rest) >= 2 and _chain(spool)["ok"]
    first.path.unlink()
    chain = _chain(spool)
    assert not chain["ok"]
    (gap,) = _gaps(chain, "missing-segment")
    assert gap["instance"] == "inst1" and "segments 1..1 are missing" in gap["detail"]
    assert "never acknowledged" in gap["detail"] and rest[0].name in gap["detail"]
    await _push(spool, url)
    assert [(b["instance"], b["kind"]) for b in c.chain_breaks] == [("inst1", "start")]


async def test_deleting_the_last_segment_shows_as_a_gap(spool, collector):
    c, url = collector
    _writer(spool)
    *kept, last = segments(spool.paths)
    c.fault = "down"
    assert (await _push(spool, url)).result == "retrying"  # the shipper listed the segments, delivered none
    last.path.unlink()
    chain = _chain(spool)
    (gap,) = _gaps(chain, "missing-segment")
    assert gap["instance"] == "inst1" and f"segments {last.index}..{last.index} are missing" in gap["detail"]
    assert f"segment {kept[-1].index} seq" in gap["detail"] and "the shipper listed them" in gap["detail"]


async def test_a_segment_delivered_in_part_then_deleted_by_hand_is_reported(spool, collector):
    c, url = collector
    log = _writer(spool, 5, close=False, segment_max_bytes=1 << 20)
    await _push(spool, url)
    call(log, 5)  # not yet shipped
    (seg,) = segments(spool.paths)
    seg.path.unlink()
    chain = _chain(spool)
    (gap,) = _gaps(chain, "vanished")
    assert gap["instance"] == "inst1" and "acknowledged it only up to segment 1 seq 5" in gap["detail"]
    events: list = []
    await _push(spool, url, events)
    assert [e for e, _ in events] == ["audit.segment_vanished"]
    assert not _chain(spool)["ok"]  # remembered in the checkpoint after housekeeping forgot the segment
    log.close()


async def test_deleting_a_middle_segment_names_the_instance_and_the_records(spool, collector):
    c, url = collector
    _writer(spool)
    first, middle, *_ = segments(spool.paths)
    last_seq = json.loads(first.path.read_bytes().splitlines()[-1])["seq"]
    middle.path.unlink()
    (gap,) = _gaps(_chain(spool), "missing-segment")
    assert gap["instance"] == "inst1" and "segments 2..2 are missing" in gap["detail"]
    assert f"after segment 1 seq {last_seq}" in gap["detail"]
    await _push(spool, url)
    assert [(b["instance"], b["kind"]) for b in c.chain_breaks] == [("inst1", "link")]


async def test_removing_a_delivered_record_and_rehashing_is_seen(spool, collector):
    c, url = collector
    _writer(spool, 10, segment_max_bytes=1 << 20)
    c.script = [None, "down"]  # the first 5 records are delivered, the rest wait
    await _push(spool, url, batch_max_records=5)
    (seg,) = segments(spool.paths)
    remove_and_rehash(seg, 2)
    chain = _chain(spool)
    (gap,) = _gaps(chain)
    assert gap["kind"] == "changed" and gap["instance"] == "inst1"
    assert "up to segment 1 seq 5" in gap["detail"] and "the collector holds the originals" in gap["detail"]
    await _push(spool, url)
    assert c.chain_breaks and c.chain_breaks[0]["instance"] == "inst1"


async def test_editing_a_delivered_record_and_rehashing_is_seen(spool, collector):
    c, url = collector
    _writer(spool, 10, segment_max_bytes=1 << 20)
    c.script = [None, "down"]
    await _push(spool, url, batch_max_records=5)
    (seg,) = segments(spool.paths)
    edit_and_rehash(seg, 1, outcome="error")
    (gap,) = _gaps(_chain(spool))
    assert gap["kind"] == "changed" and gap["instance"] == "inst1"
    await _push(spool, url)
    # The edit moved every later line: the shipper's next offset falls mid-line (set aside as corrupt), and
    # what follows does not continue what the collector holds.
    assert c.chain_breaks and {b["instance"] for b in c.chain_breaks} == {"inst1"}


async def test_rewriting_what_was_never_delivered_is_the_honest_limit(spool, collector):
    """The README's limit: records not yet shipped can be rewritten with their chain, unseen."""
    c, url = collector
    _writer(spool, 10, segment_max_bytes=1 << 20)
    c.script = [None, "down"]
    await _push(spool, url, batch_max_records=5)
    (seg,) = segments(spool.paths)
    remove_and_rehash(seg, 7)
    assert _chain(spool)["ok"]
    await _push(spool, url)
    assert c.chain_breaks == [] and len(c.records) == 9


async def test_a_forged_checkpoint_is_flagged_and_deletes_nothing(spool, collector):
    c, url = collector
    _writer(spool)
    names = [s.name for s in segments(spool.paths)]
    forge_checkpoint(spool.paths, mac="0" * 64)
    s = collect(spool.paths, _config())
    assert not s["chain"]["ok"] and not s["checkpoint_authentic"]
    assert "not authenticated" in s["checkpoint_problem"] and _gaps(s["chain"], "checkpoint")
    layout = Layout(spool.paths)
    housekeeping.clean(layout, Checkpoint.load(layout.checkpoint, repair=False))
    assert [s.name for s in segments(spool.paths)] == names
    c.fault = "down"
    events: list = []
    await _push(spool, url, events)  # the shipper's own housekeeping: nothing was delivered
    assert [s.name for s in segments(spool.paths)] == names
    (reset,) = [f for e, f in events if e == "audit.checkpoint_reset"]
    assert reset["audit.checkpoint.unauthenticated"] is True
    state = ShipState.load(layout.state)
    assert state.checkpoint_resets == 1 and "not authenticated" in state.checkpoint_reset_reason
    assert list(layout.root.glob("checkpoint.json.unauthenticated-*"))
    c.fault = None
    await _push(spool, url)
    assert len(c.records) == 30 and segments(spool.paths) == []  # delivered now, and only then deleted


async def test_a_checkpoint_without_a_mac_is_not_trusted_either(spool):
    _writer(spool)
    names = [s.name for s in segments(spool.paths)]
    forge_checkpoint(spool.paths)
    layout = Layout(spool.paths)
    checkpoint = Checkpoint.load(layout.checkpoint)
    assert checkpoint.acked == {} and checkpoint.unauthenticated
    housekeeping.clean(layout, checkpoint)
    assert [s.name for s in segments(spool.paths)] == names


async def test_the_checkpoint_the_shipper_writes_is_authenticated(spool, collector):
    c, url = collector
    _writer(spool, 5, close=False)
    await _push(spool, url)
    layout = Layout(spool.paths)
    checkpoint = Checkpoint.load(layout.checkpoint, repair=False)
    assert checkpoint.problem is None and checkpoint.heads["inst1"].seq == 5
    assert (layout.root / "fingerprint.key").stat().st_mode & 0o777 == 0o600
    data = json.loads(layout.checkpoint.read_bytes())
    data["acked"] = {k: v + 100 for k, v in data["acked"].items()}
    layout.checkpoint.write_text(json.dumps(data))  # an edit keeping the old MAC
    assert Checkpoint.load(layout.checkpoint, repair=False).unauthenticated


@pytest.fixture
def cli(proxy, spool, monkeypatch):
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(proxy.home))
    spool.paths = home_paths(proxy.home)
    proxy.write({"fake": fake_upstream()})
    return lambda *args: run(["--config", str(proxy.config), *args])


def test_a_torn_tail_of_a_dead_writer_is_reported_as_torn_not_tampering(spool, cli, capsys):
    dead_writer(spool, "inst1", 3, b'{"id":"0190-cut-off-by-a-cra')
    assert cli("audit", "status") == 0
    out = capsys.readouterr().out
    assert "ok: 3 records link up; 1 torn last records (crashes, not tampering)" in out
    assert "instance inst1" in out and "torn record after segment 1 seq 3" in out
