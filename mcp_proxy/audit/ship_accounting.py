"""What the collector's answer, or a line handled locally, means for the spool: counters, set-aside copies,
the checkpoint. Runs in the shipper's worker thread.

Order matters for a kill at any moment: a set-aside copy is written (fsync'd) before the records it
keeps are acknowledged, and the state (counters) is saved before the checkpoint it accounts for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_proxy.audit.batch import Batch
from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.housekeeping import write_aside
from mcp_proxy.audit.reader import Line

if TYPE_CHECKING:
    from mcp_proxy.audit.layout import Layout
    from mcp_proxy.audit.transport import Outcome
    from mcp_proxy.config import AuditConfig

log = logging.getLogger(__name__)


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


def _own_event(record: dict[str, Any]) -> bool:
    return str(record.get("event_name", "")).startswith("audit.")


class Accounting:
    """The part of the Shipper that changes the spool's bookkeeping."""

    layout: Layout
    cfg: AuditConfig
    clock: Callable[[], float]
    rand: Callable[[], float]
    _dirty: bool

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def _commit(self, checkpoint: Checkpoint, state: ShipState) -> None:
        """The state (counters) first, then the checkpoint: a count is never lost to a kill in between."""
        state.save(self.layout.state)
        checkpoint.save(self.layout.checkpoint)

    def _accepted(self, batch: Batch, lo: int, hi: int, outcome: Outcome, checkpoint: Checkpoint,
                  state: ShipState, report: PushReport) -> bool:
        lines, records = batch.lines[lo:hi], batch.records[lo:hi]
        rejected = min(outcome.rejected, len(lines)) if outcome.kind == "partial" else 0
        name = None
        if rejected:
            name = self._aside(state, report, lines, records, "partial", outcome.status,
                               f"the collector rejected {rejected} of these {len(lines)} records: {outcome.detail}")
            if name is None:
                return False
        now = self.clock()
        state.shipped_records += len(lines) - rejected
        state.last_success, state.last_result, state.last_status = now, "ok", outcome.status
        state.consecutive_failures, state.not_before = 0, 0.0
        state.paused_key = state.paused_url = state.paused_fingerprint = state.paused_since = None
        report.sent += len(lines) - rejected
        report.batches += 1
        state.last_detail = f"{report.sent} records accepted in {report.batches} batches"
        report.result = "ok" if report.result in ("nothing", "ok") else report.result
        if rejected:
            state.partial_rejected_records += rejected
            report.partial += rejected
            state.last_detail = (f"{len(lines) - rejected} of {len(lines)} records accepted; {rejected} rejected: "
                                 f"{outcome.detail}")
            report.detail = state.last_detail
            if not all(_own_event(r) for r in records):
                self._emit("audit.partial_rejected", {
                    "audit.batch.records": len(lines), "audit.rejected_records": rejected,
                    "audit.reason": outcome.detail, "audit.first_id": records[0]["id"],
                    "audit.last_id": records[-1]["id"], "audit.rejected_file": name})
        self._ack(checkpoint, state, batch.ends(lines), lines, records)
        return True

    def _refused(self, batch: Batch, lo: int, hi: int, outcome: Outcome, checkpoint: Checkpoint,
                 state: ShipState, report: PushReport) -> bool:
        lines, records = batch.lines[lo:hi], batch.records[lo:hi]
        if self._aside(state, report, lines, records, "rejected", outcome.status, outcome.detail) is None:
            return False
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
        self._ack(checkpoint, state, batch.ends(lines), lines, records)
        # Only a record too big on its own lets the rest of its batch go on now; after any other
        # refusal the next batch waits for the next cycle, so a refusing collector is not hammered.
        return outcome.status == 413

    def _handle_local(self, batch: Batch, checkpoint: Checkpoint, state: ShipState, report: PushReport) -> bool:
        if batch.corrupt is not None or batch.unencodable is not None:
            line, why = (batch.corrupt, "") if batch.corrupt is not None else batch.unencodable  # type: ignore[misc]
            kind = "corrupt" if batch.corrupt is not None else "unencodable"
            reason = ("a line in the spool is not an audit record" if kind == "corrupt" else
                      f"the record cannot be sent as {self.cfg.protocol}: {why}")
            name = self._aside(state, report, [line], None, kind, None, reason)
            if name is None:
                return False
            fields: dict[str, Any] = {"audit.segment_file": line.segment, "audit.offset": line.start,
                                      "audit.bytes": len(line.raw), "audit.rejected_file": name}
            if kind == "corrupt":
                state.corrupt_records += 1
                fields["audit.reason"] = ("a line of the spool is not a valid record (edited or damaged); it was "
                                          "set aside, not sent")
            else:
                state.unencodable_records += 1
                fields["audit.reason"] = f"{reason}; it was set aside, not sent"
            self._emit(f"audit.{kind}_record", fields)
            self._ack(checkpoint, state, {line.segment: line.end}, [line], [None])
        elif batch.torn is not None:
            seg, offset, size = batch.torn
            state.torn_records += 1
            state.torn_bytes += size
            self._emit("audit.torn_tail", {"audit.segment_file": seg.name, "audit.offset": offset, "audit.bytes": size,
                                           "audit.reason": "the last record of a segment was cut off (its writer "
                                                           "was killed or the disk was full while writing it)"})
            self._ack(checkpoint, state, {seg.name: offset + size})
        return True

    def _ack(self, checkpoint: Checkpoint, state: ShipState, ends: dict[str, int], lines: Sequence[Line] = (),
             records: Sequence[dict[str, Any] | None] = ()) -> None:
        """Acknowledge up to `ends`; `lines` (with their `records`, None for a line that is not one) become
        their instances' chain heads, which the next batch carries to the collector (encode.py)."""
        for name, end in ends.items():
            checkpoint.acked[name] = max(checkpoint.acked.get(name, 0), end)
        for i, line in enumerate(lines):
            record = records[i] if i < len(records) else None
            checkpoint.advance(line.segment, record.get("seq") if record else None, line.raw, line.end)
        self._commit(checkpoint, state)

    def _aside(self, state: ShipState, report: PushReport, lines: list[Line], records: list[dict[str, Any]] | None,
               kind: str, status: int | None, reason: str) -> str | None:
        """Keep a copy in rejected/ (fsync'd); None when it could not be written (then stop, ack nothing)."""
        extra = {"first_id": records[0].get("id"), "last_id": records[-1].get("id")} if records else {}
        try:
            return write_aside(self.layout, [line.raw for line in lines], kind=kind, status=status, reason=reason,
                               segments=sorted({line.segment for line in lines}), protocol=self.cfg.protocol,
                               now=self.clock(), **extra)
        except OSError as exc:
            detail = (f"could not keep a copy of {len(lines)} records to set aside ({kind}) in "
                      f"{self.layout.rejected} ({exc.strerror or type(exc).__name__}); they stay in the spool, "
                      "unacknowledged, and are tried again later; free disk space or fix the directory's "
                      "permissions")
            log.error("%s", detail)
            self._failed(state, report, "error", status, detail, self.backoff(state.consecutive_failures + 1))
            return None

    def _failed(self, state: ShipState, report: PushReport, kind: str, status: int | None, detail: str,
                delay: float) -> None:
        self._dirty = True
        state.consecutive_failures += 1
        state.not_before = self.clock() + delay
        state.last_result, state.last_status, state.last_detail = kind, status, detail
        report.result, report.status, report.detail, report.retry_in = kind, status, detail, delay

    def backoff(self, failures: int) -> float:
        cap = self.cfg.max_retry_interval
        return min(cap, self.cfg.push_interval * 2 ** min(failures - 1, 20)) * (0.5 + 0.5 * self.rand())
