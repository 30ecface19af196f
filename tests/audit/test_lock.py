"""The writer lock: a writer never writes without it, and the housekeeping never takes it away."""

from __future__ import annotations

import logging
import threading

import pytest

from mcp_proxy.audit import spool as spool_module
from mcp_proxy.audit.checkpoint import Checkpoint
from mcp_proxy.audit.housekeeping import clean
from mcp_proxy.audit.layout import Layout, Liveness
from mcp_proxy.audit.shipper import Shipper
from mcp_proxy.fsutil import FileLock
from tests._support.audit import call

pytestmark = pytest.mark.anyio


def _probe_held_for(path, seconds: float) -> threading.Thread:
    """What a shipper's liveness probe does, for longer than it ever does: hold the lock a moment."""
    held = threading.Event()

    def hold() -> None:
        lock = FileLock(path)
        lock.acquire()
        held.set()
        threading.Event().wait(seconds)
        lock.release()

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    return t


async def test_a_writer_waits_for_its_lock_through_a_liveness_probe(spool):
    layout = Layout(spool.paths)
    probe = _probe_held_for(layout.writer_lock("w1"), 0.2)
    log = spool.open(instance="w1")  # its first lock attempt collides with the probe
    probe.join()
    assert Liveness(layout).alive("w1")  # it holds its lock, so no shipper takes its segment as finished
    call(log, 2)
    assert Liveness(layout).alive("w1") and len(spool.records()) == 2 and log.writer.locked


async def test_a_writer_without_its_lock_keeps_records_in_memory_and_never_writes_unlocked(
        spool, collector, monkeypatch, caplog):
    c, url = collector
    monkeypatch.setattr(spool_module, "LOCK_WAIT", 0.05, raising=False)
    layout = Layout(spool.paths)
    probe = FileLock(layout.writer_lock("w1"))
    probe.acquire()  # held for the whole start-up wait: the writer gives up waiting
    log = spool.open(instance="w1")
    first = call(log, 3)
    assert layout.segments() == []  # nothing written without the lock
    assert not log.writer.locked
    assert "cannot take this process's audit writer lock" in caplog.text
    shipper = Shipper(spool.paths, spool.config(collector=url, push_interval=0.05), None)
    assert (await shipper.push_once()).sent == 0
    probe.release()
    later = call(log, 2)  # the next write takes the lock, then writes the kept records first, in order
    assert log.writer.locked and Liveness(layout).alive("w1")
    assert [r["id"] for r in spool.records()] == [r["id"] for r in first + later]
    assert (await shipper.push_once(force=True)).sent == 5
    assert len(layout.segments()) == 1  # delivered, but its writer lives: kept for what it appends next
    more = call(log, 2)
    log.close()
    await shipper.push_once(force=True)
    await shipper.aclose()
    assert {r["id"] for r in first + later + more} <= c.ids and layout.segments() == []


async def test_a_lock_file_unlinked_between_open_and_lock_is_replaced(spool, monkeypatch):
    """The race with clean(): the writer opened its lock file, clean() deleted it, the writer locked the
    deleted file. The writer must notice (the file at the path is another) and lock the new one."""
    layout = Layout(spool.paths)
    real = FileLock.acquire
    raced = []

    def acquire(self, blocking=True, timeout=None):
        got = real(self, blocking, timeout)
        if got and not raced and self.path == layout.writer_lock("w1"):
            raced.append(True)
            self.path.unlink()  # as clean() did, a moment too late for this open
        return got

    monkeypatch.setattr(FileLock, "acquire", acquire)
    log = spool.open(instance="w1")
    monkeypatch.setattr(FileLock, "acquire", real)
    assert raced and log.writer.locked
    assert layout.writer_lock("w1").exists()
    assert Liveness(layout).alive("w1")  # the probe sees the lock on the file at the path
    call(log, 1)
    assert Liveness(layout).alive("w1")


async def test_clean_deletes_only_lock_files_it_can_hold(spool):
    layout = Layout(spool.paths)
    live = spool.open(instance="live")  # holds its lock, no segment yet
    gone = FileLock(layout.writer_lock("gone"))
    gone.acquire()
    gone.release()  # a writer that exited and left nothing
    clean(layout, Checkpoint())
    assert layout.writer_lock("live").exists() and live.writer.locked
    assert not layout.writer_lock("gone").exists()
    call(live, 1)
    assert Liveness(layout).alive("live")


async def test_the_lock_error_is_logged_once_and_names_the_fix(spool, monkeypatch, caplog):
    monkeypatch.setattr(spool_module, "LOCK_WAIT", 0.0, raising=False)

    def refuse(self, blocking=True, timeout=None):
        raise OSError(37, "No locks available")  # ENOLCK, as on some network file systems

    monkeypatch.setattr(FileLock, "acquire", refuse)
    caplog.set_level(logging.ERROR)
    log = spool.open(instance="nfs")
    call(log, 3)
    assert Layout(spool.paths).segments() == []
    errors = [r for r in caplog.records if "writer lock" in r.getMessage()]
    assert len(errors) == 1 and "No locks available" in errors[0].getMessage()
    assert "local disk that supports file locks" in errors[0].getMessage()
