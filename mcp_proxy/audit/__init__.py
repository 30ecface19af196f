"""The audit part: record schema, redaction, the local spool, and the shipper.

Imported on the `serve` start-up path, so only the writer side is imported
here; the shipper (httpx, gzip, encoders) and the status code are imported
when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_proxy.audit.auditlog import AuditLog
from mcp_proxy.audit.record import AuditContext

if TYPE_CHECKING:
    import anyio

    from mcp_proxy.config import AuditConfig, SecretStore
    from mcp_proxy.paths import Paths

__all__ = ["AuditContext", "AuditLog", "audit_health", "run_shipper"]


async def run_shipper(paths: Paths, audit_cfg: AuditConfig, store: SecretStore, stop_event: anyio.Event,
                      *, emit: Any = None) -> None:
    """Push the spool to the collector in the background of `serve` until `stop_event` is set."""
    from mcp_proxy.audit.shipper import run_shipper as run

    await run(paths, audit_cfg, store, stop_event, emit=emit)


def audit_health(paths: Paths, audit_cfg: AuditConfig) -> list[tuple[str, str, str]]:
    """`doctor`'s audit lines: (status "ok" | "warn" | "FAIL", name, detail)."""
    from mcp_proxy.audit.status import audit_health as health

    return health(paths, audit_cfg) + writability_lines(paths)


def writability_lines(paths: Paths) -> list[tuple[str, str, str]]:
    """Whether the spool can be written now (no record, no call), and the calls refused while it could not."""
    import json

    from mcp_proxy.audit.writable import recent_gaps, spool_write_problem

    lines: list[tuple[str, str, str]] = []
    problem = spool_write_problem(paths)
    lines.append(("FAIL", "audit writable", problem) if problem else ("ok", "audit writable", "the spool takes "
                                                                                             "new records"))
    for raw in recent_gaps(paths):
        gap = json.loads(raw)
        lines.append(("warn", "audit gap", f"{gap.get('audit.gap.refused_calls')} call(s) refused from "
                                           f"{gap.get('audit.gap.first')} to {gap.get('audit.gap.last')} because "
                                           "the audit log could not be written"))
    return lines
