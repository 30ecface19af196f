"""`demo` end to end through the installed command, and `demo --keep` reached from a second, real client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio

DEMO_ENV = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}


def test_demo_walks_the_whole_mission_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mcp_proxy", "demo"], capture_output=True, text=True,
                          timeout=180, env={**DEMO_ENV, "TMPDIR": str(tmp_path)})
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # The merged list, filtered by the signed policy:
    assert "approved tools from 6 upstreams" in out and "proxy_unavailable_tools" in out
    assert "(jsm " in out and "pdm 2," in out  # the hosted server: only the two tools the policy approves
    # A read call, with data from the Opsgenie sandbox:
    assert "#101 P1 open" in out
    # A JSM Operations call (basic auth, the token from the secret store), with data from its emulator:
    assert "tools/call jsm_list_alerts" in out and "#101 P1 open   Replication lag on db-primary\n" in out
    # A call through PagerDuty's hosted MCP server (an API key), with incidents from its stand-in:
    assert "tools/call pdm_browse_incidents" in out and "3 of 3 incidents" in out
    assert "#1003 triggered    low  Slow page loads in eu-west" in out
    # The denial at call time, with the reason and the way to ask:
    assert "is disabled by the organisation's approval policy" in out and "proxy_request_access" in out
    # Sign-in and a write as the signed-in user, as PagerDuty saw it:
    assert "signed in and answered" in out and "Acknowledged by Alice Archer" in out
    # The audit records at the collector:
    for line in ("mcp.tool.denied   og_close_alert", "mcp.tool.call     pd_acknowledge_incident",
                 "mcp.tool.call     jsm_list_alerts", "mcp.tool.call     pdm_browse_incidents",
                 "auth.signed_in    upstream pd", "policy.activated"):
        assert line in out
    assert "Done in" in out
    # Nothing is left behind: the temporary sandbox directory is removed.
    assert not list(tmp_path.glob("mcp-access-proxy-demo-*"))


def test_demo_keep_serves_a_real_client_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "mcp_proxy", "demo", "--keep"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**DEMO_ENV, "TMPDIR": str(tmp_path)})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 180
        while "Press Ctrl-C" not in "".join(lines[-3:]):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        snippet = json.loads(text[text.index('{\n  "mcpServers"'):text.index("\n}\n") + 2])
        entry = snippet["mcpServers"]["mcp-access-proxy-demo"]
        names = anyio.run(_list_through, entry)
        assert "pd_list_incidents" in names and "og_close_alert" not in names
        assert {"jsm_list_alerts", "pdm_browse_incidents", "pdm_manage_incidents"} <= names
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Stopping the sandbox" in rest


async def _list_through(entry: dict) -> set[str]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=entry["command"], args=entry["args"], env={**DEMO_ENV, **entry["env"]})
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull), mode="legacy", cache=None) as client:
            return {t.name for t in (await client.list_tools()).tools}

