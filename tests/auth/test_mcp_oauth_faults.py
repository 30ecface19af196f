"""OAuth for remote MCP upstreams when things go wrong around a running `serve`: a new `login` while serve
holds a revoked token, a token endpoint that fails for a passing reason, a rejected or missing client
secret, configured scopes, and `logout` racing serve's refresh. Real processes, real loopback servers."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_proxy.auth.vault import TokenStore, refresh_lock
from mcp_proxy.config import SecretStore
from mcp_proxy.paths import resolve_paths
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthClient, create_app
from tests._support.auth import AuthProxy, mcp_table, wait_for_tool
from tests._support.proxy import PY, text_of

pytestmark = pytest.mark.anyio

MCP_SECRET = "mcp-client-secret-9876543210"


def stored(aproxy: AuthProxy) -> TokenStore:
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(aproxy.home)})
    return TokenStore("mon", SecretStore("file", paths.data_dir / "secrets.json", warn=False), paths)


async def echo(client: Any, text: str) -> Any:
    with anyio.fail_after(30):
        return await client.call_tool("mon_echo", {"text": text})


async def echo_until_it_works(client: Any, text: str, seconds: float = 40) -> None:
    """The session was dropped after a refusal; it reconnects with backoff."""
    with anyio.fail_after(seconds):
        while True:
            result = await echo(client, text)
            if not result.is_error:
                assert text_of(result) == f"echo: {text}"
                return
            await anyio.sleep(0.5)


def login(aproxy: AuthProxy, **env: str) -> None:
    done = aproxy.run("login", "mon", env=aproxy.env(**env) if env else None)
    assert done.returncode == 0, done.stderr


def signed_in(aproxy: AuthProxy, mcp_server: Any) -> None:
    """Configured for the OAuth-protected MCP server with its static client, and signed in with `login`."""
    _verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    login(aproxy)


async def test_a_new_login_is_not_undone_by_a_running_serve(aproxy: AuthProxy, mcp_server: Any) -> None:
    signed_in(aproxy, mcp_server)
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        aproxy.sandbox.oauth.revoke_all()  # serve's token and refresh token are dead; the user signs in again
        login(aproxy)  # a fresh record, numbered 1 like the one serve holds
        new = stored(aproxy).load()
        second = await echo(client, "2")  # serve gets 401, re-reads the keychain, and uses the new token
        assert not second.is_error and text_of(second) == "echo: 2", text_of(second)
    after = stored(aproxy).load()
    assert after is not None and after.access_token == new.access_token
    assert aproxy.sandbox.oauth.issued["refresh_refused"] == 0  # never tried its dead refresh token


@pytest.mark.parametrize("status, error", [(503, "temporarily_unavailable"), (429, None)])
async def test_a_passing_failure_of_the_token_endpoint_keeps_the_sign_in(
        aproxy: AuthProxy, mcp_server: Any, status: int, error: str | None) -> None:
    signed_in(aproxy, mcp_server)
    sandbox = aproxy.sandbox
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        refresh_token = stored(aproxy).load().refresh_token
        sandbox.oauth.expire_access_tokens()  # the MCP server answers 401 now
        port = sandbox.oauth_http.port
        sandbox.oauth_http.stop()

        async def busy(request: Request) -> JSONResponse:
            return JSONResponse({"error": error} if error else {}, status_code=status)

        outage = serve_in_thread(Starlette(routes=[Route("/oauth/token", busy, methods=["POST"])]), port=port)
        sandbox.extra_servers.append(outage)
        during = await echo(client, "2")
        assert during.is_error
        text = text_of(during)
        assert f"HTTP {status}" in text and "try again" in text and "login mon" not in text, text
        assert stored(aproxy).load().refresh_token == refresh_token  # kept
        assert refresh_token in sandbox.oauth.active_refresh_tokens

        outage.stop()  # the identity service is back: the kept refresh token works
        sandbox.extra_servers.append(serve_in_thread(create_app(sandbox.oauth), port=port))
        await echo_until_it_works(client, "3")
    assert sandbox.oauth.issued["refresh_token"] == 1 and sandbox.oauth.issued["authorization_code"] == 1


async def test_a_rejected_client_secret_keeps_the_sign_in_and_names_the_setting(
        aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.sandbox.oauth.add_client(OAuthClient("mcp-secret-client", (aproxy.sandbox.redirect_uri,), secret=MCP_SECRET))
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-secret-client",
                                   client_secret="env:MON_CLIENT_SECRET")})
    login(aproxy, MON_CLIENT_SECRET=MCP_SECRET)
    async with aproxy.client(env=aproxy.env(MON_CLIENT_SECRET="a-rotated-away-secret")) as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        aproxy.sandbox.oauth.expire_access_tokens()
        result = await echo(client, "2")
    assert result.is_error and "invalid_client" in text_of(result) and "client_secret" in text_of(result)
    assert "a-rotated-away-secret" not in text_of(result)
    record = stored(aproxy).load()
    assert record is not None and record.refresh_token in aproxy.sandbox.oauth.active_refresh_tokens
    aproxy.assert_no_secret_leaked()
    assert MCP_SECRET.encode() not in aproxy.stderr_text().encode()


async def test_a_configured_secret_that_cannot_be_read_is_a_configuration_error(
        aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client",
                                   client_secret="env:MON_SECRET_NOT_SET")})
    done = aproxy.run("login", "mon")
    assert done.returncode != 0
    assert "upstreams.mon.client_secret" in done.stderr and "MON_SECRET_NOT_SET" in done.stderr, done.stderr
    assert aproxy.sandbox.oauth.authorize_requests == []  # it did not go on without the secret


async def test_configured_scopes_are_requested_exactly(aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client", scopes=["read"])})
    login(aproxy)
    assert [r.get("scope") for r in aproxy.sandbox.oauth.authorize_requests] == ["read"]
    assert stored(aproxy).load().scopes == ("openid", "read")


async def test_logout_waits_for_a_refresh_that_holds_the_lock(aproxy: AuthProxy, mcp_server: Any) -> None:
    signed_in(aproxy, mcp_server)
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(aproxy.home)})
    lock = refresh_lock(paths, "mon")
    assert lock.acquire(blocking=False)  # what a refresh in a running serve holds
    process = subprocess.Popen([PY, "-m", "mcp_proxy", "--config", str(aproxy.config), "logout", "mon"],
                               env=aproxy.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)
        assert process.poll() is None, "logout did not wait for the refresh lock"
        assert stored(aproxy).load() is not None
    finally:
        lock.release()
    out, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "Signed out of 'mon'" in out and stored(aproxy).load() is None


async def test_serve_does_not_write_a_token_back_after_logout(aproxy: AuthProxy, mcp_server: Any) -> None:
    signed_in(aproxy, mcp_server)
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        done = aproxy.run("logout", "mon")  # MCP logout does not revoke: serve's refresh token still works
        assert done.returncode == 0, done.stderr
        aproxy.sandbox.oauth.expire_access_tokens()
        result = await echo(client, "2")  # 401: serve re-reads the keychain, finds no sign-in, does not refresh
        assert result.is_error and "login mon" in text_of(result), text_of(result)
    assert stored(aproxy).load() is None
    assert aproxy.sandbox.oauth.issued["refresh_token"] == 0
