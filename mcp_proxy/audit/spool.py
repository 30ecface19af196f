"""One process's segment writer: append a line, rotate by size, make it durable.

Durability (`[audit] durability`):

* "fsync": every record is fsync'd before `append` returns: it survives the process being killed and
  a power loss from then on. Concurrent appends share one fsync (group-commit of the callers already
  waiting), so many calls in flight do not each pay a full fsync.
* "group" (default): the line is written to the operating system (`write(2)` on an O_APPEND file, no
  user-space buffer) before `append` returns, so it survives the process being killed at any moment
  after; a background thread fsyncs at most `group_commit_ms` after the first unsynced line (the
  fsync itself then takes what the disk takes), so a power loss loses at most that window.

A write that fails half-way (disk full) leaves a torn line: the writer seals that segment and goes on
in a new one, so a torn line is only ever the last of a segment (the shipper skips and counts it).

No fsync ever runs inside `write` (the caller's thread, the event loop in `serve`): a rotated-out segment
is fsync'd and closed by the next `sync_upto` (the group-commit thread, or the fsync-mode caller's wait).

The writer writes only while it holds its instance's lock (layout.py: that lock is how every shipper
knows the segment may still grow). `start` waits up to LOCK_WAIT for it (a shipper's liveness probe
holds it for microseconds); without it, `write` raises WriterLockUnavailable, so the caller keeps the
records in memory, exactly as for an unwritable spool, and each later write tries the lock again.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable

from mcp_proxy.audit.layout import Layout, safe_instance
from mcp_proxy.errors import AuditError
from mcp_proxy.fsutil import FileLock, fsync_dir

log = logging.getLogger(__name__)

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
LOCK_WAIT = 2.0  # seconds `start` waits for this writer's own lock
LOCK_RETRY_AFTER_ERROR = 30.0  # after the OS refused the lock (ENOLCK...), seconds before trying again


class WriterLockUnavailable(AuditError, OSError):
    """This process does not hold its writer lock, so it must not write its segment."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.ENOLCK, reason)


class SegmentWriter:
    """Thread-safe appender of hash-chained lines to this instance's own segment files."""

    def __init__(self, layout: Layout, instance_id: str, *, max_bytes: int, durability: str,
                 group_commit_s: float, clock: Callable[[], float] = time.time) -> None:
        self.layout = layout
        self.instance = safe_instance(instance_id)
        self.max_bytes = max_bytes
        self.durability = durability
        self.clock = clock
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._index = 0
        self._seq = 0
        self._prev = ""
        self._broken = False
        self._dir_dirty = False
        self.written = 0  # lines written by this process
        self._synced = 0
        self._retired: list[int] = []  # rotated-out segments' fds, fsync'd and closed by sync_upto
        self._alive_lock = FileLock(layout.writer_lock(instance_id))
        self._lock_problem = ""
        self._lock_retry_at = 0.0
        self._closed = False
        self._flusher = _GroupCommit(self, group_commit_s) if durability == "group" else None

    def start(self) -> None:
        self._take_lock(LOCK_WAIT)
        if self._flusher is not None:
            self._flusher.start()

    @property
    def locked(self) -> bool:
        return self._alive_lock.held

    def _take_lock(self, wait: float) -> bool:
        """Take this instance's writer lock, waiting up to `wait` seconds; False when it could not."""
        path = self._alive_lock.path
        deadline = time.monotonic() + wait
        replaced = 0
        while True:
            try:
                got = self._alive_lock.acquire(blocking=False)
            except OSError as exc:  # ENOLCK on some network file systems: waiting does not help
                self._lock_problem = f"the OS refused the lock on {path} ({exc.strerror or type(exc).__name__})"
                self._lock_retry_at = time.monotonic() + LOCK_RETRY_AFTER_ERROR
                return False
            if got:
                if self._lock_is_current():
                    self._lock_problem = ""
                    return True
                self._alive_lock.release()  # the file was replaced between our open and our lock: again
                replaced += 1
                if replaced < 5:
                    continue
            if time.monotonic() >= deadline:
                self._lock_problem = (f"{path} stayed locked for {wait:.0f} s (another process using the same "
                                      "instance id?)" if wait else f"{path} is locked by another process")
                return False
            time.sleep(0.005)

    def _lock_is_current(self) -> bool:
        """Whether the lock we hold is on the file now at the lock's path (not on one unlinked meanwhile)."""
        fd = getattr(self._alive_lock, "_fd", None)
        if fd is None:
            return True  # nothing to compare with on this FileLock; the housekeeping never unlinks held locks
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self._alive_lock.path))
        except OSError:
            return False

    def _require_lock(self) -> None:
        if self._closed:  # a late writer (the quota thread outliving close): never reopen a segment
            raise WriterLockUnavailable("the audit log of this process is closed")
        if self._alive_lock.held:
            return
        if time.monotonic() < self._lock_retry_at or not self._take_lock(0.0):
            raise WriterLockUnavailable(self._lock_problem or "the writer lock is not held")

    def write(self, head: str, body: str) -> tuple[int, int, int, str]:
        """Append one record; `head` is `"id":"…"`, `body` the rest of the JSON object without braces.

        Returns (line number in this process, seq, segment index, prev_hash). Raises OSError when the
        line could not be written (nothing of the chain advances then)."""
        with self._lock:
            self._require_lock()
            estimate = len(head) + len(body) + 128
            if self._fd is None or self._broken or (self._size > 0 and self._size + estimate > self.max_bytes):
                self._rotate()
            seq, prev = self._seq + 1, self._prev
            line = f'{{{head},"seq":{seq},{body},"audit.segment":{self._index},"prev_hash":"{prev}"}}'.encode()
            self._write_all(line + b"\n")
            self._seq = seq
            self._prev = hashlib.sha256(line).hexdigest()
            self._size += len(line) + 1
            self.written += 1
            number, index = self.written, self._index
        if self._flusher is not None:
            self._flusher.notify()
        return number, seq, index, prev

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError:
            try:
                grown = os.fstat(self._fd).st_size != self._size
            except OSError:
                grown = True
            if done or grown:
                self._broken = True  # a torn line: never append after it
            raise

    def _rotate(self) -> None:
        """Seal the current segment and open the next one. Caller holds the lock. The finished segment is
        fsync'd and closed by the next sync_upto (never here: this runs on the caller's thread)."""
        if self._fd is not None:
            self._retired.append(self._fd)
            self._fd = None
        self.layout.spool.mkdir(parents=True, exist_ok=True)
        index = self._index + 1
        path = self.layout.segment_path(self.instance, index, self.clock())
        self._fd = os.open(path, _OPEN_FLAGS, 0o600)
        self._index, self._seq, self._size, self._broken = index, 0, 0, False
        self._dir_dirty = True

    def seal(self) -> None:
        """Finish the current segment now and open the next, so the finished one counts as sealed
        (used by the disk quota when our own segment holds the oldest data)."""
        with self._lock:
            if self._fd is not None and self._size > 0:
                self._rotate()

    def sync_upto(self, number: int) -> None:
        """Block until line `number` (and every line before it) is on disk. One fsync serves all waiters."""
        with self._sync_lock:
            if self._synced >= number and not self._retired:
                return
            with self._lock:
                target = self.written
                fd = os.dup(self._fd) if self._fd is not None else None
                retired, self._retired = self._retired, []
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            for old in retired:
                try:
                    os.fsync(old)
                except OSError as exc:
                    log.warning("could not fsync a finished audit segment (%s)", exc.strerror)
                finally:
                    os.close(old)
            try:
                if fd is not None:
                    os.fsync(fd)
            finally:
                if fd is not None:
                    os.close(fd)
            if dir_dirty:
                fsync_dir(self.layout.spool)
            self._synced = target

    def close(self) -> None:
        """Flush and fsync what was written, close the segment, let the shipper know we are gone."""
        if self._flusher is not None:
            self._flusher.stop()
        try:
            self.sync_upto(self.written)
        except OSError as exc:
            log.warning("could not fsync the audit segment at exit (%s)", exc.strerror)
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self._alive_lock.release()


class _GroupCommit(threading.Thread):
    """fsyncs the writer's file at most `window` seconds after the first unsynced line."""

    def __init__(self, writer: SegmentWriter, window: float) -> None:
        super().__init__(name="audit-group-commit", daemon=True)
        self.writer = writer
        self.window = window
        self._wake = threading.Event()
        self._stopping = False
        self._warned = False

    def notify(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            if self._stopping:
                return
            time.sleep(self.window)
            self._wake.clear()
            try:
                self.writer.sync_upto(self.writer.written)
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.error("could not fsync the audit log (%s); records are written but may not survive "
                              "a power loss", exc.strerror)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.is_alive():
            self.join(timeout=1.0)
