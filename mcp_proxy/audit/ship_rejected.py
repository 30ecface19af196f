"""Re-sending the batches set aside in rejected/ (`audit push --retry-rejected`).

A person runs it once the cause is fixed (the collector's schema, its size limit, a collector that
answered 500 before 500 was retried). Each file is sent again in batches of `batch_max_records`, a 413
splitting a batch as the shipper does; the file (and its .json) is deleted only after the collector
accepted every record in it. A file refused again, even in part, stays, and its .json records the
latest refusal (`last_retry`) so that `audit status` shows the current reason. A line that is not a
record (kind "corrupt") can never be sent and stays. An unreachable or paused collector stops the run:
what was not re-sent stays for the next run. The collector deduplicates by record id, so a batch that
was half taken before is safe to send whole.

Runs under the ship lock, like a push: the quota and the shipper also delete files in rejected/.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from mcp_proxy.audit.checkpoint import ShipState
from mcp_proxy.audit.reader import Line
from mcp_proxy.fsutil import FileLock, atomic_write

if TYPE_CHECKING:
    from mcp_proxy.audit.encode import Encoder
    from mcp_proxy.audit.shipper import Shipper
    from mcp_proxy.audit.transport import Outcome, Sender


@dataclass
class ResendReport:
    result: str = "nothing"  # "nothing" | "ok" | "refused" | "stopped" | "busy"
    sent_batches: int = 0  # set-aside files delivered and deleted
    sent_records: int = 0
    kept_batches: int = 0  # set-aside files still in rejected/ after this run
    kept_records: int = 0
    reasons: list[str] = field(default_factory=list)  # why files were kept (distinct, in order)
    detail: str = ""  # why the run stopped early, when it did

    def keep(self, records: int, reason: str) -> None:
        self.kept_batches += 1
        self.kept_records += records
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class _File:
    path: Path
    lines: list[bytes]
    parts: list[Any]
    problem: str | None  # why it cannot be sent at all


class Resender:
    """Sends rejected/ again through a Shipper's encoder and sender (its config, headers and pause rules)."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper
        self.layout = shipper.layout
        self.cfg = shipper.cfg

    async def run(self, *, lock_wait: float = 0.0) -> ResendReport:
        lock = FileLock(self.layout.ship_lock)
        deadline = time.monotonic() + lock_wait
        while not lock.acquire(blocking=False):
            if time.monotonic() >= deadline:
                return ResendReport("busy", detail="another mcp-access-proxy process is pushing the audit log now")
            await anyio.sleep(0.1)
        try:
            return await self._run()
        finally:
            lock.release()

    async def _run(self) -> ResendReport:
        report = ResendReport()
        files = await anyio.to_thread.run_sync(self.layout.rejected_files)
        if not files:
            return report
        state = await anyio.to_thread.run_sync(ShipState.load, self.layout.state)
        from mcp_proxy.audit.ship_accounting import PushReport

        probe = PushReport("nothing")
        connection = await self.shipper.connect(state, probe)
        if connection is None:
            report.result, report.detail = "stopped", probe.detail
            report.kept_batches, report.kept_records = len(files), sum(map(_count, files))
            return report
        encoder, sender = connection
        for n, path in enumerate(files):
            item = await anyio.to_thread.run_sync(_load, path, encoder)
            if item is None:  # deleted meanwhile (never by a push: we hold the lock); nothing to do
                continue
            if item.problem is not None:
                report.keep(len(item.lines), item.problem)
                continue
            refusal = await self._send(sender, encoder, item)
            if refusal is None:
                await anyio.to_thread.run_sync(_delete, path)
                report.sent_batches += 1
                report.sent_records += len(item.lines)
                state.shipped_records += len(item.lines)
                continue
            if refusal.kind in ("retry", "pause"):  # the collector, not this batch: stop, keep the rest
                report.result, report.detail = "stopped", refusal.detail
                rest = files[n:]
                report.kept_batches += len(rest)
                report.kept_records += sum(map(_count, rest))
                break
            await anyio.to_thread.run_sync(_note_refusal, path, refusal, self.shipper.clock())
            report.keep(len(item.lines), refusal.detail)
        if report.sent_records:
            state.last_success = self.shipper.clock()
            await anyio.to_thread.run_sync(state.save, self.layout.state)
        if report.result == "nothing":
            report.result = "refused" if report.kept_batches else "ok"
        return report

    async def _send(self, sender: Sender, encoder: Encoder, item: _File) -> Outcome | None:
        """Every record of `item`, in batches; None when all were accepted, else the first refusal."""
        step = max(1, self.cfg.batch_max_records)
        for lo in range(0, len(item.parts), step):
            refusal = await self._send_range(sender, encoder, item.parts, lo, min(lo + step, len(item.parts)))
            if refusal is not None:
                return refusal
        return None

    async def _send_range(self, sender: Sender, encoder: Encoder, parts: list[Any], lo: int,
                          hi: int) -> Outcome | None:
        body = await anyio.to_thread.run_sync(encoder.body, parts[lo:hi])
        outcome = await sender.send(body)
        if outcome.kind == "ok":
            return None
        if outcome.kind == "too_large" and hi - lo > 1:
            mid = (lo + hi) // 2
            return (await self._send_range(sender, encoder, parts, lo, mid)
                    or await self._send_range(sender, encoder, parts, mid, hi))
        if outcome.kind == "partial":  # some records refused again: the file stays whole (dedup by id)
            outcome.detail = f"the collector rejected {outcome.rejected} of them again: {outcome.detail}"
        return outcome


def _count(path: Path) -> int:
    try:
        return len(path.read_bytes().splitlines())
    except OSError:
        return 0


def _load(path: Path, encoder: Encoder) -> _File | None:
    """In a worker thread: the file's lines, each parsed and encoded; `problem` when one cannot be."""
    try:
        raws = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    parts: list[Any] = []
    for raw in raws:
        record = Line("", 0, 0, raw).record()
        if record is None:
            return _File(path, raws, [], "a line that is not an audit record cannot be sent (kept for "
                                         "investigation)")
        try:
            parts.append(encoder.part(record, raw))
        except Exception as exc:  # noqa: BLE001 - the encoder's refusal of one record, whatever its type
            return _File(path, raws, [], f"a record the protocol cannot carry ({type(exc).__name__})")
    return _File(path, raws, parts, None)


def _delete(path: Path) -> None:
    path.unlink(missing_ok=True)  # the lines first: a leftover .json alone is never listed as a batch
    path.with_suffix(".json").unlink(missing_ok=True)


def _note_refusal(path: Path, outcome: Outcome, now: float) -> None:
    """Record the latest refusal in the batch's .json, for `audit status` (best effort)."""
    about = path.with_suffix(".json")
    try:
        meta = json.loads(about.read_bytes())
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    meta["last_retry"] = {"time": now, "status": outcome.status, "reason": outcome.detail}
    with contextlib.suppress(OSError):
        atomic_write(about, json.dumps(meta, indent=2).encode())
