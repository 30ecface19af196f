"""OAuth for remote MCP upstreams: `login` runs the SDK's flow (discovery, static client or dynamic
registration, PKCE) through our loopback listener; `serve` uses the stored token, refreshes it, and never
opens a browser on its own."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests._support.auth import AuthProxy, mcp_table, tool_names, wait_for_tool
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def test_login_then_serve_with_a_static_client(aproxy: AuthProxy, mcp_server: Any) -> None:
    verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    done = aproxy.run("login", "mon")
    assert done.returncode == 0, done.stderr
    assert "Signed in to 'mon'" in done.stdout and "1 tools visible" in done.stdout
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1
    assert aproxy.sandbox.oauth.issued["registration"] == 0  # no dynamic registration: the config's client
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        with anyio.fail_after(30):
            result = await client.call_tool("mon_echo", {"text": "hi"})
        assert text_of(result) == "echo: hi"
        # The server stops accepting the token: the proxy refreshes once, under the lock, and carries on.
        aproxy.sandbox.oauth.expire_access_tokens()
        with anyio.fail_after(30):
            again = await client.call_tool("mon_echo", {"text": "again"})
        assert text_of(again) == "echo: again", text_of(again)
    assert aproxy.sandbox.oauth.issued["refresh_token"] == 1
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1
    assert "refused" in verifier.seen
    aproxy.assert_no_secret_leaked(done.stdout + done.stderr)


async def test_dynamic_registration_is_stored_and_reused(aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.sandbox.oauth.allow_registration = True
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url)})
    for _ in range(2):
        done = aproxy.run("login", "mon")
        assert done.returncode == 0, done.stderr
    assert aproxy.sandbox.oauth.issued["registration"] == 1  # the second login reused the stored client
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 2


async def test_serve_does_not_open_a_browser_and_says_to_log_in(aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    async with aproxy.client() as client:
        with anyio.fail_after(20):
            while "mcp-access-proxy login mon" not in aproxy.stderr_text():
                await anyio.sleep(0.2)
        assert "mon_echo" not in await tool_names(client)
        assert aproxy.sandbox.oauth.authorize_requests == []  # no browser sign-in was started
        # Signing in from a terminal meanwhile: the running proxy picks the token up on its next reconnect.
        done = aproxy.run("login", "mon")
        assert done.returncode == 0, done.stderr
        await wait_for_tool(client, "mon_echo", seconds=60)
    assert "Traceback" not in aproxy.stderr_text()


async def test_an_mcp_upstreams_tokens_are_redacted_from_audit_records(aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    server = aproxy.sandbox.oauth
    server.token_prefixes, server.token_bytes = ("at.", "rt."), 15  # no shape the redactor would recognise
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    assert aproxy.run("login", "mon").returncode == 0
    with server.lock:
        access, refresh = list(server.access)[-1], list(server.refresh)[-1]
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        with anyio.fail_after(30):
            await client.call_tool("mon_echo", {"text": f"notes: {access} / {refresh}"})
    (record,) = [r for r in aproxy.audit_records() if r.get("gen_ai.tool.name") == "mon_echo"
                 and r["event_name"] == "mcp.tool.call"]
    text = record["gen_ai.tool.call.arguments"]["text"]
    assert access not in text and refresh not in text and text.count("[REDACTED]") == 2, text
