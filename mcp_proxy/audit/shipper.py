"""The shipper: pushes every process's segments to the collector, at least once.

One process ships at a time (the ship lock, non-blocking: the others try again
at their next interval); it ships the segments of every process, live or dead,
oldest first. A cycle: take the lock, load the checkpoint, apply the disk quota,
then send batches (at most `batch_max_records` records and `batch_max_bytes`
bytes of spooled lines each) until the spool is drained or the collector fails;
after each accepted batch the checkpoint is replaced atomically. Then delete the
segments that are fully acknowledged and sealed. A crash between "accepted" and
"checkpoint written" re-sends that batch: duplicates, with the same ids.

Failures (see transport.py): retryable ones keep the batch and back off
(Retry-After, else `push_interval` doubling up to `max_retry_interval`, with
jitter), and the wait is stored in state.json so every process honours it; a
permanent refusal sets the batch aside in rejected/ with an `audit.batch_rejected`
event and moves on, so one bad batch never blocks or loops. A torn last line of a
dead writer and a line that is not a record are never sent: they are counted
and reported (`audit.torn_tail`, `audit.corrupt_record`).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import anyio

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.housekeeping import clean, write_aside
from mcp_proxy.audit.layout import Layout, Liveness, Segment
from mcp_proxy.audit.reader import Line, read_chunk
from mcp_proxy.fsutil import FileLock

if TYPE_CHECKING:
    from mcp_proxy.audit.transport import Outcome, Sender
    from mcp_proxy.config import AuditConfig, SecretStore
    from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

MAX_BATCHES_PER_CYCLE = 1000


@dataclass
class PushReport:
    result: str  # "ok" | "nothing" | "busy" | "waiting" | "retrying" | "paused" | "rejected" | "error"
    sent: int = 0
    batches: int = 0
    set_aside: int = 0
    partial: int = 0  # records the collector rejected in partial successes
    detail: str = ""
    status: int | None = None
    retry_in: float | None = None

    @property
    def failed(self) -> bool:
        return self.result in ("retrying", "paused", "rejected", "error")


@dataclass
class Batch:
    lines: list[Line] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    corrupt: Line | None = None
    torn: tuple[Segment, int, int] | None = None  # (segment, offset of the torn bytes, how many)

    def ends(self, lines: list[Line] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines if lines is None else lines:
            out[line.segment] = max(out.get(line.segment, 0), line.end)
        return out


def _own_event(record: dict[str, Any]) -> bool:
    return str(record.get("event_name", "")).startswith("audit.")


class Shipper:
    def __init__(self, paths: "Paths", cfg: "AuditConfig", store: "SecretStore | None", *,
                 emit: Callable[[str, dict[str, Any]], Any] | None = None, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.layout = Layout(paths)
        self.cfg = cfg
        self.store = store
        self.emit_hook = emit
        self.clock = clock
        self.rand = rand
        self._sender: "Sender | None" = None
        self._header_values: list[str] = []
        self._last_logged: str | None = None

    # -- the cycle -----------------------------------------------------------------
    async def push_once(self, *, force: bool = False, lock_wait: float = 0.0) -> PushReport:
        """One cycle. `force` ignores a stored backoff (for `audit push`); `lock_wait` waits that long
        for another process's push to finish."""
        lock = FileLock(self.layout.ship_lock)
        deadline = time.monotonic() + lock_wait
        while not lock.acquire(blocking=False):
            if time.monotonic() >= deadline:
                return PushReport("busy", detail="another mcp-access-proxy process is pushing the audit log now")
            await anyio.sleep(0.1)
        try:
            return await self._cycle(force)
        finally:
            lock.release()

    async def _cycle(self, force: bool) -> PushReport:
        from mcp_proxy.audit.quota import enforce

        state = ShipState.load(self.layout.state)
        checkpoint = Checkpoint.load(self.layout.checkpoint)
        if checkpoint.problem:
            state.checkpoint_resets += 1
            self._emit("audit.checkpoint_reset", {"audit.reason": f"the shipping checkpoint {checkpoint.problem}; "
                                                                  "every record is sent again (same ids)"})
            checkpoint.save(self.layout.checkpoint)
        now = self.clock()
        drop = enforce(self.layout, self.cfg.max_disk_bytes, checkpoint, state)
        if drop.changed:
            checkpoint.save(self.layout.checkpoint)
        if drop.records:
            self._emit("audit.dropped", drop.event_fields())
        if not force and now < state.not_before:
            state.save(self.layout.state)
            return PushReport("waiting", retry_in=state.not_before - now, detail=state.last_detail or "")
        report = PushReport("nothing")
        try:
            await self._send_all(checkpoint, state, report)
        finally:
            clean(self.layout, checkpoint)
            checkpoint.save(self.layout.checkpoint)
            state.save(self.layout.state)
        self._log(report)
        return report

    async def _send_all(self, checkpoint: Checkpoint, state: ShipState, report: PushReport) -> None:
        for _ in range(MAX_BATCHES_PER_CYCLE):
            batch = self._next_batch(checkpoint)
            if batch is None:
                return
            if batch.corrupt is not None or batch.torn is not None:
                self._handle_local(batch, checkpoint, state)
                continue
            sender = await self._get_sender(state, report)
            if sender is None:
                return
            if not await self._deliver(sender, batch, batch.lines, checkpoint, state, report):
                return

    async def _deliver(self, sender: "Sender", batch: Batch, lines: list[Line], checkpoint: Checkpoint,
                       state: ShipState, report: PushReport) -> bool:
        """Send `lines` (a prefix-ordered part of `batch`); False stops the cycle."""
        from mcp_proxy.audit.encode import ENCODERS, ProtocolUnavailable

        index = {id(line): rec for line, rec in zip(batch.lines, batch.records)}
        items = [(index[id(line)], line.raw) for line in lines]
        try:
            body = ENCODERS[self.cfg.protocol](items)
        except ProtocolUnavailable as exc:
            self._failed(state, report, "paused", None, str(exc), self.cfg.max_retry_interval)
            return False
        now = self.clock()
        state.last_attempt = now
        outcome = await sender.send(body)
        if outcome.kind == "too_large":
            if len(lines) > 1:
                half = len(lines) // 2
                return (await self._deliver(sender, batch, lines[:half], checkpoint, state, report)
                        and await self._deliver(sender, batch, lines[half:], checkpoint, state, report))
            outcome.kind = "reject"
            outcome.detail = f"{outcome.detail} (a single record larger than the collector accepts)"
        split_reject = outcome.status == 413
        records = [rec for rec, _ in items]
        if outcome.kind in ("ok", "partial"):
            self._ack(checkpoint, batch.ends(lines))
            accepted = len(lines) - (min(outcome.rejected, len(lines)) if outcome.kind == "partial" else 0)
            state.shipped_records += accepted
            state.last_success, state.last_result, state.last_status = now, "ok", outcome.status
            state.consecutive_failures, state.not_before = 0, 0.0
            report.sent += accepted
            report.batches += 1
            state.last_detail = f"{report.sent} records accepted in {report.batches} batches"
            report.result = "ok" if report.result in ("nothing", "ok") else report.result
            if outcome.kind == "partial":
                self._partial(lines, records, outcome, state, report)
            return True
        if outcome.kind == "reject":
            self._set_aside(lines, records, "rejected", outcome.status, outcome.detail)
            self._ack(checkpoint, batch.ends(lines))
            state.rejected_batches += 1
            state.rejected_records += len(lines)
            state.last_result, state.last_status, state.last_detail = "rejected", outcome.status, outcome.detail
            report.set_aside += len(lines)
            report.result, report.status, report.detail = "rejected", outcome.status, outcome.detail
            if not all(_own_event(r) for r in records):
                self._emit("audit.batch_rejected", {
                    "audit.batch.records": len(lines), "http.response.status_code": outcome.status,
                    "audit.reason": outcome.detail, "audit.first_id": records[0]["id"],
                    "audit.last_id": records[-1]["id"]})
            # Only a record too big on its own lets the rest of its batch go on now; after any other
            # refusal the next batch waits for the next cycle, so a refusing collector is not hammered.
            return split_reject
        kind = "retrying" if outcome.kind == "retry" else "paused"
        if outcome.retry_after is not None:
            delay = outcome.retry_after * (1 + 0.1 * self.rand())
        else:
            delay = self._backoff(state.consecutive_failures + 1, cap_only=outcome.kind == "pause")
        self._failed(state, report, kind, outcome.status, outcome.detail, delay)
        return False

    def _failed(self, state: ShipState, report: PushReport, kind: str, status: int | None, detail: str,
                delay: float) -> None:
        state.consecutive_failures += 1
        state.not_before = self.clock() + delay
        state.last_result, state.last_status, state.last_detail = kind, status, detail
        report.result, report.status, report.detail, report.retry_in = kind, status, detail, delay

    def _backoff(self, failures: int, cap_only: bool = False) -> float:
        cap = self.cfg.max_retry_interval
        base = cap if cap_only else min(cap, self.cfg.push_interval * 2 ** min(failures - 1, 20))
        return base * (0.5 + 0.5 * self.rand())

    def _partial(self, lines: list[Line], records: list[dict[str, Any]], outcome: "Outcome", state: ShipState,
                 report: PushReport) -> None:
        rejected = min(outcome.rejected, len(lines))
        name = self._set_aside(lines, records, "partial", outcome.status,
                               f"the collector rejected {rejected} of these {len(lines)} records: {outcome.detail}")
        state.partial_rejected_records += rejected
        report.partial += rejected
        state.last_detail = f"{len(lines) - rejected} of {len(lines)} records accepted; {rejected} rejected: " \
                            f"{outcome.detail}"
        report.detail = state.last_detail
        if not all(_own_event(r) for r in records):
            self._emit("audit.partial_rejected", {
                "audit.batch.records": len(lines), "audit.rejected_records": rejected, "audit.reason": outcome.detail,
                "audit.first_id": records[0]["id"], "audit.last_id": records[-1]["id"], "audit.rejected_file": name})

    # -- batches -------------------------------------------------------------------
    def _next_batch(self, checkpoint: Checkpoint) -> Batch | None:
        segments = self.layout.segments()
        liveness = Liveness(self.layout)
        batch = Batch()
        budget_records, budget_bytes = self.cfg.batch_max_records, self.cfg.batch_max_bytes
        for seg in segments:
            start = checkpoint.acked.get(seg.name, 0)
            if start > seg.size:
                log.warning("the audit segment %s is shorter than its checkpoint; shipping it again", seg.name)
                start = checkpoint.acked[seg.name] = 0
            if start == seg.size:
                continue
            try:
                chunk = read_chunk(seg.path, start, max_records=budget_records, max_bytes=budget_bytes)
            except FileNotFoundError:
                continue
            for line in chunk.lines:
                record = line.record()
                if record is None:
                    if batch.lines:
                        return batch  # send what came before it first
                    return Batch(corrupt=line)
                batch.lines.append(line)
                batch.records.append(record)
                budget_records -= 1
                budget_bytes -= len(line.raw) + 1
            if budget_records <= 0 or budget_bytes <= 0:
                return batch
            if chunk.at_eof and chunk.tail and liveness.sealed(seg, segments):
                if batch.lines:
                    return batch
                return Batch(torn=(seg, chunk.end, len(chunk.tail)))
        return batch if batch.lines else None

    def _handle_local(self, batch: Batch, checkpoint: Checkpoint, state: ShipState) -> None:
        if batch.corrupt is not None:
            line = batch.corrupt
            name = self._write_aside([line.raw], "corrupt", None, "a line in the spool is not an audit record",
                                     [line.segment])
            self._ack(checkpoint, {line.segment: line.end})
            state.corrupt_records += 1
            self._emit("audit.corrupt_record", {"audit.segment_file": line.segment, "audit.offset": line.start,
                                                "audit.bytes": len(line.raw), "audit.rejected_file": name,
                                                "audit.reason": "a line of the spool is not a valid record (edited or "
                                                                "damaged); it was set aside, not sent"})
        elif batch.torn is not None:
            seg, offset, size = batch.torn
            self._ack(checkpoint, {seg.name: offset + size})
            state.torn_records += 1
            state.torn_bytes += size
            self._emit("audit.torn_tail", {"audit.segment_file": seg.name, "audit.offset": offset, "audit.bytes": size,
                                           "audit.reason": "the last record of a segment was cut off (its writer "
                                                           "was killed or the disk was full while writing it)"})
        checkpoint.save(self.layout.checkpoint)

    def _ack(self, checkpoint: Checkpoint, ends: dict[str, int]) -> None:
        for name, end in ends.items():
            checkpoint.acked[name] = max(checkpoint.acked.get(name, 0), end)
        checkpoint.save(self.layout.checkpoint)

    # -- set aside -----------------------------------------------------------------
    def _set_aside(self, lines: list[Line], records: list[dict[str, Any]], kind: str, status: int | None,
                   reason: str) -> str:
        return self._write_aside([line.raw for line in lines], kind, status, reason,
                                 sorted({line.segment for line in lines}),
                                 first_id=records[0].get("id"), last_id=records[-1].get("id"))

    def _write_aside(self, raws: list[bytes], kind: str, status: int | None, reason: str, segments: list[str],
                     **extra: Any) -> str:
        return write_aside(self.layout, raws, kind=kind, status=status, reason=reason, segments=segments,
                           protocol=self.cfg.protocol, now=self.clock(), **extra)

    # -- helpers ---------------------------------------------------------------------
    async def _get_sender(self, state: ShipState, report: PushReport) -> "Sender | None":
        if self._sender is not None:
            return self._sender
        from mcp_proxy.audit.redact import Redactor
        from mcp_proxy.audit.transport import Sender, resolve_headers
        from mcp_proxy.config import SecretError

        try:
            headers = await anyio.to_thread.run_sync(resolve_headers, self.cfg.headers, self.store)
        except SecretError as exc:
            self._failed(state, report, "paused", None, f"audit.headers: {exc}", self.cfg.max_retry_interval)
            return None
        redactor = Redactor()
        redactor.set_secrets(headers.values())
        assert self.cfg.collector is not None
        self._sender = Sender(self.cfg.collector, self.cfg.protocol, headers, use_gzip=self.cfg.gzip,
                              scrub=redactor.scrub, clock=self.clock)
        return self._sender

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        if self.emit_hook is None:
            return
        try:
            self.emit_hook(event, fields)
        except Exception:  # noqa: BLE001 - reporting must never stop shipping
            log.exception("could not record the %s event", event)

    def _log(self, report: PushReport) -> None:
        if report.result in ("nothing", "waiting"):
            return
        if report.failed and report.result != self._last_logged:
            log.warning("audit push %s: %s", report.result, report.detail)
        elif not report.failed and self._last_logged not in (None, "ok"):
            log.info("audit push works again: %d records sent", report.sent)
        self._last_logged = report.result

    def delay_after(self, report: PushReport) -> float:
        if report.retry_in is not None and report.retry_in > 0:
            return report.retry_in
        return self.cfg.push_interval * (0.9 + 0.2 * self.rand())

    async def aclose(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()


async def run_shipper(paths: "Paths", cfg: "AuditConfig", store: "SecretStore", stop: anyio.Event, *,
                      emit: Callable[[str, dict[str, Any]], Any] | None = None) -> None:
    """The background loop of `serve`. Never raises; never blocks a call (it only awaits I/O)."""

    async def stopped_after(seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await stop.wait()
        return stop.is_set()

    # Start after the client's first requests, so that importing httpx does not slow start-up.
    if await stopped_after(min(1.0, cfg.push_interval)):
        return
    shipper = Shipper(paths, cfg, store, emit=emit)
    try:
        while True:
            try:
                report = await shipper.push_once()
            except Exception as exc:  # noqa: BLE001 - a bug or a disk error must not end serve
                log.warning("audit push failed (%s: %s); trying again later", type(exc).__name__, exc,
                            exc_info=log.isEnabledFor(logging.DEBUG))
                report = PushReport("error", retry_in=shipper._backoff(2))
            if await stopped_after(shipper.delay_after(report)):
                return
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await shipper.aclose()
