"""The shipper: pushes every process's segments to the collector, at least once.

One process ships at a time (the ship lock, non-blocking: the others try again
at their next interval); it ships the segments of every process, live or dead,
oldest first. A cycle: take the lock, load the checkpoint, apply the disk quota,
then send batches (at most `batch_max_records` records and `batch_max_bytes`
bytes of spooled lines each) until the spool is drained or the collector fails;
after each accepted batch the state (counters) and then the checkpoint are
replaced atomically. Then delete the segments that are fully acknowledged and
sealed. A crash between "accepted" and "checkpoint written" re-sends that batch:
duplicates, with the same ids. Each batch carries, per writer instance, the chain head
the collector acknowledged before it (encode.py: `audit.chain.head`, `audit.seq.first/last`),
and the checkpoint keeps the new head once the batch is acknowledged. The checkpoint is
authenticated (checkpoint.py): one that is not is reset and reported
(`audit.checkpoint_reset`), and deletes nothing; a segment that vanished before
delivery is reported once (`audit.segment_vanished`).

Failures (see transport.py): retryable ones (429, every 5xx, no answer) keep
the batch and back off (Retry-After, else `push_interval` doubling up to
`max_retry_interval`, with jitter), and the wait is stored in state.json so
every process honours it; a server error is never the data's fault, so it
never sets a batch aside. A permanent refusal (a 4xx) sets the batch aside in rejected/ (fsync'd *before* the
records are acknowledged; if that copy cannot be written, nothing is
acknowledged and the cycle stops) with an `audit.batch_rejected` event and
moves on, so one bad batch never blocks or loops. A torn last line of a dead
writer, a line that is not a record and a record the protocol cannot carry are
never sent: they are counted and reported (`audit.torn_tail`,
`audit.corrupt_record`, `audit.unencodable_record`).

Credential, address and configuration failures (401, 403, 404, 405, 407, a
header that cannot be sent or resolved) *pause* shipping: nothing is set aside
(the fix is in the config, not in the data), one `audit.ship_failed` event is
recorded per distinct failure, and nothing is re-sent on a timer. Shipping
resumes when a process starts (its first cycle tries once), when `audit push`
runs (force), or when the resolved header values or the collector URL change
(an automatic cycle re-resolves them while paused; resolving is local).

Everything but awaiting the HTTP request runs in worker threads (reading,
parsing, encoding, gzip, fsyncs, deleting, importing httpx), so the shipper
inside `serve` never holds up the event loop that answers the client.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from mcp_proxy.audit.batch import Batch, next_batch
from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.housekeeping import clean
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.ship_accounting import Accounting, PushReport
from mcp_proxy.audit.ship_connection import PAUSE_HINT, Connection
from mcp_proxy.audit.verify import instance_of
from mcp_proxy.fsutil import FileLock

if TYPE_CHECKING:
    from mcp_proxy.audit.encode import Encoder
    from mcp_proxy.audit.transport import Sender
    from mcp_proxy.config import AuditConfig, SecretStore
    from mcp_proxy.paths import Paths

__all__ = ["PushReport", "Shipper", "run_shipper"]

log = logging.getLogger(__name__)

MAX_BATCHES_PER_CYCLE = 1000


class Shipper(Accounting, Connection):
    def __init__(self, paths: Paths, cfg: AuditConfig, store: SecretStore | None, *,
                 emit: Callable[[str, dict[str, Any]], Any] | None = None, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.layout = Layout(paths)
        self.cfg = cfg
        self.store = store
        self.emit_hook = emit
        self.clock = clock
        self.rand = rand
        self._started = clock()
        self._sender: Sender | None = None
        self._fingerprint: str | None = None  # of the collector and header values self._sender uses
        self._encoder: Encoder | None = None
        self._events: list[tuple[str, dict[str, Any]]] = []  # recorded on the event loop (see _run)
        self._last_logged: str | None = None
        self._dirty = False  # the state changed in ways not yet saved

    # -- the cycle -----------------------------------------------------------------
    async def push_once(self, *, force: bool = False, lock_wait: float = 0.0) -> PushReport:
        """One cycle. `force` ignores a stored backoff or pause (for `audit push`); `lock_wait` waits that
        long for another process's push to finish."""
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

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` in a worker thread; then the events it recorded go to the log, from the loop."""
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self._flush_events()

    async def _cycle(self, force: bool) -> PushReport:
        self._dirty = False
        state, checkpoint = await self._run(self._prepare)
        now = self.clock()
        if not force and now < state.not_before:
            return PushReport("waiting", retry_in=state.not_before - now, detail=state.last_detail or "")
        report = PushReport("nothing")
        try:
            await self._send_all(checkpoint, state, report, force)
        except OSError as exc:  # the checkpoint or state could not be written: try again later
            self._failed(state, report, "error", None, f"cannot write the audit shipping files in "
                         f"{self.layout.root} ({exc.strerror or type(exc).__name__}); free disk space or fix "
                         "the directory's permissions", self.backoff(state.consecutive_failures + 1))
        finally:
            with anyio.CancelScope(shield=True):
                await self._run(self._finish, checkpoint, state)
        self._log(report, state)
        return report

    def _prepare(self) -> tuple[ShipState, Checkpoint]:
        from mcp_proxy.audit.quota import enforce

        state = ShipState.load(self.layout.state)
        checkpoint = Checkpoint.load(self.layout.checkpoint)
        try:
            if checkpoint.problem:
                state.checkpoint_resets += 1
                state.checkpoint_reset_reason, state.checkpoint_reset_at = checkpoint.problem, self.clock()
                self._emit("audit.checkpoint_reset", {
                    "audit.reason": f"the shipping checkpoint {checkpoint.problem}; every record is sent again "
                                    "(same ids) and nothing is deleted on its word",
                    "audit.checkpoint.unauthenticated": checkpoint.unauthenticated})
                self._commit(checkpoint, state)
            if checkpoint.saw(self.layout.segments()):  # so that a segment deleted before delivery shows
                self._commit(checkpoint, state)
            drop = enforce(self.layout, self.cfg.max_disk_bytes, checkpoint, state)
            if drop.changed:
                self._commit(checkpoint, state)
        except OSError as exc:
            log.warning("could not apply the audit disk quota (%s)", exc.strerror or type(exc).__name__)
        else:
            if drop.records:
                self._emit("audit.dropped", drop.event_fields())
        return state, checkpoint

    def _finish(self, checkpoint: Checkpoint, state: ShipState) -> None:
        try:
            known = len(checkpoint.vanished)
            changed = clean(self.layout, checkpoint)
            for entry in checkpoint.vanished[known:]:
                self._emit("audit.segment_vanished", {"audit.segment_file": entry["segment"],
                                                      "audit.instance": entry["instance"],
                                                      "audit.offset": entry["acked"], "audit.reason": entry["detail"]})
            if changed or self._dirty:
                self._commit(checkpoint, state)
        except OSError as exc:
            log.warning("could not save the audit shipping checkpoint (%s)", exc.strerror or type(exc).__name__)

    async def _send_all(self, checkpoint: Checkpoint, state: ShipState, report: PushReport, force: bool) -> None:
        encoder = await self._get_encoder(state, report)
        if encoder is None:
            return
        for _ in range(MAX_BATCHES_PER_CYCLE):
            batch = await self._run(next_batch, self.layout, self.cfg, checkpoint, encoder, state.dropping)
            if batch is None:
                return
            if batch.local:
                if not await self._run(self._handle_local, batch, checkpoint, state, report):
                    return
                continue
            sender = await self._get_sender(state, report, force)
            if sender is None:
                return
            if not await self._deliver(sender, batch, 0, len(batch.lines), checkpoint, state, report):
                return

    async def _deliver(self, sender: Sender, batch: Batch, lo: int, hi: int, checkpoint: Checkpoint,
                       state: ShipState, report: PushReport) -> bool:
        """Send records lo..hi of `batch`; False stops the cycle."""
        assert self._encoder is not None
        chain = chain_of(batch, lo, hi, checkpoint)
        body = await anyio.to_thread.run_sync(self._encoder.body, batch.parts[lo:hi], chain)
        state.last_attempt = self.clock()
        self._dirty = True
        outcome = await sender.send(body)
        if outcome.kind == "too_large":
            if hi - lo > 1:
                mid = (lo + hi) // 2
                return (await self._deliver(sender, batch, lo, mid, checkpoint, state, report)
                        and await self._deliver(sender, batch, mid, hi, checkpoint, state, report))
            outcome.kind = "reject"
            outcome.detail = f"{outcome.detail} (a single record larger than the collector accepts)"
        if outcome.kind in ("ok", "partial"):
            return await self._run(self._accepted, batch, lo, hi, outcome, checkpoint, state, report)
        if outcome.kind == "reject":
            return await self._run(self._refused, batch, lo, hi, outcome, checkpoint, state, report)
        if outcome.kind == "pause":
            self._pause(state, report, outcome.status, outcome.detail, self._fingerprint)
            return False
        if outcome.retry_after is not None:
            delay = outcome.retry_after * (1 + 0.1 * self.rand())
        else:
            delay = self.backoff(state.consecutive_failures + 1)
        self._failed(state, report, "retrying", outcome.status, outcome.detail, delay)
        return False

    async def connect(self, state: ShipState, report: PushReport) -> tuple[Encoder, Sender] | None:
        """The encoder and sender a forced push would use (ship_rejected.py re-sends through them); None,
        with `report` saying why, when the protocol or the headers cannot be used."""
        encoder = await self._get_encoder(state, report)
        sender = await self._get_sender(state, report, True) if encoder is not None else None
        return (encoder, sender) if encoder is not None and sender is not None else None

    # -- events and logging ----------------------------------------------------------
    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        self._events.append((event, fields))

    def _flush_events(self) -> None:
        events, self._events = self._events, []
        if self.emit_hook is None:
            return
        for event, fields in events:
            try:
                self.emit_hook(event, fields)
            except Exception:  # reporting must never stop shipping
                log.exception("could not record the %s event", event)

    def _log(self, report: PushReport, state: ShipState) -> None:
        self._flush_events()
        if report.result in ("nothing", "waiting"):
            return
        if report.failed and report.result != self._last_logged:
            hint = f"; {PAUSE_HINT}" if report.result == "paused" else ""
            log.warning("audit push %s: %s%s", report.result, report.detail, hint)
        elif not report.failed and self._last_logged not in (None, "ok"):
            log.info("audit push works again: %d records sent", report.sent)
        self._last_logged = report.result

    def delay_after(self, report: PushReport) -> float:
        if report.retry_in is not None and report.retry_in > 0:
            return report.retry_in
        return self.cfg.push_interval * (0.9 + 0.2 * self.rand())

    async def aclose(self) -> None:
        self._flush_events()
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()


def chain_of(batch: Batch, lo: int, hi: int, checkpoint: Checkpoint) -> list[dict[str, Any] | None]:
    """Per record of batch[lo:hi], its instance's chain values for this batch: the head the collector holds
    (the hash of the instance's last acknowledged record, "" for none) and the seq of the instance's first
    and last record in the batch."""
    instances = [instance_of(line.segment) for line in batch.lines[lo:hi]]
    seqs: dict[str, list[Any]] = {}
    for instance, record in zip(instances, batch.records[lo:hi], strict=True):
        seqs.setdefault(instance, []).append(record.get("seq"))
    out: list[dict[str, Any] | None] = []
    for instance in instances:
        head = checkpoint.heads.get(instance)
        out.append({"audit.chain.head": head.hash if head is not None else "",
                    "audit.seq.first": seqs[instance][0], "audit.seq.last": seqs[instance][-1]})
    return out


async def run_shipper(paths: Paths, cfg: AuditConfig, store: SecretStore, stop: anyio.Event, *,
                      emit: Callable[[str, dict[str, Any]], Any] | None = None) -> None:
    """The background loop of `serve`. Never raises; never blocks a call (it only awaits I/O and threads)."""

    async def stopped_after(seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await stop.wait()
        return stop.is_set()

    # Start after the client's first requests, so that the shipper's imports do not slow start-up.
    if await stopped_after(min(1.0, cfg.push_interval)):
        return
    shipper = Shipper(paths, cfg, store, emit=emit)
    try:
        while True:
            try:
                report = await shipper.push_once()
            except Exception as exc:  # noqa: BLE001 - a bug or a disk error must not end serve
                # Only the type and where: an exception's text may quote data we must not log.
                tb = exc.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else ""
                log.warning("audit push failed (%s%s); trying again later", type(exc).__name__, where)
                report = PushReport("error", retry_in=shipper.backoff(2))
            if await stopped_after(shipper.delay_after(report)):
                return
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(1.0):
            await shipper.aclose()
