"""The UptimeObserver tests' keys and tools, proxy configs pointing at its MCP emulator, and a search of files
for a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp_proxy.sandbox import uptimeobserver

KEY = "uo_live_7f3a9c2e5b8d1f4a6c0e9b2d5f8a1c3e"
OTHER_KEY = "uo_live_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsImlhdCI6MTcwMDAwMDAwMH0"
       ".Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg")
NO_PREFIX = "7f3a9c2e5b8d1f4a6c0e9b2d5f8a1c3e"
TOOLS = {"list_monitors", "get_monitor", "list_incidents", "get_status_summary", "pause_monitor", "resume_monitor"}


def uo_upstream(sandbox: uptimeobserver.Sandbox, **extra: Any) -> dict[str, Any]:
    return {"kind": "uptimeobserver", "url": sandbox.url, "api_key": "env:UO_TEST_KEY", "connect_timeout": 10,
            **extra}


def files_containing(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
