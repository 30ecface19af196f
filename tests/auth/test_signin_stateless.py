"""The PagerDuty sign-in that a tool call starts, asked of a client on the stateless 2026-07-28 era: the
proxy answers with an `InputRequiredResult` holding a URL elicitation, the client opens the page and
retries the call with its answer, and the call completes as the signed-in user."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest

from tests._support.auth import AuthProxy, open_in_stand_in_browser
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def test_a_stateless_client_signs_in_through_an_input_request_and_the_retry_completes(aproxy: AuthProxy):
    aproxy.write_pd()
    asked: list[Any] = []

    async def elicit(_context: Any, params: Any) -> types.ElicitResult:
        asked.append(params)
        await anyio.to_thread.run_sync(open_in_stand_in_browser, params.url)
        return types.ElicitResult(action="accept")

    # BROWSER fails: had the proxy opened a browser itself, the call would report that no browser could open.
    async with aproxy.client(env=aproxy.env(BROWSER="false"), elicitation_callback=elicit, mode="auto") as client:
        with anyio.fail_after(90):
            result = await client.call_tool("pd_get_current_user", {})
        assert not result.is_error, text_of(result)
        assert "alice@example.com" in text_of(result)
    assert len(asked) == 1 and asked[0].mode == "url"
    assert asked[0].url.startswith(f"{aproxy.sandbox.oauth_http.url}/oauth/authorize?")
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1
    aproxy.assert_no_secret_leaked()
    calls = [r for r in aproxy.audit_records() if r["event_name"] == "mcp.tool.call"]
    assert [(c["outcome"], c.get("error.type")) for c in calls] == [("error", "sign_in_required"), ("ok", None)]


async def test_a_stateless_client_that_declines_gets_a_readable_error(aproxy: AuthProxy):
    aproxy.write_pd()

    async def decline(_context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with aproxy.client(elicitation_callback=decline, mode="auto") as client:
        with anyio.fail_after(60):
            result = await client.call_tool("pd_get_current_user", {})
    assert result.is_error and "declined" in text_of(result) and "mcp-access-proxy login pd" in text_of(result)
