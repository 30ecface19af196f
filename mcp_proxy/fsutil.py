"""File primitives several parts share: atomic replacement and a cross-process lock.

Several proxy processes run at once on one laptop (Claude Desktop starts two,
each IDE one more), so files they share are replaced atomically (a reader sees
the old or the new file, never half of one) and work only one of them may do
at a time (refreshing a rotating OAuth token, shipping the audit spool) runs
under an OS file lock, which the OS releases when a holder dies, even by kill -9.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from mcp_proxy.errors import LockTimeout


def atomic_write(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data` atomically.

    `mode` sets the file's permission bits (the temporary file is 0600 until then, so a secret is never
    readable by others even for a moment). With `durable`, the data and the rename are fsync'd, so the new
    content survives a power loss once this returns.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_like(path: Path, data: bytes, original: os.stat_result) -> None:
    """Replace `path` with `data` atomically (as `atomic_write`, durable), never more readable than the file
    `original` describes: a copy of a private file stays private whatever the umask.

    The new file gets `original`'s permission bits and, where the OS lets us, its group; when the group
    cannot be kept (we are not a member of it), the group bits are dropped, since they would otherwise
    grant our group what the original granted another one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(original.st_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600 until chmod
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            if hasattr(os, "fchown") and os.fstat(fh.fileno()).st_gid != original.st_gid:
                try:
                    os.fchown(fh.fileno(), -1, original.st_gid)
                except OSError:
                    mode &= ~0o070
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows: directories cannot be opened; NTFS journals renames itself
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class FileLock:
    """An exclusive lock on a file, shared by every process of this user.

    Use as a context manager (`with FileLock(path, timeout=5):`) or with `acquire(blocking=False)`. The lock
    is the OS's (flock / LockFileEx), so it is released when the holder exits or is killed. Not re-entrant.
    """

    def __init__(self, path: Path, timeout: float | None = None, poll: float = 0.02) -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock. Non-blocking: True or False at once. Blocking: waits up to `timeout`
        (default: the constructor's; None waits forever), then raises LockTimeout."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        wait = self.timeout if timeout is None else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            if _try_lock(fd):
                self._fd = fd
                return True
            if not blocking:
                os.close(fd)
                return False
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                raise LockTimeout(f"{self.path} is held by another process")
            time.sleep(self.poll)

    def try_acquire(self) -> bool:
        """Take the lock if it is free now. False when another process holds it, and also when the OS
        refuses locks or the lock file cannot be created: for callers to whom both mean "not now"."""
        try:
            return self.acquire(blocking=False)
        except OSError:
            return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
