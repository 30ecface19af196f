"""Housekeeping of the spool: batches set aside, and deleting what is fully delivered.

Set-aside batches (`rejected/`) keep the refused lines exactly as spooled, with a
`.json` beside each saying why (status, the collector's reason, first and last
record id), so that someone can fix the cause and re-send them by hand.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any

from mcp_proxy.audit.checkpoint import Checkpoint
from mcp_proxy.audit.layout import Layout, Liveness, stamp
from mcp_proxy.fsutil import atomic_write

log = logging.getLogger(__name__)


def write_aside(layout: Layout, raws: list[bytes], *, kind: str, status: int | None, reason: str,
                segments: list[str], protocol: str, now: float, **extra: Any) -> str:
    """Keep `raws` in rejected/; returns the file's name."""
    name = f"{stamp(now)}-{kind}-{status or 0}-{random.getrandbits(32):08x}"
    meta = {"kind": kind, "status": status, "reason": reason, "records": len(raws), "time": now,
            "segments": segments, "protocol": protocol, **extra}
    try:
        atomic_write(layout.rejected / f"{name}.jsonl", b"".join(r + b"\n" for r in raws))
        atomic_write(layout.rejected / f"{name}.json", json.dumps(meta, indent=2).encode())
    except OSError as exc:
        log.error("could not keep the set-aside audit batch in %s (%s)", layout.rejected, exc.strerror)
    return f"{name}.jsonl"


def clean(layout: Layout, checkpoint: Checkpoint) -> None:
    """Delete segments that are fully acknowledged and sealed (their writer is gone or has moved on to a
    newer segment); forget checkpoint entries of vanished segments; remove the lock files of writers
    that are gone and left nothing. The caller holds the ship lock and saves the checkpoint."""
    segments = layout.segments()
    liveness = Liveness(layout)
    present = {s.name for s in segments}
    for name in [n for n in checkpoint.acked if n not in present]:
        del checkpoint.acked[name]
    for seg in segments:
        if checkpoint.acked.get(seg.name, -1) >= seg.size and liveness.sealed(seg, segments):
            try:
                seg.path.unlink()
                del checkpoint.acked[seg.name]
                present.discard(seg.name)
            except OSError as exc:
                log.debug("could not delete %s (%s)", seg.name, exc)
    instances = {s.instance for s in segments if s.name in present}
    try:
        locks = list(layout.locks.glob("audit-writer-*.lock"))
    except OSError:
        locks = []
    for path in locks:
        instance = path.name[len("audit-writer-"):-len(".lock")]
        if instance not in instances and not liveness.alive(instance):
            path.unlink(missing_ok=True)
