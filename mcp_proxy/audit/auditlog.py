"""AuditLog: the object the server appends records to.

    audit = AuditLog.open(paths, config.audit, context, secret_values=fn,
                          argument_rules=rules)      # (redact, hash) field names per tool key
    await audit.append("mcp.tool.call", fields)      # durable (per the setting) when it returns
    audit.append_nowait("policy.activated", fields)  # the same from synchronous code
    audit.add_secret(access_token)                   # redact a value obtained at run time from now on
    await audit.close_unfinished()                   # serve's background: close calls dead processes left open
    audit.close()                                    # flush and fsync; on stdin EOF and SIGTERM

`append` never raises and never touches the network. The configured secret
values (for redaction) are resolved once in a thread started at open; a record
appended before they are known waits for them (`append` in a worker thread,
so the event loop keeps running; `append_nowait` holds the record in memory
and the resolver writes it, in order, as soon as they are known). When the spool
cannot be written (disk full, permissions), records are kept in memory (up to
MEMORY_BACKLOG) and written when writing works again; what did not fit is
counted in an `audit.dropped` record. The same happens while this process does not
hold its writer lock (spool.py): it never writes its segment without it.

The disk quota is checked in a background thread (every `max_disk_bytes / 32`
bytes written, at least 64 KiB), never inside `append`: the check lists the
directory and may read segments and fsync the checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.record import RESERVED, AuditContext, new_id, rfc3339
from mcp_proxy.audit.redact import Redactor, resolve_secret_values
from mcp_proxy.audit.spool import SegmentWriter, WriterLockUnavailable
from mcp_proxy.errors import AuditError

if TYPE_CHECKING:
    from mcp_proxy.audit.unfinished import SweepThread
    from mcp_proxy.config import AuditConfig
    from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)


class AuditUnavailable(AuditError):
    """A record that must be on disk first could not be written; the text says what to do."""

    error_type = "audit_unavailable"

CLOSE_UNFINISHED_AFTER = 1.0  # seconds after start-up before the sweep of unfinished calls begins
SECRET_WAIT = 5.0  # seconds a record waits for the secret values before it is redacted without them
MEMORY_BACKLOG = 10000
MAX_NOTES = 50


# The policy's (redact, hash) argument field names for a tool key: the policy's per-tool audit rules.
ArgumentRules = Callable[[str], tuple[tuple[str, ...], tuple[str, ...]]]


class AuditLog:
    def __init__(self, layout: Layout, cfg: AuditConfig, context: AuditContext, *,
                 argument_rules: ArgumentRules | None = None, clock: Callable[[], float] = time.time) -> None:
        self.layout = layout
        self.cfg = cfg
        self.context = context
        self.clock = clock
        self.argument_rules = argument_rules
        self.redactor = Redactor(cfg.redact_fields, cfg.hash_fields)
        # A segment is at most a quarter of the quota, so the quota can always drop whole old segments.
        max_bytes = max(4096, min(cfg.segment_max_bytes, cfg.max_disk_bytes // 4))
        self.writer = SegmentWriter(layout, context.instance_id, max_bytes=max_bytes, durability=cfg.durability,
                                    group_commit_s=cfg.group_commit_ms / 1000.0, clock=clock)
        self._fsync = cfg.durability == "fsync"
        self._ready = threading.Event()
        self._settle_lock = threading.Lock()
        self._pending: list[tuple[str, dict[str, Any], float, dict[str, Any], str]] = []
        self._backlog: deque[tuple[str, str]] = deque()
        self._lost = 0
        self._write_error_logged = False
        self._lock = threading.RLock()  # the backlog and the quota counter (the quota thread appends too)
        self._since_quota = 0
        self._quota_every = max(65536, cfg.max_disk_bytes // 32)
        self._quota = _QuotaThread(self)
        self._unfinished: SweepThread | None = None
        self._closed = False
        self._gap_refused = 0  # calls refused because their records could not be written, since the last gap
        self._gap_first = 0.0
        self._gap_last = 0.0

    @classmethod
    def open(cls, paths: Paths, cfg: AuditConfig, context: AuditContext, *,
             secret_values: Callable[[], list[str]] | None = None, argument_rules: ArgumentRules | None = None,
             clock: Callable[[], float] = time.time) -> AuditLog:
        audit = cls(Layout(paths), cfg, context, argument_rules=argument_rules, clock=clock)
        audit.writer.start()
        if secret_values is None:
            audit._settle([])
        else:
            threading.Thread(target=audit._resolve, args=(secret_values,), name="audit-secrets", daemon=True).start()
        return audit

    # -- secrets -------------------------------------------------------------------
    def _resolve(self, source: Callable[[], list[str]]) -> None:
        try:
            values = resolve_secret_values(source)
        except Exception as exc:  # noqa: BLE001 - redaction by key names and token shapes still applies
            log.warning("could not read the configured secrets for audit redaction (%s); records are redacted "
                        "by key names and token shapes only", type(exc).__name__)
            values = []
        self._settle(values)

    def _settle(self, values: list[str] | None) -> None:
        """Use these secret values from now on; write the records that waited for them, in order."""
        with self._settle_lock:
            if values is not None:
                self.redactor.set_secrets(values)
            if self._ready.is_set():
                return
            pending, self._pending = self._pending, []
            for event, fields, ts, ctx, rid in pending:
                self._append_now(event, fields, ts, ctx, rid)
            self._ready.set()

    def _wait_ready(self, timeout: float = SECRET_WAIT) -> None:
        if not self._ready.wait(timeout):
            log.warning("the configured secrets were not readable within %.0f s; audit records are redacted by "
                        "key names and token shapes until they are", timeout)
            self._settle(None)

    def add_secret(self, value: str) -> None:
        """Redact `value` (an OAuth access or refresh token obtained at run time) from every record made
        from now on. Thread-safe and cheap; values shorter than 8 characters are ignored."""
        self.redactor.add_secret(value)

    # -- appending -----------------------------------------------------------------
    async def append(self, event_name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Append a record; it is written (group) or on disk (fsync) when this returns."""
        if not self._ready.is_set():
            await anyio.to_thread.run_sync(self._wait_ready)
        if self._gap_refused:
            self._close_gap()
        record, number = self._append_now(event_name, fields)
        if self._fsync and number:
            try:
                await anyio.to_thread.run_sync(self.writer.sync_upto, number)
            except OSError as exc:
                self._write_failed(exc)
        return record

    async def append_required(self, event_name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Append a record that must be on disk before what it records may happen (a call's started record,
        a denial): raises AuditUnavailable when it could not be written (disk full, read-only, quota), and
        counts the refusal. The first record that can be written after refusals is preceded by one
        `audit.gap` record saying how many calls were refused and when."""
        if not self._ready.is_set():
            await anyio.to_thread.run_sync(self._wait_ready)
        if self._gap_refused:
            self._close_gap()  # the gap goes on record first, once writing works again
        # Not kept in memory when it cannot be written: the call it records does not happen (the gap counts it).
        record, number = self._append_now(event_name, fields, keep=False)
        written = number > 0
        if written and self._fsync:
            try:
                await anyio.to_thread.run_sync(self.writer.sync_upto, number)
            except OSError as exc:
                self._write_failed(exc)
                written = False
        if not written:
            self._note_refused()
            raise AuditUnavailable(
                "The proxy did not make this call because it cannot write its audit log (the disk is full or "
                "read-only, or a quota is reached), and every call must be on record before it runs. Free disk "
                "space or fix the audit directory, then call again; `mcp-access-proxy doctor` checks it.")
        return record

    def _note_refused(self) -> None:
        now = self.clock()
        with self._lock:
            self._gap_refused += 1
            self._gap_first = self._gap_first or now
            self._gap_last = now

    def _close_gap(self) -> None:
        """Write the `audit.gap` record of the refusals so far; they stay counted if it cannot be written."""
        with self._lock:
            refused, first, last = self._gap_refused, self._gap_first, self._gap_last
        fields = {"audit.gap.refused_calls": refused, "audit.gap.first": rfc3339(first),
                  "audit.gap.last": rfc3339(last)}
        _record, number = self._append_now("audit.gap", fields, keep=False)
        if not number:
            return
        with self._lock:
            self._gap_refused -= refused
            if not self._gap_refused:
                self._gap_first = self._gap_last = 0.0
        log.warning("the audit log can be written again; %d call(s) were refused while it could not", refused)

    @property
    def refused_calls(self) -> int:
        """Calls refused since the audit log last could not be written (0 when it is writable again)."""
        return self._gap_refused

    def append_nowait(self, event_name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The same as `append`, for synchronous code (policy events, access requests)."""
        if not self._ready.is_set():
            with self._settle_lock:
                if not self._ready.is_set():
                    ts = self.clock()
                    rid = new_id(int(ts * 1e9))
                    self._pending.append((event_name, dict(fields), ts, self.context.fields(), rid))
                    return {"id": rid, "time": rfc3339(ts), "event_name": event_name}
        record, number = self._append_now(event_name, fields)
        if self._fsync and number:
            try:
                self.writer.sync_upto(number)
            except OSError as exc:
                self._write_failed(exc)
        return record

    def append_on_disk(self, event_name: str, fields: dict[str, Any]) -> bool:
        """For worker threads, never the event loop: append, then fsync whatever the durability setting.
        True once the record is on disk; False when it is kept in memory (written later, if ever)."""
        if not self._ready.is_set():
            self._wait_ready()
        _, number = self._append_now(event_name, fields)
        if not number:
            return False
        try:
            self.writer.sync_upto(number)
        except OSError as exc:
            self._write_failed(exc)
            return False
        return True

    # -- calls that processes gone left open -----------------------------------------
    async def close_unfinished(self, delay: float = CLOSE_UNFINISHED_AFTER) -> None:
        """`serve`'s background task: after `delay` (start-up answers first), close in a daemon thread the
        calls that processes killed earlier left open (unfinished.py). Returns once the thread is started;
        `close` stops it."""
        await anyio.sleep(delay)
        from mcp_proxy.audit.unfinished import SweepThread

        with self._lock:
            if self._closed or self._unfinished is not None:
                return
            self._unfinished = SweepThread(self.layout, self.context.instance_id, self.append_on_disk)
        self._unfinished.start()

    def _build(self, event: str, fields: dict[str, Any], ts: float, ctx: dict[str, Any],
               rid: str) -> tuple[str, str, dict[str, Any]]:
        notes: list[str] = []
        record: dict[str, Any] = {"time": rfc3339(ts), "event_name": event, **ctx}
        if event == "mcp.tool.call":
            record["gen_ai.operation.name"] = "execute_tool"
        for key, value in fields.items():
            if value is None or key in RESERVED:
                continue
            if key == "arguments":
                record["gen_ai.tool.call.arguments"] = self.redactor.arguments(value, self._rules(fields), notes)
            else:
                record[key] = self.redactor.fields(value, key, notes)
        if notes:
            record["audit.redactions"] = list(dict.fromkeys(notes))[:MAX_NOTES]
        try:
            body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:  # a non-finite float the redactor did not see (a context field): strict JSON always
            record = _finite(record)
            body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        return f'"id":"{rid}"', body[1:-1], record

    def _rules(self, fields: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        rules, upstream, tool = self.argument_rules, fields.get("upstream"), fields.get("upstream.tool")
        if rules is None or not upstream or not tool:
            return None
        try:
            return rules(f"{upstream}.{tool}")
        except Exception:  # fall back to the config's rules and the built-in detection
            log.exception("could not read the policy's argument rules for %s.%s", upstream, tool)
            return None

    def _append_now(self, event: str, fields: dict[str, Any], ts: float | None = None,
                    ctx: dict[str, Any] | None = None, rid: str | None = None,
                    keep: bool = True) -> tuple[dict[str, Any], int]:
        ts = self.clock() if ts is None else ts
        rid = rid or new_id(int(ts * 1e9))
        head, body, record = self._build(event, fields, ts, self.context.fields() if ctx is None else ctx, rid)
        record = {"id": rid, **record}
        with self._lock:
            if self._backlog and not self._drain():
                if keep:
                    self._keep(head, body)
                return record, 0
            try:
                number, seq, index, prev = self.writer.write(head, body)
            except OSError as exc:
                self._write_failed(exc)
                if keep:
                    self._keep(head, body)
                return record, 0
            self._since_quota += len(head) + len(body)
            due = self._since_quota >= self._quota_every
            if due:
                self._since_quota = 0
        record.update({"seq": seq, "audit.segment": index, "prev_hash": prev})
        if due:
            self._quota.request()
        return record, number

    # -- failures and the quota ----------------------------------------------------
    def _write_failed(self, exc: OSError) -> None:
        if self._write_error_logged:
            return
        self._write_error_logged = True
        if isinstance(exc, WriterLockUnavailable):
            log.error("cannot take this process's audit writer lock: %s; records are kept in memory (up to %d) "
                      "and written once it can be taken (writing without it would let a shipper delete the "
                      "segment while it grows); keep %s on a local disk that supports file locks",
                      exc.strerror, MEMORY_BACKLOG, self.layout.locks)
            return
        log.error("cannot write the audit log in %s (%s); records are kept in memory and written when it "
                  "works again; free disk space or fix the directory's permissions",
                  self.layout.spool, exc.strerror or type(exc).__name__)

    def _keep(self, head: str, body: str) -> None:
        if len(self._backlog) >= MEMORY_BACKLOG:
            self._backlog.popleft()
            self._lost += 1
        self._backlog.append((head, body))

    def _drain(self) -> bool:
        while self._backlog:
            head, body = self._backlog[0]
            try:
                self.writer.write(head, body)
            except OSError:
                return False
            self._backlog.popleft()
        self._write_error_logged = False
        if self._lost:
            lost, self._lost = self._lost, 0
            log.warning("the audit log is writable again; %d records that did not fit in memory were lost", lost)
            self._append_now("audit.dropped", {"audit.dropped.records": lost, "audit.reason":
                                               "the audit spool was not writable and the in-memory backlog "
                                               f"({MEMORY_BACKLOG} records) overflowed"})
        return True

    def check_quota(self) -> None:
        """In the quota thread: enforce the quota if over it and nobody else is shipping."""
        try:
            from mcp_proxy.audit.quota import enforce_if_over

            report = enforce_if_over(self.layout, self.cfg, own=self.writer)
        except OSError as exc:
            log.warning("could not check the audit disk quota (%s)", exc.strerror)
            report = None
        if report is not None:
            _, number = self._append_now("audit.dropped", report.event_fields())
            if self._fsync and number:
                try:
                    self.writer.sync_upto(number)
                except OSError as exc:
                    self._write_failed(exc)

    # -- closing -------------------------------------------------------------------
    def close(self) -> None:
        """Write what is pending, fsync, and release the writer lock. Waits at most ~2 s for a quota check under
        way (so that its audit.dropped record is written); nothing is written after this returns."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            sweep = self._unfinished
        if sweep is not None:
            sweep.stop(timeout=1.0)  # what it closed is noted; what it did not, the next start closes
        if not self._ready.is_set():
            self._wait_ready(1.0)
        self._quota.stop(timeout=2.0)  # a check under way finishes (its audit.dropped record included)
        with self._lock:
            if self._backlog:
                self._drain()
        self.writer.close()


class _QuotaThread:
    """Runs AuditLog.check_quota in a daemon thread, started on first use, once per request (requests
    that arrive while a check runs make one more check after it)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._cv = threading.Condition()
        self._pending = False
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        with self._cv:
            if self._stopping:
                return
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-quota", daemon=True)
                self._thread.start()
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stopping:
                    self._cv.wait()
                if not self._pending:
                    return
                self._pending, self._busy = False, True
            try:
                self.audit.check_quota()
            except Exception:  # the quota thread must survive a bug to keep checking
                log.exception("the audit disk quota check failed")
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def stop(self, timeout: float) -> None:
        """Let a pending or running check finish (up to `timeout`), then end the thread."""
        with self._cv:
            self._cv.wait_for(lambda: not self._pending and not self._busy, timeout)
            self._stopping = True
            self._cv.notify_all()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
