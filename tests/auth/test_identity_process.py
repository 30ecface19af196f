"""The email PagerDuty confirms at sign-in is the user of audit records (and of policy decisions), from
the sign-in on and in every later process; a difference from `[user] email` is said once."""

from __future__ import annotations

import anyio
import pytest

from tests._support.auth import AuthProxy
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio

WARNING = "confirms you as bob@example.com, but [user] email is alice@example.com"


async def test_the_vendor_confirmed_email_is_the_audit_user_now_and_after_a_restart(aproxy: AuthProxy) -> None:
    aproxy.sandbox.oauth.user_id = "PBOB002"  # bob signs in, on a laptop configured for alice
    aproxy.write_pd()
    async with aproxy.client() as client:
        with anyio.fail_after(90):
            first = await client.call_tool("pd_get_current_user", {})
            await client.call_tool("pd_list_incidents", {})
        assert "bob@example.com" in text_of(first)
    assert aproxy.stderr_text().count(WARNING) == 1
    async with aproxy.client() as client:  # a new process: the stored identity applies from the start
        with anyio.fail_after(60):
            result = await client.call_tool("pd_list_incidents", {})
        assert not result.is_error
    assert "signed in as bob@example.com (from the last sign-in)" in aproxy.stderr_text()
    assert aproxy.stderr_text().count(WARNING) == 2  # once per process
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1
    # The commands decide for the same user as serve does.
    assert "upstream tools exposed to bob@example.com" in aproxy.run("doctor", "--offline").stdout
    records = aproxy.audit_records()
    assert records, "serve keeps its audit records on disk"
    calls = [r for r in records if r["event_name"] == "mcp.tool.call"]
    signed = [r for r in records if r["event_name"] == "auth.signed_in"]
    assert len(signed) == 1 and signed[0]["user.email"] == "bob@example.com" and signed[0]["upstream"] == "pd"
    # The call that started the sign-in is recorded after it, as bob; so is everything later.
    assert [r["user.email"] for r in calls] == ["bob@example.com"] * 3
