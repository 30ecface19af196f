"""`serve` holds OAuth tokens in its memory: it runs with core dumps off, so a crash writes none to disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/limits")

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "pytest", "version": "1"}}})


def _core_limit(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]  # soft, hard
    raise AssertionError("no core limit line")


@pytest.mark.parametrize("argv", [["serve"], []], ids=["serve", "no command"])
def test_a_serving_process_has_a_core_file_size_of_0(tmp_path: Path, argv: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[user]\nemail = "a@example.com"\n[secrets]\nstore = "file"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    env["MCP_ACCESS_PROXY_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "mcp_proxy", *argv, "--config", str(config)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(INITIALIZE + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1  # serving
        assert _core_limit(proc.pid) == ["0", "0"]
    finally:
        _, err = proc.communicate("", timeout=30)
    assert proc.returncode == 0, err


def test_where_resource_is_unavailable_it_is_skipped(monkeypatch) -> None:
    from mcp_proxy.__main__ import disable_core_dumps

    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows: `import resource` fails
    disable_core_dumps()
