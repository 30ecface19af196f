"""PagerDuty's hosted MCP server through the real proxy with an API key: `Authorization: Token token=<key>`,
its consolidated tools exposed as `pd_<tool>`, calls acting as the key's user on the account's state, and
the clear messages when the key is refused (401) or the account may not use the server (403)."""

from __future__ import annotations

import json

import anyio
import pytest

from mcp_proxy.sandbox import pagerduty_mcp
from tests._support.audit import home_paths, spool_records
from tests._support.pd_hosted import ACCOUNT_KEY, HOSTED_TOOLS, USER_KEY, check_every_exchange, hosted_upstream
from tests._support.proxy import ProxyEnv, text_of

pytestmark = pytest.mark.anyio


async def call(client, name: str, request: dict):
    with anyio.fail_after(40):
        return await client.call_tool(name, {"request": request})


async def test_tools_are_exposed_and_calls_run_as_the_keys_user(proxy: ProxyEnv, hosted: pagerduty_mcp.Sandbox):
    proxy.write({"pd": hosted_upstream(hosted)})
    async with proxy.client(env=proxy.env(PD_TEST_KEY=USER_KEY)) as client:
        with anyio.fail_after(30):
            names = {t.name for t in (await client.list_tools()).tools}
        assert {f"pd_{t}" for t in HOSTED_TOOLS} <= names
        me = await call(client, "pd_browse_users", {"action": "get"})
        assert not me.is_error and json.loads(text_of(me))["email"] == "alice@example.com"
        listed = await call(client, "pd_browse_incidents", {"action": "list", "statuses": ["triggered"], "limit": 2})
        assert not listed.is_error and json.loads(text_of(listed))["response_summary"].startswith("2 of ")
        note = await call(client, "pd_manage_incidents", {"action": "add_note", "incident_id": "Q0CHECKOUT1001",
                                                           "note": "Rolled back the deploy."})
        assert not note.is_error, text_of(note)
    [added] = [n for n in hosted.emulator.notes["Q0CHECKOUT1001"] if n["content"] == "Rolled back the deploy."]
    assert added["user"]["id"] == "PALICE1"
    posts = [e for e in hosted.stand_in.log if e["method"] == "POST"]
    assert posts and all(e["auth"] == "token" for e in posts)  # Token token=<key> on every request
    assert check_every_exchange(hosted.stand_in) == 3
    records = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "mcp.tool.call"]
    assert {r["gen_ai.tool.name"] for r in records} == {"pd_browse_users", "pd_browse_incidents",
                                                        "pd_manage_incidents"}
    assert USER_KEY not in proxy.stderr_text()


async def test_an_account_key_can_read_but_writes_need_a_user(proxy: ProxyEnv, hosted: pagerduty_mcp.Sandbox):
    proxy.write({"pd": hosted_upstream(hosted)})
    async with proxy.client(env=proxy.env(PD_TEST_KEY=ACCOUNT_KEY)) as client:
        listed = await call(client, "pd_browse_services", {"action": "list"})
        assert not listed.is_error, text_of(listed)
        note = await call(client, "pd_manage_incidents", {"action": "add_note", "incident_id": "Q0CHECKOUT1001",
                                                           "note": "x"})
        assert note.is_error and "user-level" in text_of(note)


async def test_a_refused_key_is_named_with_the_fix(proxy: ProxyEnv, hosted: pagerduty_mcp.Sandbox):
    proxy.write({"pd": hosted_upstream(hosted)})
    async with proxy.client(env=proxy.env(PD_TEST_KEY="wrongkey123")) as client:
        result = await call(client, "pd_browse_users", {"action": "get"})
    text = text_of(result)
    assert result.is_error and "HTTP 401" in text and "refused the API key" in text
    assert "PD_TEST_KEY" in text and "Token token=" in text


async def test_an_account_not_allowed_to_use_the_server_gets_a_clear_message(proxy: ProxyEnv,
                                                                              hosted: pagerduty_mcp.Sandbox):
    hosted.stand_in.refuse_access = "This account does not have access to the PagerDuty MCP server."
    proxy.write({"pd": hosted_upstream(hosted)})
    async with proxy.client(env=proxy.env(PD_TEST_KEY=USER_KEY)) as client:
        result = await call(client, "pd_browse_users", {"action": "get"})
        text = text_of(result)
        assert result.is_error and "HTTP 403" in text and "not allowed to use the MCP server" in text
        assert "does not have access to the PagerDuty MCP server" in text  # PagerDuty's own words
        assert "account admin" in text and "Signing in again will not change that" in text
        # Once the account is allowed, the proxy reconnects by itself.
        hosted.stand_in.refuse_access = None
        with anyio.fail_after(60):
            while (await call(client, "pd_browse_users", {"action": "get"})).is_error:
                await anyio.sleep(0.5)
