"""Claim the process's stdin and stdout before anything else can touch them.

In `serve`, stdout belongs to the MCP protocol. A stray `print()` at import
time, a warning, or a child process inheriting fd 1 would corrupt the stream.
So the very first act of `serve` is to keep private duplicates of fd 0 and
fd 1 for the protocol, point fd 1 at stderr and fd 0 at the null device.
Everything else in the process (and every child) then writes to stderr.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class WireFds:
    """Private duplicates of the original stdin/stdout that carry the protocol."""

    read_fd: int
    write_fd: int


def claim_stdio() -> WireFds:
    """Divert fd 0/1 and return the private wire descriptors."""
    wire_out = os.dup(1)
    wire_in = os.dup(0)
    os.set_inheritable(wire_out, False)
    os.set_inheritable(wire_in, False)
    os.dup2(2, 1)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.close(null_fd)
    if sys.platform == "win32":  # pragma: no cover - children must inherit the diversion too
        from mcp.os.win32.utilities import rebind_std_handle_to_fd

        rebind_std_handle_to_fd(0)
        rebind_std_handle_to_fd(1)
    # Python-level stdout now writes to fd 1, which is stderr.
    sys.stdout = io.TextIOWrapper(
        os.fdopen(1, "wb", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
    )
    sys.stdin = io.TextIOWrapper(os.fdopen(0, "rb", closefd=False), encoding="utf-8")
    return WireFds(read_fd=wire_in, write_fd=wire_out)
