"""PagerDuty's hosted MCP server with the user's own sign-in: a call before any sign-in starts the same loopback
sign-in as the REST connector (the stand-in browser completes it), the call then runs as the user with
`Authorization: Bearer`, a refused token is refreshed once and retried, and a scoped app without a tool's
scope gets the clear message while the rest keeps working."""

from __future__ import annotations

import json

import anyio
import pytest

from mcp_proxy.sandbox import pagerduty_mcp
from tests._support.auth import AuthProxy
from tests._support.pd_hosted import check_every_exchange, oauth_upstream
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def call(client, name: str, request: dict):
    with anyio.fail_after(90):
        return await client.call_tool(name, {"request": request})


async def test_a_call_signs_in_runs_as_the_user_and_survives_a_refresh(
        oauth_hosted: tuple[AuthProxy, pagerduty_mcp.Sandbox]) -> None:
    aproxy, hosted = oauth_hosted
    aproxy.write_pd(oauth_upstream(aproxy.sandbox, hosted))
    server = aproxy.sandbox.oauth
    async with aproxy.client() as client:
        with anyio.fail_after(30):
            names = {t.name for t in (await client.list_tools()).tools}
        assert "pd_manage_incidents" in names  # offered before the sign-in, so that a call can start it
        me = await call(client, "pd_browse_users", {"action": "get"})
        assert not me.is_error, text_of(me)
        assert json.loads(text_of(me))["email"] == "alice@example.com"
        assert server.issued["authorization_code"] == 1
        # The server stops accepting the token: the proxy refreshes once and retries the same request.
        server.expire_access_tokens()
        note = await call(client, "pd_manage_incidents", {"action": "add_note", "incident_id": "Q0CHECKOUT1001",
                                                           "note": "Signed in as myself."})
        assert not note.is_error, text_of(note)
        assert server.issued["refresh_token"] == 1 and server.issued["authorization_code"] == 1
    [added] = [n for n in hosted.emulator.notes["Q0CHECKOUT1001"] if n["content"] == "Signed in as myself."]
    assert added["user"]["id"] == "PALICE1"
    posts = [e for e in hosted.stand_in.log if e["method"] == "POST" and e["rpc"]]
    assert {e["auth"] for e in posts if e["status"] == 200} == {"bearer"}
    assert any(e["status"] == 401 for e in posts)  # the expired token, refused once before the refresh
    assert check_every_exchange(hosted.stand_in) >= 2
    events = [r["event_name"] for r in aproxy.audit_records()]
    assert "auth.signed_in" in events and "auth.refreshed" in events, events
    aproxy.assert_no_secret_leaked()


async def test_login_in_a_terminal_is_picked_up(oauth_hosted: tuple[AuthProxy, pagerduty_mcp.Sandbox]) -> None:
    aproxy, hosted = oauth_hosted
    aproxy.write_pd(oauth_upstream(aproxy.sandbox, hosted))
    done = aproxy.run("login", "pd")
    assert done.returncode == 0, done.stderr
    async with aproxy.client(env=aproxy.env(BROWSER="false")) as client:
        me = await call(client, "pd_browse_users", {"action": "get"})
    assert not me.is_error, text_of(me)
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1  # no second sign-in


async def test_a_scoped_app_without_a_tools_scope_is_told_so(
        oauth_hosted: tuple[AuthProxy, pagerduty_mcp.Sandbox]) -> None:
    aproxy, hosted = oauth_hosted
    aproxy.write_pd(oauth_upstream(aproxy.sandbox, hosted, client_id="scoped-desktop-app",
                                   client_secret="env:PD_CLIENT_SECRET", scopes=["incidents.read", "users.read"]))
    async with aproxy.client() as client:
        me = await call(client, "pd_browse_users", {"action": "get"})
        assert not me.is_error, text_of(me)
        note = await call(client, "pd_manage_incidents", {"action": "add_note", "incident_id": "Q0CHECKOUT1001",
                                                           "note": "x"})
        text = text_of(note)
        assert note.is_error and "HTTP 403" in text and "incidents.write" in text and "scoped OAuth app" in text
        again = await call(client, "pd_browse_incidents", {"action": "get", "incident_id": "Q0CHECKOUT1001"})
        assert not again.is_error, text_of(again)  # the session stayed
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1  # a 403 is not a reason to sign in again
