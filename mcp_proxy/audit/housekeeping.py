"""Housekeeping of the spool: batches set aside, and deleting what is fully delivered.

Deletion trusts only an authenticated checkpoint (checkpoint.py), and segments that vanish otherwise are
remembered and reported (verify.py).

Set-aside batches (`rejected/`) keep the refused lines exactly as spooled, with a
`.json` beside each saying why (status, the collector's reason, first and last
record id), so that someone can fix the cause and re-send them by hand.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from mcp_proxy.audit.checkpoint import Checkpoint
from mcp_proxy.audit.layout import Layout, Liveness, stamp
from mcp_proxy.audit.verify import instance_of, vanished_text
from mcp_proxy.fsutil import FileLock, atomic_write

log = logging.getLogger(__name__)


def write_aside(layout: Layout, raws: list[bytes], *, kind: str, status: int | None, reason: str,
                segments: list[str], protocol: str, now: float, **extra: Any) -> str:
    """Keep `raws` in rejected/ (both files fsync'd before this returns); returns the file's name.
    Raises OSError when they could not be written: the caller must then not acknowledge the records."""
    name = f"{stamp(now)}-{kind}-{status or 0}-{random.getrandbits(32):08x}"
    meta = {"kind": kind, "status": status, "reason": reason, "records": len(raws), "time": now,
            "segments": segments, "protocol": protocol, **extra}
    lines, about = layout.rejected / f"{name}.jsonl", layout.rejected / f"{name}.json"
    try:
        atomic_write(about, json.dumps(meta, indent=2).encode())
        atomic_write(lines, b"".join(r + b"\n" for r in raws))
    except OSError:
        for path in (lines, about):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        raise
    return lines.name


def clean(layout: Layout, checkpoint: Checkpoint) -> bool:
    """Delete segments that are fully acknowledged and sealed (their writer is gone or has moved on to a
    newer segment); remove the lock files of writers that are gone and left nothing. The caller holds the
    ship lock and saves the checkpoint. Runs in a worker thread (it reads the directory and probes locks).
    Returns whether the checkpoint changed.

    Only what the collector acknowledged is deleted, on the word of an authenticated checkpoint: one that
    was reset in this cycle (`problem`: forged, unauthenticated, unreadable) deletes nothing until the next
    cycle. A segment the checkpoint names that is gone although we did not delete it (and the disk quota
    did not drop it: it removes its entries itself) is moved to `checkpoint.vanished`, which `audit status`
    reports and the shipper announces to the collector."""
    segments = layout.segments()
    liveness = Liveness(layout)
    present = {s.name for s in segments}
    changed = False
    for name in [n for n in checkpoint.acked if n not in present]:
        if (layout.spool / name).exists():
            continue  # created after our listing
        checkpoint.vanished.append({"segment": name, "instance": instance_of(name), "acked": checkpoint.acked[name],
                                    "noticed": time.time(), "detail": vanished_text(name, checkpoint)})
        del checkpoint.acked[name]
        changed = True
    for seg in segments:
        if checkpoint.problem:
            break
        if liveness.done(seg, segments, checkpoint.acked.get(seg.name, -1)):
            try:
                seg.path.unlink()
                del checkpoint.acked[seg.name]
                present.discard(seg.name)
                changed = True
            except OSError as exc:
                log.debug("could not delete %s (%s)", seg.name, exc)
    instances = {s.instance for s in segments if s.name in present}
    try:
        locks = list(layout.locks.glob("audit-writer-*.lock"))
    except OSError:
        locks = []
    for path in locks:
        if path.name[len("audit-writer-"):-len(".lock")] not in instances:
            _remove_free_lock(path)
    return changed


def _remove_free_lock(path: Path) -> None:
    """Delete a writer's lock file only while holding that lock ourselves: a running writer holds it, so
    it is never touched; a writer that opened the file just before we unlinked it finds, once it has the
    lock, that its file is no longer the one at the path and takes a new one (spool.py)."""
    lock = FileLock(path)
    if not lock.try_acquire():
        return
    try:
        path.unlink(missing_ok=True)
    except OSError:  # Windows: an open file cannot be deleted; it is tried again next time
        pass
    finally:
        lock.release()
