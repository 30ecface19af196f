"""The OAuth tests' sandbox (the OAuth server and the PagerDuty emulator wired together over real loopback HTTP),
configs for the real proxy process signing in against it, and the stand-in browser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from mcp_proxy.sandbox.asgi_thread import RunningServer
from mcp_proxy.sandbox.browser import browser_command
from mcp_proxy.sandbox.oauth_server import OAuthServer
from tests._support.proxy import ProxyEnv

CLIENT_ID = "classic-desktop-app"
SCOPED_ID = "scoped-desktop-app"
SCOPED_SECRET = "scoped-app-secret-0123456789"
ALL_SCOPED = ["incidents.read", "incidents.write", "users.read", "services.read"]


@dataclass
class Sandbox:
    oauth: OAuthServer
    oauth_http: RunningServer
    pd_http: RunningServer
    redirect_uri: str
    port: int
    tmp: Path
    extra_servers: list[RunningServer] = field(default_factory=list)

    @property
    def pd_url(self) -> str:
        return self.pd_http.url

    def upstream(self, **overrides: Any) -> dict[str, Any]:
        """The `[upstreams.pd]` table of a classic app signing in against the sandbox."""
        table: dict[str, Any] = {
            "kind": "pagerduty", "auth": "oauth", "client_id": CLIENT_ID, "redirect_uri": self.redirect_uri,
            "authorize_url": f"{self.oauth_http.url}/oauth/authorize",
            "token_url": f"{self.oauth_http.url}/oauth/token",
            "revoke_url": f"{self.oauth_http.url}/oauth/revoke", "base_url": self.pd_url, "call_timeout": 20,
        }
        table.update(overrides)
        return {k: v for k, v in table.items() if v is not None}

    def scoped_upstream(self, scopes: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
        table = {"client_id": SCOPED_ID, "client_secret": "env:PD_CLIENT_SECRET", "scopes": scopes or ALL_SCOPED}
        return self.upstream(**{**table, **overrides})

    def secrets_seen(self) -> set[str]:
        """Every token and code the server ever issued, every PKCE verifier it was shown, and the client secret."""
        with self.oauth.lock:
            return set(self.oauth.access) | set(self.oauth.refresh) | set(self.oauth.used_refresh) | \
                set(self.oauth.all_codes) | set(self.oauth.all_verifiers) | {SCOPED_SECRET}

    def states_seen(self) -> set[str]:
        """Every `state` the proxy sent to the authorize endpoint: part of the URL the user is shown (so it may
        appear in command output), but never in a file or a log."""
        return {r["state"] for r in self.oauth.authorize_requests if r.get("state")}


class AuthProxy(ProxyEnv):
    """ProxyEnv plus the stand-in browser and the commands run as subprocesses."""

    def __init__(self, tmp_path: Path, sandbox: Sandbox) -> None:
        super().__init__(tmp_path)
        self.sandbox = sandbox

    def env(self, **extra: str) -> dict[str, str]:
        base = {"BROWSER": browser_command(), "PD_CLIENT_SECRET": SCOPED_SECRET}
        base.update(extra)
        return super().env(**base)

    def write_pd(self, table: dict[str, Any] | None = None, extra: str = "", **kw: Any) -> Path:
        return self.write({"pd": table or self.sandbox.upstream()}, extra, **kw)

    def home_files(self, *, skip_token_store: bool = True) -> dict[Path, bytes]:
        """Every file under the proxy home, except the token store itself (the opt-in file store)."""
        files = {}
        for path in self.home.rglob("*"):
            if path.is_file() and not (skip_token_store and path.name == "secrets.json"):
                files[path] = path.read_bytes()
        return files

    def assert_no_secret_leaked(self, extra_text: str = "") -> None:
        """No token, code, PKCE verifier or client secret in any file under the proxy home (logs, audit spool,
        token metadata), the proxy's stderr or `extra_text` (command output); no `state` in files or stderr."""
        secrets = self.sandbox.secrets_seen()
        assert len(secrets) > 1, "the test issued no tokens"
        assert self.sandbox.oauth.all_verifiers or self.sandbox.oauth.issued["authorization_code"] == 0
        states = self.sandbox.states_seen()
        files = {str(p): data for p, data in self.home_files().items()}
        files["proxy stderr"] = self.stderr_text().encode()
        for where, data in {**files, "command output": extra_text.encode()}.items():
            for secret in secrets:
                assert secret.encode() not in data, f"a token, code, PKCE verifier or client secret appears in {where}"
        for where, data in files.items():
            for state in states:
                assert state.encode() not in data, f"an OAuth state appears in {where}"

    def audit_records(self) -> list[dict[str, Any]]:
        """The audit records the proxy wrote (its spool is under data/audit/ in the proxy home)."""
        records = []
        audit_dir = self.home / "data" / "audit"
        for path in sorted(audit_dir.rglob("*")) if audit_dir.exists() else []:
            if not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "event_name" in record:
                    records.append(record)
        return records


def url_from(text: str) -> str:
    match = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", text)
    assert match, f"no authorization URL in: {text!r}"
    return match.group(1)


def open_in_stand_in_browser(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mcp_proxy.sandbox.browser", url], capture_output=True, text=True,
                          timeout=60, env={k: v for k, v in os.environ.items()})


def mcp_table(sandbox: Sandbox, url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "mcp", "url": url, "auth": "oauth", "redirect_uri": sandbox.redirect_uri, "connect_timeout": 10,
            **extra}


async def tool_names(client: Any) -> set[str]:
    with anyio.fail_after(30):
        return {t.name for t in (await client.list_tools()).tools}


async def wait_for_tool(client: Any, name: str, seconds: float = 30) -> None:
    with anyio.fail_after(seconds):
        while name not in await tool_names(client):
            await anyio.sleep(0.3)
