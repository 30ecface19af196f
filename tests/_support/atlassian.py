"""The Atlassian sign-in sandbox for the tests: the stand-in Atlassian OAuth service and API gateway
(mcp_proxy/sandbox/atlassian_oauth.py) in front of the JSM Operations emulator, over real loopback HTTP, and
the real proxy process configured to sign in against it (`auth = "oauth"`, `api = "jsm"`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_proxy.sandbox.asgi_thread import RunningServer, free_port, serve_in_thread
from mcp_proxy.sandbox.atlassian_oauth import AtlassianOAuth, create_app, site
from mcp_proxy.sandbox.browser import browser_command
from mcp_proxy.sandbox.jsm import Emulator, seed
from mcp_proxy.sandbox.jsm import create_app as jsm_app
from tests._support.jsm import JsmChecker, check_exchanges
from tests._support.proxy import ProxyEnv

CLIENT_ID = "atl-3lo-desktop-app"
CLIENT_SECRET = "atl-3lo-client-secret-0123456789abcdef"
OTHER_CLOUD_ID = "9a8b7c6d-0000-4111-8222-333344445555"
OTHER_SITE = "beta.atlassian.net"


@dataclass
class AtlassianSandbox:
    oauth: AtlassianOAuth
    http: RunningServer
    emulator: Emulator
    redirect_uri: str

    @property
    def url(self) -> str:
        return self.http.url

    def upstream(self, **overrides: Any) -> dict[str, Any]:
        """The `[upstreams.og]` table: JSM Operations with the Atlassian sign-in against the sandbox."""
        table: dict[str, Any] = {
            "kind": "opsgenie", "api": "jsm", "auth": "oauth", "client_id": CLIENT_ID,
            "client_secret": "env:ATL_CLIENT_SECRET", "redirect_uri": self.redirect_uri, "base_url": self.url,
            "authorize_url": f"{self.url}/authorize", "token_url": f"{self.url}/oauth/token", "call_timeout": 20,
        }
        table.update(overrides)
        return {k: v for k, v in table.items() if v is not None}

    def add_site(self, cloud_id: str = OTHER_CLOUD_ID, host: str = OTHER_SITE) -> None:
        self.oauth.sites.append(site(cloud_id, host))


@contextmanager
def atlassian_sandbox(checker: JsmChecker | None = None) -> Iterator[AtlassianSandbox]:
    redirect = f"http://localhost:{free_port()}/callback"
    emulator_app = jsm_app()
    emulator: Emulator = emulator_app.state.emulator
    server = AtlassianOAuth(CLIENT_ID, CLIENT_SECRET, (redirect,), sites=[site(seed.CLOUD_ID, seed.SITE)],
                            jsm_app=emulator_app, jsm_bearer=seed.BEARER_TOKEN)
    with ExitStack() as stack:
        running = serve_in_thread(create_app(server))
        stack.callback(running.stop)
        yield AtlassianSandbox(server, running, emulator, redirect)
    if checker is not None:
        problems = check_exchanges(checker, emulator)
        assert not problems, "exchanges that do not match the JSM Ops spec:\n" + "\n".join(problems)


class AtlassianProxy(ProxyEnv):
    """ProxyEnv with the stand-in browser, the app's client secret, and the commands as subprocesses."""

    def __init__(self, tmp_path: Path, sandbox: AtlassianSandbox) -> None:
        super().__init__(tmp_path)
        self.sandbox = sandbox

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(**{"BROWSER": browser_command(), "ATL_CLIENT_SECRET": CLIENT_SECRET, **extra})

    def write_og(self, extra: str = "", **overrides: Any) -> Path:
        return self.write({"og": self.sandbox.upstream(**overrides)}, extra)

    def token_meta(self) -> Path:
        return self.home / "data" / "tokens" / "og.json"

    def assert_no_secret_leaked(self, extra_text: str = "") -> None:
        secrets = self.sandbox.oauth.all_secrets()
        assert len(secrets) > 1, "the test issued no tokens"
        texts = {str(p): p.read_bytes() for p in self.home.rglob("*") if p.is_file() and p.name != "secrets.json"}
        texts["proxy stderr"] = self.stderr_text().encode()
        texts["command output"] = extra_text.encode()
        for where, data in texts.items():
            for secret in secrets:
                assert secret.encode() not in data, f"a token, code or the client secret appears in {where}"
