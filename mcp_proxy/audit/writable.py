"""Whether the audit spool can be written now, and the gaps calls were refused in (for doctor and status).

A proxy refuses every call whose record cannot be put on disk (no record, no call) and, once writing works
again, appends one `audit.gap` record with how many calls it refused and when; these readers show both.
"""

from __future__ import annotations

import os
import tempfile

from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.reader import iter_lines
from mcp_proxy.paths import Paths

GAP_EVENT = b'"event_name":"audit.gap"'


def spool_write_problem(paths: Paths) -> str | None:
    """None when a file of some bytes can be written in the spool now; else what stops it."""
    spool = Layout(paths).spool
    try:
        spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".writable-", dir=spool)
        try:
            os.write(fd, b"x" * 4096)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        return (f"cannot write in {spool} ({exc.strerror or type(exc).__name__}): proxies refuse every call until "
                "it can be written; free disk space or fix the directory's permissions")
    return None


def recent_gaps(paths: Paths, limit: int = 3) -> list[bytes]:
    """The newest `audit.gap` records still in the spool, as stored (newest last)."""
    gaps: list[bytes] = []
    for segment in Layout(paths).segments():
        try:
            gaps += [line.raw for line in iter_lines(segment.path) if GAP_EVENT in line.raw]
        except OSError:
            continue
    return gaps[-limit:]
