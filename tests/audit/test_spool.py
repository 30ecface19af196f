"""The writer: record fields, ids, the hash chain, rotation, durability settings, failures, the verifier."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading

import anyio
import pytest

from mcp_proxy.audit import spool as spool_module
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.verify import verify
from tests._support.audit import call, wait_sync

pytestmark = pytest.mark.anyio

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _lines(spool) -> list[bytes]:
    return b"".join(s.path.read_bytes() for s in Layout(spool.paths).segments()).splitlines()


async def test_a_record_has_identity_context_and_the_chain(spool):
    log = spool.open(client_name="claude-ai", client_version="0.9", policy_revision="r7")
    rec = await log.append("mcp.tool.call", {"mcp.method.name": "tools/call", "gen_ai.tool.name": "pd_list",
                                             "jsonrpc.request.id": "5", "arguments": {"q": 1}, "upstream": "pd",
                                             "upstream.tool": "list", "outcome": "ok", "error.type": None,
                                             "duration_ms": 2.5, "id": "forged", "service.name": "forged"})
    log.close()
    (stored,) = spool.records()
    assert stored == rec
    assert UUID7.match(stored["id"]) and stored["id"] != "forged"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", stored["time"])
    assert stored["seq"] == 1 and stored["prev_hash"] == "" and stored["audit.segment"] == 1
    assert stored["service.name"] == "mcp-access-proxy" and stored["service.version"] == "0.1.0"
    assert stored["service.instance.id"] == "inst1" and stored["host.name"] == "laptop"
    assert stored["user.email"] == "alice@example.com" and stored["policy.governed"] is True
    assert stored["mcp.client.name"] == "claude-ai" and stored["mcp.client.version"] == "0.9"
    assert stored["policy.revision"] == "r7" and stored["gen_ai.operation.name"] == "execute_tool"
    assert stored["gen_ai.tool.call.arguments"] == {"q": 1} and "arguments" not in stored
    assert "error.type" not in stored  # None fields are left out
    assert list(stored)[:4] == ["id", "seq", "time", "event_name"]


async def test_context_changes_apply_to_later_records(spool):
    log = spool.open(governed=False)
    log.append_nowait("tools.discovered", {"upstream": "x", "tool_count": 3})
    log.context.user = "bob@example.com"
    log.context.policy_revision = "r2"
    log.append_nowait("auth.signed_in", {"upstream": "pd", "user.email": "carol@example.com"})
    log.close()
    first, second = spool.records()
    assert first["user.email"] == "alice@example.com" and "policy.revision" not in first
    assert first["policy.governed"] is False and second["policy.governed"] is False
    assert second["user.email"] == "carol@example.com"  # the event's own field wins
    assert second["policy.revision"] == "r2"


async def test_chain_links_every_line_and_continues_across_rotation(spool):
    cfg = spool.config(segment_max_bytes=4096, max_disk_bytes=1 << 20)
    log = spool.open(cfg)
    call(log, 60)
    log.close()
    segments = Layout(spool.paths).segments()
    assert len(segments) >= 3 and all(s.size <= 4096 for s in segments)
    assert [s.index for s in segments] == list(range(1, len(segments) + 1))
    lines = _lines(spool)
    records = [json.loads(line) for line in lines]
    assert len({r["id"] for r in records}) == 60
    for prev, rec in zip(lines, records[1:], strict=False):
        assert rec["prev_hash"] == hashlib.sha256(prev).hexdigest()
    assert [r["seq"] for r in records if r["audit.segment"] == 2][0] == 1
    report = verify(Layout(spool.paths))
    assert report.ok and report.records == 60 and report.segments == len(segments)


async def test_verifier_finds_an_edit_a_removed_line_and_a_damaged_line(spool):
    log = spool.open()
    call(log, 6)
    log.close()
    (seg,) = Layout(spool.paths).segments()
    original = seg.path.read_bytes()
    lines = original.splitlines(keepends=True)

    seg.path.write_bytes(b"".join([lines[0], lines[1].replace(b"call 1", b"call X"), *lines[2:]]))
    (problem,) = verify(Layout(spool.paths)).problems
    assert problem.kind == "edit" and problem.line == 3

    seg.path.write_bytes(b"".join([*lines[:2], *lines[3:]]))
    (problem,) = verify(Layout(spool.paths)).problems
    assert problem.kind == "gap" and "records 3..3 are missing" in problem.detail

    seg.path.write_bytes(b"".join([*lines[:2], b"garbage\n", *lines[2:]]))
    kinds = {p.kind for p in verify(Layout(spool.paths)).problems}
    assert "corrupt" in kinds

    seg.path.write_bytes(original)
    assert verify(Layout(spool.paths)).ok


def _segment_syncs(monkeypatch, spool, delay: float = 0.0) -> list[int]:
    """Record every fsync of a live segment file (by inode: the writer fsyncs a dup of its descriptor)."""
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if delay:
            threading.Event().wait(delay)
        real(fd)
        inode = os.fstat(fd).st_ino
        if any(s.path.stat().st_ino == inode for s in Layout(spool.paths).segments()):
            synced.append(inode)

    monkeypatch.setattr(spool_module.os, "fsync", fsync)
    return synced


async def test_fsync_durability_syncs_before_append_returns(spool, monkeypatch):
    log = spool.open(spool.config(durability="fsync"))
    await log.append("tools.discovered", {"upstream": "w"})  # the segment exists from here on
    synced = _segment_syncs(monkeypatch, spool)
    log.append_nowait("tools.discovered", {"upstream": "x"})
    assert len(synced) == 1, "append_nowait returned before its record was fsync'd"
    await log.append("tools.discovered", {"upstream": "y"})
    assert len(synced) == 2, "append returned before its record was fsync'd"


async def test_group_durability_writes_now_and_fsyncs_within_the_window(spool, monkeypatch):
    synced = threading.Event()
    real = os.fsync
    monkeypatch.setattr(spool_module.os, "fsync", lambda fd: (synced.set(), real(fd))[1])
    log = spool.open(spool.config(durability="group", group_commit_ms=20))
    await log.append("tools.discovered", {"upstream": "x"})
    assert not synced.is_set()  # not on the caller's time
    assert len(spool.records()) == 1  # but already written to the OS: a kill -9 now keeps it
    assert synced.wait(5.0), "the group commit never fsync'd"


async def test_concurrent_fsync_appends_share_fsyncs(spool, monkeypatch):
    log = spool.open(spool.config(durability="fsync"))
    await log.append("tools.discovered", {"upstream": "first"})
    # A slow disk: while one fsync runs, the other appends queue behind it and one fsync serves them all.
    calls = _segment_syncs(monkeypatch, spool, delay=0.05)
    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(log.append, "tools.discovered", {"upstream": f"u{i}"})
    assert len(spool.records()) == 51
    assert 1 <= len(calls) <= 10, f"50 concurrent appends paid {len(calls)} fsyncs"


async def test_records_wait_for_the_secret_values_and_keep_their_order(spool):
    release = threading.Event()

    def slow_secrets() -> list[str]:
        release.wait(10)
        return ["very-secret-token-1"]

    log = spool.open(secrets=[])
    log.close()
    from mcp_proxy.audit import AuditContext, AuditLog

    ctx = AuditContext(proxy_version="0.1.0", instance_id="slow", host="h", user=None, governed=False)
    log = AuditLog.open(spool.paths, spool.config(), ctx, secret_values=slow_secrets)
    spool.logs.append(log)
    preview = log.append_nowait("policy.activated", {"reason": "has very-secret-token-1 inside"})
    assert preview["event_name"] == "policy.activated" and UUID7.match(preview["id"])
    assert not [r for r in spool.records() if r["service.instance.id"] == "slow"]  # held until secrets are known

    async def later() -> None:
        await anyio.sleep(0.2)
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        await log.append("mcp.tool.call", {"arguments": {"text": "very-secret-token-1"}, "outcome": "ok"})
    mine = [r for r in spool.records() if r["service.instance.id"] == "slow"]
    assert [r["event_name"] for r in mine] == ["policy.activated", "mcp.tool.call"]
    assert mine[0]["id"] == preview["id"] and [r["seq"] for r in mine] == [1, 2]
    assert "very-secret-token-1" not in json.dumps(mine)


async def test_a_full_disk_keeps_records_in_memory_and_writes_them_later(spool, monkeypatch):
    log = spool.open()
    call(log, 2)
    real_write = os.write
    monkeypatch.setattr(spool_module.os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    call(log, 3)
    assert len(spool.records()) == 2
    monkeypatch.setattr(spool_module.os, "write", real_write)
    call(log, 1)
    log.close()
    records = spool.records()
    assert [r["gen_ai.tool.call.arguments"]["text"] for r in records] == ["call 0", "call 1", "call 0", "call 1",
                                                                          "call 2", "call 0"]
    assert verify(Layout(spool.paths)).ok


async def test_a_write_torn_half_way_seals_the_segment_and_the_chain_goes_on(spool, monkeypatch):
    log = spool.open()
    call(log, 2)
    real_write = os.write
    state = {"torn": False}

    def half(fd, data):  # what the kernel does on a full disk: a short write, then ENOSPC
        if state["torn"] is None:
            state["torn"] = True
            raise OSError(errno.ENOSPC, "full")
        if not state["torn"]:
            state["torn"] = None
            return real_write(fd, bytes(data[: len(data) // 2]))
        return real_write(fd, data)

    monkeypatch.setattr(spool_module.os, "write", half)
    call(log, 2)
    log.close()
    segments = Layout(spool.paths).segments()
    assert len(segments) == 2
    assert not segments[0].path.read_bytes().endswith(b"\n")  # the torn line stays the last of segment 1
    records = spool.records()
    assert len(records) == 4  # the torn record was written again in segment 2
    report = verify(Layout(spool.paths))
    assert report.ok and report.torn_tails == 1


async def test_close_is_idempotent_and_frees_the_writer_lock(spool):
    from mcp_proxy.audit.layout import Liveness

    log = spool.open()
    call(log, 1)
    layout = Layout(spool.paths)
    assert Liveness(layout).alive("inst1")
    log.close()
    log.close()
    wait_sync(lambda: not Liveness(layout).alive("inst1"), 5)
