"""Atomic replacement and the cross-process lock, with real processes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_proxy.fsutil import FileLock, LockTimeout, atomic_write

HOLDER = """
import sys, time
from pathlib import Path
from mcp_proxy.fsutil import FileLock
lock = FileLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _start_holder(path: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_atomic_write_replaces_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.json"
    atomic_write(target, b"one", mode=0o600)
    assert target.read_bytes() == b"one"
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"two", durable=False)
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"], "no temporary file is left behind"


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"old")

    def broken_replace(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_lock_excludes_another_process_and_is_freed_by_kill(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "x.lock"
    holder = _start_holder(path)
    try:
        lock = FileLock(path)
        assert lock.acquire(blocking=False) is False
        started = time.monotonic()
        with pytest.raises(LockTimeout):
            lock.acquire(timeout=0.2)
        assert time.monotonic() - started >= 0.2
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert lock.acquire(timeout=5) is True  # the OS released the dead holder's lock
        assert lock.held
        lock.release()
        assert not lock.held
    finally:
        holder.kill()
        holder.wait(10)


def test_lock_is_not_reentrant_and_release_is_idempotent(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "y.lock")
    with lock:
        with pytest.raises(RuntimeError):
            lock.acquire(blocking=False)
        assert FileLock(tmp_path / "y.lock").acquire(blocking=False) is False
    lock.release()
    other = FileLock(tmp_path / "y.lock")
    assert other.acquire(blocking=False) is True
    other.release()
