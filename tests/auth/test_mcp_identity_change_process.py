"""A sign-in that changes under a running `serve`, for a remote MCP upstream with OAuth (issue 14, item 4): `logout`
or `login` as someone else in a terminal reaches the running process at its next call. `logout` does not revoke
an MCP upstream's token, and `login` leaves the old one valid too, so only the proxy can stop using it: the
MCP server below would accept it."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests._support.auth import AuthProxy, mcp_table, wait_for_tool
from tests._support.identity_change import ALICE, BOB, calls_of, issued_to
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def echo(client: Any, text: str) -> Any:
    with anyio.fail_after(30):
        return await client.call_tool("mon_echo", {"text": text})


def login(aproxy: AuthProxy) -> None:
    done = aproxy.run("login", "mon")
    assert done.returncode == 0, done.stderr


async def test_a_logout_elsewhere_ends_the_running_process_use_of_the_token(
        aproxy: AuthProxy, mcp_server: Any) -> None:
    verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    login(aproxy)  # alice, in a terminal
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        alices = issued_to(aproxy.sandbox.oauth, ALICE)
        assert alices and set(verifier.tokens) <= alices
        out = aproxy.run("logout", "mon")  # in another terminal, while serve runs
        assert out.returncode == 0, out.stderr
        mark = len(verifier.tokens)
        after = await echo(client, "2")
        assert after.is_error, text_of(after)
        assert "mcp-access-proxy login mon" in text_of(after), text_of(after)
        assert not set(verifier.tokens[mark:]) & alices, "the server was shown the token of a signed-out user"
        login(aproxy)  # signed in again: the same session carries on with the new token
        assert text_of(await echo(client, "3")) == "echo: 3"
    calls = calls_of(aproxy.audit_records())
    assert [(c["outcome"], c.get("error.type")) for c in calls] == [
        ("ok", None), ("error", "sign_in_required"), ("ok", None)]
    assert aproxy.sandbox.oauth.issued["refresh_token"] == 0
    aproxy.assert_no_secret_leaked()


async def test_a_login_as_someone_else_elsewhere_makes_the_running_process_use_their_token(
        aproxy: AuthProxy, mcp_server: Any) -> None:
    verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")},
                 email="someone@example.com")
    login(aproxy)  # alice
    oauth = aproxy.sandbox.oauth
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
        alices = issued_to(oauth, ALICE)
        oauth.user_id = BOB  # the next browser sign-in is bob's
        login(aproxy)  # in another terminal, while serve runs; alice's token stays valid at the server
        bobs = issued_to(oauth, BOB)
        assert len(bobs) == 1 and alices <= set(oauth.access)
        mark = len(verifier.tokens)
        second = await echo(client, "2")
        assert not second.is_error and text_of(second) == "echo: 2", text_of(second)
        assert verifier.tokens[mark:] and set(verifier.tokens[mark:]) <= bobs, "the server was not shown bob's token"
    calls = calls_of(aproxy.audit_records())
    # An MCP server's sign-in names no user (no email in its token response): the audit and policy user is the
    # configured one before and after, never an identity the proxy does not know.
    assert [(c["outcome"], c["user.email"]) for c in calls] == [
        ("ok", "someone@example.com"), ("ok", "someone@example.com")]
    assert oauth.issued["refresh_token"] == 0 and oauth.issued["refresh_refused"] == 0
    aproxy.assert_no_secret_leaked()


async def test_a_process_started_after_a_logout_says_to_log_in_at_once(aproxy: AuthProxy, mcp_server: Any) -> None:
    _verifier, url = mcp_server
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    login(aproxy)
    async with aproxy.client() as client:  # connects once: the tool list is cached on disk
        await wait_for_tool(client, "mon_echo")
        assert text_of(await echo(client, "1")) == "echo: 1"
    out = aproxy.run("logout", "mon")
    assert out.returncode == 0, out.stderr
    async with aproxy.client() as client:  # the cached list offers the tool; no token to connect with
        result = await echo(client, "2")
        assert result.is_error and "mcp-access-proxy login mon" in text_of(result), text_of(result)
    calls = calls_of(aproxy.audit_records())
    # Not `upstream_unavailable` after waiting for a connection that cannot succeed without a sign-in.
    assert [(c["outcome"], c.get("error.type")) for c in calls] == [("ok", None), ("error", "sign_in_required")]
