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

    return health(paths, audit_cfg)
