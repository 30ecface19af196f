"""`doctor` through the installed command: a healthy setup passes, and each broken item is one FAIL (or WARN)
line that names the problem and the fix, with exit code 1 when anything is broken."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mcp_proxy.sandbox.asgi_thread import free_port, serve_in_thread
from mcp_proxy.sandbox.statuspage import ORG, PAGE, create_app
from tests._support.proxy import render_config, stdio_upstream

SP_KEY = "sp_doctor_key_0123456789abcdef"


@pytest.fixture(scope="module")
def statuspage() -> Iterator[str]:
    server = serve_in_thread(create_app(api_keys=[SP_KEY]))
    try:
        yield server.url + "/v1"
    finally:
        server.stop()


class Doctor:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "proxy-home"
        self.user_home = tmp / "user-home"
        self.user_home.mkdir()
        self.config = tmp / "config.toml"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("MCP_ACCESS_PROXY", "XDG_", "CLAUDE_CONFIG_DIR"))}
        self.env.update({"MCP_ACCESS_PROXY_HOME": str(self.home), "HOME": str(self.user_home),
                         "USERPROFILE": str(self.user_home), "SP_KEY": SP_KEY})

    def write(self, upstreams: dict, extra: str = "") -> None:
        self.config.write_text(render_config(upstreams, extra), encoding="utf-8")

    def run(self, *args: str) -> tuple[int, dict[str, tuple[str, str]], str]:
        """(exit code, {check name: (status, detail)}, whole output)."""
        proc = subprocess.run([sys.executable, "-m", "mcp_proxy", "--config", str(self.config), *args],
                              capture_output=True, text=True, env=self.env, timeout=120)
        checks: dict[str, tuple[str, str]] = {}
        name = None
        for line in proc.stdout.splitlines():
            if line.startswith("[") and "] " in line:
                status, rest = line[1:].split("] ", 1)
                name, _, detail = rest.partition(": ")
                checks[name] = (status.strip(), detail)
            elif name is not None and line.strip():  # a multi-line detail (e.g. every config problem)
                checks[name] = (checks[name][0], checks[name][1] + "\n" + line)
        return proc.returncode, checks, proc.stdout + proc.stderr


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _policy(path: Path, *, expires_in: float = 86400) -> str:
    now = time.time()
    path.write_text(json.dumps({"schema": 1, "revision": "r7", "issued_at": _iso(now - 3600),
                                "expires_at": _iso(now + expires_in), "defaults": {"auto_approve": "read_only"},
                                "tools": {}}))
    return f'[policy]\nsource = "{path}"\n'


def _sp(url: str, **extra: str) -> dict:
    return {"kind": "statuspage", "base_url": url, "api_key": "env:SP_KEY", "page_id": PAGE,
            "organization_id": ORG, **extra}


@pytest.fixture
def doctor(tmp_path: Path) -> Doctor:
    return Doctor(tmp_path)


def test_healthy_setup(doctor: Doctor, statuspage: str, tmp_path: Path) -> None:
    doctor.write({"sp": _sp(statuspage), "f": stdio_upstream()}, extra=_policy(tmp_path / "policy.json"))
    assert subprocess.run([sys.executable, "-m", "mcp_proxy", "--config", str(doctor.config), "install", "cursor"],
                          capture_output=True, env=doctor.env, timeout=60).returncode == 0
    code, checks, out = doctor.run("doctor", "--timeout", "20")
    assert code == 0, out
    assert checks["config"][0] == "ok" and str(doctor.config) in checks["config"][1]
    for name in ("data dir", "cache dir", "log dir", "upstream sp", "upstream f", "policy", "client Cursor"):
        assert checks[name][0] == "ok", (name, out)
    assert "reachable and authenticated" in checks["upstream sp"][1]
    assert "connected" in checks["upstream f"][1]
    assert "r7" in checks["policy"][1]
    assert checks["secret upstreams.sp.api_key"][0] == "ok"
    assert SP_KEY not in out  # the check resolves the secret but never shows it
    assert out.rstrip().endswith("all good")


def test_invalid_config_names_the_key_and_the_fix(doctor: Doctor) -> None:
    doctor.config.write_text('[upstreams.sp]\nkind = "statuspage"\napi_key = "plain-secret-value"\n')
    code, checks, out = doctor.run("doctor")
    assert code == 1
    status, detail = checks["config"]
    assert status == "FAIL" and "upstreams.sp.api_key" in detail and "secret set" in detail
    assert "plain-secret-value" not in out


def test_each_broken_item_is_a_fail_line_with_its_fix(doctor: Doctor, statuspage: str, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    doctor.write({
        "sp": _sp(statuspage),
        "down": _sp(closed, max_retries=0),  # type: ignore[arg-type]
        "wrong": _sp(statuspage, api_key="env:WRONG_KEY"),
        "nokey": _sp(statuspage, api_key="env:NOT_SET_ANYWHERE"),
        "pd": {"kind": "pagerduty", "auth": "oauth", "client_id": "doctor-app", "base_url": closed},
    }, extra=_policy(tmp_path / "policy.json", expires_in=-60))
    doctor.env["WRONG_KEY"] = "sp_wrong_key_value_000000"
    code, checks, out = doctor.run("doctor", "--timeout", "20")
    assert code == 1
    assert checks["secret upstreams.nokey.api_key"][0] == "FAIL"
    assert "NOT_SET_ANYWHERE" in checks["secret upstreams.nokey.api_key"][1]
    assert checks["upstream down"][0] == "FAIL" and "could not be reached" in checks["upstream down"][1]
    assert checks["upstream wrong"][0] == "FAIL" and "WRONG_KEY" in checks["upstream wrong"][1]
    assert "sp_wrong_key_value_000000" not in out
    assert checks["upstream sp"][0] == "ok"
    assert checks["sign-in pd"] == ("FAIL", "not signed in; run `mcp-access-proxy login pd`")
    assert checks["upstream pd"][0] == "FAIL" and "login pd" in checks["upstream pd"][1]
    # The document was expired when first fetched, so it is refused: nothing is exposed.
    assert checks["policy"][0] == "FAIL" and "expired" in checks["policy"][1]
    assert checks["tools"][1].startswith("0 of ")
    assert "something is broken" in out


def test_unwritable_home_and_missing_keychain(doctor: Doctor, statuspage: str) -> None:
    doctor.home.mkdir()
    (doctor.home / "data").write_text("a file where the data dir should be")
    doctor.config.write_text(render_config({"sp": _sp(statuspage, api_key="keyring:statuspage")})
                             .replace('store = "file"', 'store = "keyring"'))
    doctor.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    code, checks, out = doctor.run("doctor", "--offline")
    assert code == 1
    assert checks["data dir"][0] == "FAIL" and "MCP_ACCESS_PROXY_HOME" in checks["data dir"][1]
    assert checks["keychain"][0] == "FAIL" and 'store = "file"' in checks["keychain"][1]
    assert checks["secret upstreams.sp.api_key"][0] == "FAIL"


def test_client_entries_and_tool_budget(doctor: Doctor, tmp_path: Path) -> None:
    doctor.write({"f": stdio_upstream("--tools", "90")})
    cursor = doctor.user_home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(json.dumps({"mcpServers": {
        "other": {"command": "/usr/bin/true"},
        "mcp-access-proxy": {"command": str(tmp_path / "gone" / "mcp-access-proxy"),
                             "args": ["--config", str(doctor.config)]},
    }}))
    code, checks, out = doctor.run("doctor", "--timeout", "20")
    assert code == 1
    status, detail = checks["client Cursor"]
    assert status == "FAIL" and "does not exist" in detail and "install cursor" in detail
    status, detail = checks["client Cursor tool budget"]
    assert status == "warn" and "Cursor" in detail and "max_tools" in detail
