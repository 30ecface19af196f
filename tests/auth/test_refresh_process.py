"""Tokens over time, through the real proxy processes: refresh before expiry, refresh after the vendor
rejects a token, rotation shared by two processes refreshing at the same moment, and a revoked grant."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tests._support.auth import AuthProxy
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def call(client: Any, name: str = "pd_get_current_user") -> str:
    with anyio.fail_after(90):
        result = await client.call_tool(name, {})
    assert not result.is_error, text_of(result)
    return text_of(result)


def login(aproxy: AuthProxy, *, expires_in: int) -> None:
    aproxy.sandbox.oauth.expires_in = expires_in
    done = aproxy.run("login", "pd")
    assert done.returncode == 0, done.stderr
    aproxy.sandbox.oauth.expires_in = 3600


async def test_a_token_due_for_refresh_is_refreshed_before_the_call_once(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    login(aproxy, expires_in=1)  # due at once: less than the 30 s margin is left
    async with aproxy.client() as client:
        assert "alice@example.com" in await call(client)
        await call(client, "pd_list_incidents")
    server = aproxy.sandbox.oauth
    assert server.issued["refresh_token"] == 1 and server.issued["refresh_refused"] == 0
    events = [r["event_name"] for r in aproxy.audit_records()]
    assert events.count("auth.refreshed") == 1, events
    aproxy.assert_no_secret_leaked()


async def test_a_token_the_vendor_rejects_is_refreshed_and_the_call_retried(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    login(aproxy, expires_in=3600)
    async with aproxy.client() as client:
        await call(client)
        aproxy.sandbox.oauth.expire_access_tokens()  # the emulator now answers 401 to the token
        assert "alice@example.com" in await call(client)
    assert aproxy.sandbox.oauth.issued["refresh_token"] == 1
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1  # no new sign-in was needed


async def test_two_processes_refreshing_at_the_same_moment_refresh_once(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    login(aproxy, expires_in=1)
    server = aproxy.sandbox.oauth
    server.refresh_delay = 1.0  # the first refresh is still running when the second process wants one
    async with aproxy.client() as first, aproxy.client() as second:
        results: list[str] = []

        async def one(client: Any) -> None:
            results.append(await call(client))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first)
            tg.start_soon(one, second)
        assert len(results) == 2 and all("alice@example.com" in r for r in results)
        assert server.issued["refresh_token"] == 1 and server.issued["refresh_refused"] == 0
        # Both keep working, and the stored refresh token is the live one: a rejected token refreshes again.
        server.expire_access_tokens()
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first)
            tg.start_soon(one, second)
        assert len(results) == 4
        assert server.issued["refresh_token"] == 2 and server.issued["refresh_refused"] == 0
    assert server.issued["authorization_code"] == 1
    aproxy.assert_no_secret_leaked()


async def test_a_revoked_grant_leads_to_a_new_sign_in_not_a_crash(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    login(aproxy, expires_in=3600)
    server = aproxy.sandbox.oauth
    async with aproxy.client() as client:
        await call(client)
        server.revoke_all()  # "Revoke All Tokens" on the app: access and refresh tokens die
        server.deny_consent = True
        with anyio.fail_after(90):
            refused = await client.call_tool("pd_get_current_user", {})
        assert refused.is_error and "declined" in text_of(refused)
        server.deny_consent = False
        assert "alice@example.com" in await call(client)  # the next call signs in again
        await call(client)
    assert server.issued["refresh_refused"] == 1  # refused once, then forgotten: no retry loop
    assert server.issued["authorization_code"] == 2
    events = [r["event_name"] for r in aproxy.audit_records()]
    assert "auth.refresh_failed" in events and "auth.signed_in" in events, events
    aproxy.assert_no_secret_leaked()


async def test_tokens_obtained_at_run_time_are_redacted_from_audit_records(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    login(aproxy, expires_in=1)
    server = aproxy.sandbox.oauth
    server.token_prefixes, server.token_bytes = ("at.", "rt."), 15  # no shape the redactor would recognise
    async with aproxy.client() as client:
        await call(client)  # refreshes inside serve: tokens that only this process and the vendor know
        assert server.issued["refresh_token"] == 1
        with server.lock:
            access, refresh = list(server.access)[-1], list(server.refresh)[-1]
        # A model that somehow got hold of them and passes them on (pasted from a log, say).
        with anyio.fail_after(60):
            await client.call_tool("pd_add_incident_note",
                                   {"id": "PINCIDENT1", "content": f"notes: {access} / {refresh}"})
    (record,) = [r for r in aproxy.audit_records() if r.get("gen_ai.tool.name") == "pd_add_incident_note"
                 and r["event_name"] == "mcp.tool.call"]
    content = record["gen_ai.tool.call.arguments"]["content"]
    assert access not in content and refresh not in content and content.count("[REDACTED]") == 2, content
    aproxy.assert_no_secret_leaked()
