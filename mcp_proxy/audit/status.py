"""What `audit status` and `doctor` report: backlog, last push, set-aside and dropped data, the chain.

Read-only: nothing here changes the spool, the checkpoint or the state.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from mcp_proxy.audit.checkpoint import Checkpoint, ShipState
from mcp_proxy.audit.layout import Layout, Liveness
from mcp_proxy.audit.reader import count_from, read_chunk
from mcp_proxy.audit.verify import verify

if TYPE_CHECKING:
    from pathlib import Path

    from mcp_proxy.config import AuditConfig
    from mcp_proxy.paths import Paths

OK, WARN, FAIL = "ok", "warn", "FAIL"
STALE_BACKLOG = 24 * 3600.0  # an unsent record older than this is worth a FAIL in doctor


def when(ts: float | None, now: float | None = None) -> str:
    if not ts:
        return "never"
    now = time.time() if now is None else now
    age = max(0.0, now - ts)
    ago = f"{age:.0f} s" if age < 120 else f"{age / 60:.0f} min" if age < 7200 else f"{age / 3600:.1f} h"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts)) + f" ({ago} ago)"


def _record_time(raw: bytes) -> float | None:
    from mcp_proxy.audit.record import unix_nanos

    try:
        return unix_nanos(json.loads(raw)["time"]) / 1e9
    except (ValueError, KeyError, TypeError):
        return None


RESEND_COMMAND = "mcp-access-proxy audit push --retry-rejected"


def set_aside(layout: Layout) -> dict[str, Any]:
    """What rejected/ holds: batches, records, when the oldest was set aside, the latest refusal's reason
    (a re-send's `last_retry` when there was one, since it is the current cause) and how to re-send."""
    batches = records = 0
    oldest: float | None = None
    latest: tuple[float, str | None, int | None] | None = None
    kinds: dict[str, int] = {}
    for path in layout.rejected_files():
        try:
            count = len(path.read_bytes().splitlines())
        except FileNotFoundError:
            continue
        meta = _meta(path)
        batches += 1
        records += count
        kind = str(meta.get("kind") or "unknown")
        kinds[kind] = kinds.get(kind, 0) + 1
        at = meta.get("time")
        if isinstance(at, (int, float)) and (oldest is None or at < oldest):
            oldest = float(at)
        last = meta.get("last_retry")
        refusal: dict[str, Any] = last if isinstance(last, dict) else meta
        at = refusal.get("time")
        if isinstance(at, (int, float)) and (latest is None or at >= latest[0]):
            reason, status = refusal.get("reason"), refusal.get("status")
            latest = (float(at), reason if isinstance(reason, str) else None,
                      status if isinstance(status, int) else None)
    return {"batches": batches, "records": records, "oldest": oldest, "kinds": kinds,
            "reason": latest[1] if latest else None, "status": latest[2] if latest else None,
            "command": RESEND_COMMAND}


def _meta(path: Path) -> dict[str, Any]:
    """The .json beside a set-aside batch (write_aside); {} when it is missing or unreadable."""
    try:
        meta = json.loads(path.with_suffix(".json").read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def set_aside_text(a: dict[str, Any], now: float | None = None) -> str:
    """One line for `audit status` and `doctor`."""
    reason = a["reason"] or "no reason recorded"
    return (f"{a['records']} records in {a['batches']} batches set aside since {when(a['oldest'], now)}; "
            f"latest reason: {reason}; fix the cause, then run `{a['command']}`")


def collect(paths: Paths, cfg: AuditConfig, *, chain: bool = True) -> dict[str, Any]:
    layout = Layout(paths)
    checkpoint = Checkpoint.load(layout.checkpoint, repair=False)  # before listing: see verify()
    state = ShipState.load(layout.state)
    segments = layout.segments()
    liveness = Liveness(layout)
    backlog_records = backlog_bytes = 0
    oldest: float | None = None
    for seg in segments:
        start = min(checkpoint.acked.get(seg.name, 0), seg.size)
        if start >= seg.size:
            continue
        try:
            records, size, _ = count_from(seg.path, start)
            first = read_chunk(seg.path, start, max_records=1).lines
        except FileNotFoundError:
            continue
        backlog_records += records
        backlog_bytes += size
        ts = _record_time(first[0].raw) if first else None
        if ts is not None and (oldest is None or ts < oldest):
            oldest = ts
    rejected = layout.rejected_files()
    total = sum(s.size for s in segments) + sum(p.stat().st_size for p in rejected if p.exists())
    out: dict[str, Any] = {
        "spool": str(layout.spool), "collector": cfg.collector, "protocol": cfg.protocol,
        "durability": cfg.durability, "segments": len(segments),
        "writers_alive": sum(1 for i in {s.instance for s in segments} if liveness.alive(i)),
        "disk_bytes": total, "quota_bytes": cfg.max_disk_bytes,
        "backlog_records": backlog_records, "backlog_bytes": backlog_bytes, "oldest_unsent": oldest,
        "last_attempt": state.last_attempt, "last_success": state.last_success, "last_result": state.last_result,
        "last_status": state.last_status, "last_detail": state.last_detail,
        "retry_not_before": state.not_before or None, "shipped_records": state.shipped_records,
        "rejected_files": len(rejected), "rejected_batches": state.rejected_batches,
        "rejected_records": state.rejected_records, "partial_rejected_records": state.partial_rejected_records,
        "dropped_records": state.dropped_records, "dropped_bytes": state.dropped_bytes,
        "torn_records": state.torn_records, "corrupt_records": state.corrupt_records,
        "unencodable_records": state.unencodable_records,
        "checkpoint_resets": state.checkpoint_resets, "checkpoint_problem": checkpoint.problem,
        "checkpoint_authentic": not checkpoint.unauthenticated,
        "checkpoint_last_reset": ({"reason": state.checkpoint_reset_reason, "at": state.checkpoint_reset_at}
                                  if state.checkpoint_reset_reason else None),
        "chain_heads": {instance: {"segment": h.index, "seq": h.seq, "hash": h.hash}
                        for instance, h in sorted(checkpoint.heads.items())},
        "paused": state.pause_text(), "set_aside": set_aside(layout),
    }
    if chain:
        report = verify(layout, segments, checkpoint, state.dropped_segments)
        out["chain"] = {"ok": report.ok, "records": report.records, "torn_tails": report.torn_tails,
                        "problems": [str(p) for p in report.problems[:20]], "problem_count": len(report.problems),
                        "gaps": [{"instance": p.instance, "kind": p.kind, "segment": p.segment, "detail": p.detail}
                                 for p in report.problems[:20]],
                        "torn": report.torn[:20], "notes": report.notes[:20]}
    return out


def kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def audit_health(paths: Paths, cfg: AuditConfig) -> list[tuple[str, str, str]]:
    try:
        s = collect(paths, cfg)
    except OSError as exc:
        return [(FAIL, "audit spool", f"cannot read {paths.audit_dir} ({exc.strerror}); fix its permissions")]
    now = time.time()
    lines: list[tuple[str, str, str]] = []
    share = s["disk_bytes"] / s["quota_bytes"] if s["quota_bytes"] else 0.0
    backlog = (f"{s['backlog_records']} records not yet sent ({kib(s['backlog_bytes'])}) in {s['segments']} "
               f"segments; {share:.0%} of the disk quota")
    if s["oldest_unsent"]:
        backlog += f"; oldest unsent from {when(s['oldest_unsent'], now)}"
    lines.append((WARN if share > 0.8 else OK, "audit spool", backlog))
    if not cfg.collector:
        lines.append((WARN, "audit collector", "no [audit] collector: the audit log stays on this machine; set "
                                               "collector to ship it to your organisation"))
    else:
        result, detail = s["last_result"], s["last_detail"] or ""
        stale = s["oldest_unsent"] is not None and now - s["oldest_unsent"] > STALE_BACKLOG
        if result is None:
            status = WARN if s["backlog_records"] else OK
            lines.append((status, "audit push", f"nothing pushed to {cfg.collector} yet; it happens in the "
                                                "background of serve, or run `mcp-access-proxy audit push`"))
        elif result == "ok":
            lines.append((OK, "audit push", f"last push {when(s['last_attempt'], now)}: {detail}"))
        elif s["paused"]:
            lines.append((FAIL, "audit push", f"{s['paused']} (last try {when(s['last_attempt'], now)}: {detail})"))
        else:
            fix = {"paused": "the collector refuses our requests: check [audit] collector and headers",
                   "rejected": "the collector refused a batch as invalid; it was set aside in rejected/",
                   "retrying": "the collector is unreachable or busy; records stay queued and are retried",
                   "error": "records stay queued and are tried again later"}
            status = FAIL if result == "paused" or stale else WARN
            lines.append((status, "audit push", f"last push {when(s['last_attempt'], now)} {result}: {detail}; "
                                                f"{fix.get(result, 'see the proxy log')}"))
    if s["set_aside"]["batches"]:
        lines.append((WARN, "audit rejected", f"{set_aside_text(s['set_aside'], now)} (in "
                                              f"{paths.audit_dir / 'rejected'})"))
    if s["dropped_records"]:
        lines.append((WARN, "audit dropped", f"{s['dropped_records']} unsent records ({kib(s['dropped_bytes'])}) "
                                             "were dropped by the disk quota; raise [audit] max_disk_bytes or fix "
                                             "the collector connection"))
    chain = s["chain"]
    if chain["ok"]:
        extra = f"; {chain['torn_tails']} torn last lines (crashes, not tampering)" if chain["torn_tails"] else ""
        lines.append((OK, "audit chain", f"{chain['records']} records in {s['segments']} segments link up{extra}"))
    else:
        lines.append((FAIL, "audit chain", f"{chain['problem_count']} problems, first: {chain['problems'][0]}; the "
                                           "spool was edited or damaged: keep the files for investigation"))
    return lines
