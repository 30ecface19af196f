"""`demo` stopped by SIGTERM (a terminal closed, a session ended) removes its sandbox directory: it holds the
sandbox's secrets and tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGTERM")

DEMO_ENV = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}


def _start(tmp_path: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mcp_proxy", "demo", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**DEMO_ENV, "TMPDIR": str(tmp_path)})


def _read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while marker not in "".join(lines[-3:]):
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    return "".join(lines)


def _sandboxes(tmp_path: Path) -> list[Path]:
    return list(tmp_path.glob("mcp-access-proxy-demo-*"))


def test_demo_keep_stopped_by_sigterm_leaves_no_sandbox(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--keep")
    try:
        _read_until(proc, "Press Ctrl-C")
        (sandbox,) = _sandboxes(tmp_path)
        assert (sandbox / "home" / "data" / "secrets.json").is_file()  # the sandbox's secrets
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Stopping the sandbox" in rest
    assert proc.returncode == 0, rest
    assert _sandboxes(tmp_path) == []


def test_demo_stopped_by_sigterm_mid_session_leaves_no_sandbox(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    try:
        _read_until(proc, "Sandbox:")
        assert len(_sandboxes(tmp_path)) == 1
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "Done in" not in rest
    assert _sandboxes(tmp_path) == []
