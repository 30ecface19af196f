"""Helpers of the unfinished-call tests: started and ended records on an in-process spool, the closes a
sweep wrote, a kill -9 of the proxy with its upstream children, and a power-loss cut of a segment."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from mcp_proxy.audit import AuditLog

TOOL = {"mcp.method.name": "tools/call", "gen_ai.tool.name": "f_slow", "upstream": "f", "upstream.tool": "slow",
        "user.email": "bob@example.com", "trace_id": "0af7651916cd43dd8448eb211c80319c"}


def started(log: AuditLog, cid: str, **extra: Any) -> dict[str, Any]:
    return log.append_nowait("mcp.tool.started", {**TOOL, "gen_ai.tool.call.id": cid,
                                                  "arguments": {"seconds": 30}, **extra})


def ended(log: AuditLog, cid: str, outcome: str = "ok") -> dict[str, Any]:
    return log.append_nowait("mcp.tool.call", {**TOOL, "gen_ai.tool.call.id": cid, "outcome": outcome,
                                               "duration_ms": 1.0})


def closes(records: list[dict[str, Any]], cid: str | None = None) -> list[dict[str, Any]]:
    """The records that close a call as `unknown` (of call `cid`, if given)."""
    return [r for r in records if r["event_name"] == "mcp.tool.call" and r.get("outcome") == "unknown"
            and (cid is None or r["gen_ai.tool.call.id"] == cid)]


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc; the upstream runs in its own session, so not its group)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def kill9_tree(pid: int) -> None:
    """kill -9 the proxy and its children, as a crash or a power cut would end them all at once."""
    kids = children_of(pid)
    os.kill(pid, signal.SIGKILL)
    for kid in kids:
        try:
            os.killpg(kid, signal.SIGKILL)  # the upstream leads its own session
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(kid, signal.SIGKILL)


def cut_last_record(path: Path) -> bytes:
    """Cut `path` in the middle of its last line, as a power loss during that write leaves it; returns the
    bytes left."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = data[: start + (len(data) - start) // 2]
    path.write_bytes(cut)
    return cut
