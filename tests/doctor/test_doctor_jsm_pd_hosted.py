"""`doctor` with a JSM Operations upstream (basic auth, an API token) and PagerDuty's hosted MCP server (an API
key): both are checked with a real request and pass when healthy; a wrong key for either is a FAIL line that
says the vendor refused it, and doctor exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_proxy.sandbox import pagerduty_mcp
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.jsm import create_app, seed
from tests._support.proxy import render_config


@pytest.fixture(scope="module")
def jsm() -> Iterator[str]:
    server = serve_in_thread(create_app())
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hosted() -> Iterator[pagerduty_mcp.Sandbox]:
    with pagerduty_mcp.start() as sandbox:
        yield sandbox


def _doctor(tmp: Path, jsm: str, hosted: pagerduty_mcp.Sandbox, *, jsm_token: str, pd_key: str
            ) -> tuple[int, dict[str, tuple[str, str]], str]:
    config = tmp / "config.toml"
    config.write_text(render_config({
        "jsm": {"kind": "opsgenie", "api": "jsm", "auth": "basic", "base_url": jsm, "cloud_id": seed.CLOUD_ID,
                "email": seed.EMAIL, "api_token": "env:JSM_TOKEN"},
        "pdm": {"kind": "pagerduty", "api": "mcp", "url": hosted.url, "auth": "api_key", "api_key": "env:PD_KEY"},
    }), encoding="utf-8")
    (tmp / "user-home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCP_ACCESS_PROXY", "XDG_", "CLAUDE_CONFIG_DIR"))}
    env.update({"MCP_ACCESS_PROXY_HOME": str(tmp / "home"), "HOME": str(tmp / "user-home"),
                "USERPROFILE": str(tmp / "user-home"), "JSM_TOKEN": jsm_token, "PD_KEY": pd_key})
    proc = subprocess.run([sys.executable, "-m", "mcp_proxy", "--config", str(config), "doctor", "--timeout", "20"],
                          capture_output=True, text=True, env=env, timeout=120)
    checks = {}
    for line in proc.stdout.splitlines():
        if line.startswith("[") and "] " in line:
            status, rest = line[1:].split("] ", 1)
            name, _, detail = rest.partition(": ")
            checks[name] = (status.strip(), detail)
    return proc.returncode, checks, proc.stdout + proc.stderr


def test_both_healthy(tmp_path: Path, jsm: str, hosted: pagerduty_mcp.Sandbox) -> None:
    code, checks, out = _doctor(tmp_path, jsm, hosted, jsm_token=seed.API_TOKEN, pd_key=pagerduty_mcp.SANDBOX_USER_KEY)
    assert code == 0, out
    assert checks["secret upstreams.jsm.api_token"][0] == "ok", out
    assert checks["secret upstreams.pdm.api_key"][0] == "ok", out
    assert checks["upstream jsm"] == ("ok", "reachable and authenticated (list_alerts answered)"), out
    assert checks["upstream pdm"][0] == "ok" and checks["upstream pdm"][1].startswith("connected, "), out
    assert seed.API_TOKEN not in out and pagerduty_mcp.SANDBOX_USER_KEY not in out
    assert code == 0 and "all good" in out, out


def test_a_wrong_key_for_each_fails(tmp_path: Path, jsm: str, hosted: pagerduty_mcp.Sandbox) -> None:
    code, checks, out = _doctor(tmp_path, jsm, hosted, jsm_token="ATATT-not-the-token", pd_key="not-the-pd-key")
    assert code == 1, out
    # The secrets resolve: it is the vendor that refuses them, and each line says so and names the fix.
    assert checks["secret upstreams.jsm.api_token"][0] == "ok" and checks["secret upstreams.pdm.api_key"][0] == "ok"
    status, detail = checks["upstream jsm"]
    assert status == "FAIL" and "did not accept the email and API token" in detail and "JSM_TOKEN" in detail, out
    status, detail = checks["upstream pdm"]
    assert status == "FAIL" and "refused the API key" in detail and "PD_KEY" in detail, out
    assert "retrying" not in detail  # the first refusal is the answer, not a retry schedule
    assert "ATATT-not-the-token" not in out and "not-the-pd-key" not in out
