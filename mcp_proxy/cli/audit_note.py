"""One audit record from a command run in a terminal (`login`, `logout`), so the organisation sees sign-ins
and sign-outs made outside an AI client too. Written to this machine's spool like any record; the shipper of
the next `serve` (or `audit push`) delivers it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from mcp_proxy.cli import CliContext

log = logging.getLogger(__name__)


def record(ctx: CliContext, event: str, fields: dict[str, Any], *, user: str | None = None) -> None:
    from mcp_proxy.server.run import open_audit

    config = ctx.config()
    try:
        audit = open_audit(config, ctx.paths, ctx.secret_store(), uuid.uuid4().hex)
    except OSError as exc:  # the command's own job is done; say what could not be recorded
        log.warning("could not record %s in the audit log (%s)", event, exc.strerror or type(exc).__name__)
        return
    audit.context.client_name = "mcp-access-proxy (command line)"
    if user:
        audit.context.user = user
    try:
        audit.append_nowait(event, fields)
    finally:
        audit.close()
