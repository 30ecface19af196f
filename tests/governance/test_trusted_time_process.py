"""The real `mcp-access-proxy` command with a laptop clock that is a week behind (a policy server whose Date
is a week ahead of this machine's clock is the same thing, seen from here): an expired document is not
activated, and the server's Date, persisted, still counts in the next process, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws
from tests._support.dated_server import DatedServer

DAY = 86400.0


def _doc(revision: str, issued: float, expires: float) -> bytes:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return json.dumps({"schema": 1, "revision": revision,
                       "issued_at": datetime.fromtimestamp(issued, UTC).strftime(stamp),
                       "expires_at": datetime.fromtimestamp(expires, UTC).strftime(stamp),
                       "defaults": {"auto_approve": "none"}, "tools": {}}).encode()


def _run(config: Path, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(home)}
    env.pop("MCP_ACCESS_PROXY_CONFIG", None)
    launcher = Path(sys.executable).with_name("mcp-access-proxy")
    return subprocess.run([str(launcher), "--config", str(config), *argv], env=env, capture_output=True, text=True,
                          timeout=60)


def _config(tmp_path: Path, url: str, public: bytes) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[policy]\nsource = "{url}/policy.jws"\npublic_keys = [{json.dumps(public.decode())}]\n')
    return config


def test_an_expired_document_is_not_activated_by_a_clock_that_is_behind(tmp_path):
    private, public, _ = generate_key_pair("EdDSA")
    now = time.time()
    # valid by this machine's clock for another day; by the policy server's, it expired a week ago
    signed = sign_jws(_doc("r1", now - 3600, now + DAY), load_private_key(private)).encode()
    with DatedServer(signed, date=now + 8 * DAY) as server:
        config = _config(tmp_path, server.url, public)
        sync = _run(config, tmp_path / "home", "policy", "sync")
    assert sync.returncode == 1, sync.stdout + sync.stderr
    assert "rejected" in sync.stdout and "expired" in sync.stdout
    status = json.loads(_run(config, tmp_path / "home", "policy", "status", "--json").stdout)
    assert status["revision"] is None


def test_the_servers_date_is_remembered_by_the_next_process(tmp_path):
    private, public, _ = generate_key_pair("EdDSA")
    now = time.time()
    home = tmp_path / "home"
    signed = sign_jws(_doc("r1", now - 3600, now + DAY), load_private_key(private)).encode()
    with DatedServer(signed) as server:  # the real time, at first
        config = _config(tmp_path, server.url, public)
        first = _run(config, home, "policy", "sync")
        assert first.returncode == 0 and "activated" in first.stdout, first.stdout + first.stderr
        server.date = now + 8 * DAY  # a week later, by the server; this machine's clock stayed behind
        second = _run(config, home, "policy", "sync")
        assert "not_modified" in second.stdout, second.stdout + second.stderr
        assert server.if_none_match[-1]  # the 304 answered our ETag
    # the server is gone: the next process is offline, its clock still says the document is valid
    done = _run(config, home, "policy", "status", "--json")
    status = json.loads(done.stdout)
    assert status["revision"] == "r1" and status["expired"] is True
    assert "expired" in status["problem"]
    saved = json.loads((home / "data" / "trusted-time.json").read_text())
    assert saved["seen"]["policy_server"] >= now + 8 * DAY - 60
