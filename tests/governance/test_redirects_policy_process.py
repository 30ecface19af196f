"""The real `mcp-access-proxy` command: a policy server that redirects to another local server serving a validly
signed document. The document is not activated, `policy sync` and `policy status` say why (both origins, what
to fix), and the configured credential headers never reach the second server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws
from tests._support.redirects import origins

TOKEN = "Bearer policy-process-token-0123456789"
API_KEY = "policy-process-key-0123456789"


def _doc(revision: str) -> dict[str, object]:
    now = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return {"schema": 1, "revision": revision, "issued_at": (now - timedelta(hours=1)).strftime(stamp),
            "expires_at": (now + timedelta(days=1)).strftime(stamp), "defaults": {"auto_approve": "none"},
            "tools": {}}


def _run(config: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    launcher = Path(sys.executable).with_name("mcp-access-proxy")
    return subprocess.run([str(launcher), "--config", str(config), *argv], env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_redirected_policy_is_refused_and_the_reason_is_shown(tmp_path):
    private, public, _ = generate_key_pair("EdDSA")
    signed = sign_jws(json.dumps(_doc("r-elsewhere")).encode(), load_private_key(private)).encode()
    home = tmp_path / "home"
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(home), "POLICY_TOKEN": TOKEN, "POLICY_KEY": API_KEY}
    env.pop("MCP_ACCESS_PROXY_CONFIG", None)
    with origins(2) as (configured, other):
        configured.redirect("/policy.jws", other.url + "/policy.jws", 302)
        other.serve("/policy.jws", signed, **{"Content-Type": "application/jose"})
        config = tmp_path / "config.toml"
        config.write_text(
            '[user]\nemail = "alice@example.com"\n\n'
            f'[policy]\nsource = "{configured.url}/policy.jws"\npublic_keys = [\'\'\'{public.decode()}\'\'\']\n'
            'headers = { Authorization = "env:POLICY_TOKEN", "X-API-Key" = "env:POLICY_KEY" }\n')

        sync = _run(config, env, "policy", "sync")
        assert sync.returncode == 1, sync.stdout + sync.stderr
        shown = sync.stdout + sync.stderr
        assert "failed" in shown and configured.url in shown and other.url in shown and "[policy] source" in shown
        assert "r-elsewhere" not in shown

        status = _run(config, env, "policy", "status", "--json")
        report = json.loads(status.stdout)
        assert report["revision"] is None
        assert not (home / "data" / "policy" / "last-known-good.json").exists()

        for text in (sync.stdout, sync.stderr, status.stdout, status.stderr):
            assert "policy-process-token" not in text and API_KEY not in text
        logs = "".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file()) \
            if (home / "logs").exists() else ""
        assert "policy-process-token" not in logs and API_KEY not in logs

        assert other.requests() == []  # nothing, and so no credential, went to the second server
        first = configured.requests()[0]
        assert first.headers["authorization"] == TOKEN and first.headers["x-api-key"] == API_KEY
