"""Sign-in through the real proxy process: a PagerDuty tool called before sign-in starts it (the stand-in
browser follows the authorization URL to the loopback callback), and the call then runs with the user's
token. Refusals (consent denied, forged state, busy port, no keychain) end as readable tool errors."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import mcp_types as types
import pytest

from tests._support.auth import AuthProxy, open_in_stand_in_browser
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


async def call(client: Any, name: str = "pd_get_current_user", **arguments: Any) -> types.CallToolResult:
    with anyio.fail_after(90):
        return await client.call_tool(name, arguments)


async def test_a_tool_call_starts_sign_in_and_then_runs_as_the_user(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    async with aproxy.client() as client:
        result = await call(client)
        assert not result.is_error, text_of(result)
        assert "alice@example.com" in text_of(result)
        again = await call(client, "pd_list_incidents")
        assert not again.is_error, text_of(again)
    server = aproxy.sandbox.oauth
    assert server.issued["authorization_code"] == 1 and server.issued["refresh_token"] == 0
    request = server.authorize_requests[0]
    assert request["code_challenge_method"] == "S256" and len(request["code_challenge"]) == 43
    assert request["scope"] == "read write" and request["redirect_uri"] == aproxy.sandbox.redirect_uri
    meta = (aproxy.home / "data" / "tokens" / "pd.json").read_text()
    assert "alice@example.com" in meta
    aproxy.assert_no_secret_leaked()
    events = [r["event_name"] for r in aproxy.audit_records()]
    assert "auth.signed_in" in events, events


async def test_url_mode_elicitation_is_used_when_the_client_declares_it(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    asked: list[Any] = []

    async def elicit(_context: Any, params: Any) -> types.ElicitResult:
        asked.append(params)
        # The user's client opens the URL; the stand-in browser follows it.
        await anyio.to_thread.run_sync(open_in_stand_in_browser, params.url)
        return types.ElicitResult(action="accept")

    # BROWSER fails: had the proxy opened a browser itself, the call would report that no browser could open.
    async with aproxy.client(env=aproxy.env(BROWSER="false"), elicitation_callback=elicit) as client:
        result = await call(client)
    assert not result.is_error, text_of(result)
    assert len(asked) == 1 and asked[0].mode == "url"
    assert asked[0].url.startswith(f"{aproxy.sandbox.oauth_http.url}/oauth/authorize?")


async def test_declined_elicitation_is_an_error_that_names_login(aproxy: AuthProxy) -> None:
    aproxy.write_pd()

    async def decline(_context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with aproxy.client(elicitation_callback=decline) as client:
        result = await call(client)
    assert result.is_error
    assert "declined" in text_of(result) and "mcp-access-proxy login pd" in text_of(result)


async def test_denied_consent_is_reported_and_nothing_is_stored(aproxy: AuthProxy) -> None:
    aproxy.sandbox.oauth.deny_consent = True
    aproxy.write_pd()
    async with aproxy.client() as client:
        result = await call(client)
        assert result.is_error
        text = text_of(result)
        assert "declined" in text and "Allow" in text and "login pd" in text
        aproxy.sandbox.oauth.deny_consent = False
        retry = await call(client)  # the process is fine: the next call signs in
        assert not retry.is_error, text_of(retry)
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1


async def test_a_forged_state_is_refused(aproxy: AuthProxy) -> None:
    aproxy.sandbox.oauth.tamper_state = True
    aproxy.write_pd()
    # The forged response does not end the sign-in (the genuine one may still come): the call waits its full
    # time, shortened here, and then says what was refused.
    async with aproxy.client(env=aproxy.env(MCP_ACCESS_PROXY_SIGN_IN_WAIT="4")) as client:
        result = await call(client)
    assert result.is_error and "state mismatch" in text_of(result)
    assert "did not complete within 4 s" in text_of(result)
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 0  # the code was never exchanged
    assert not (aproxy.home / "data" / "tokens" / "pd.json").exists()


async def test_a_busy_callback_port_is_named_with_the_fix(aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", aproxy.sandbox.port))
    blocker.listen(1)
    try:
        async with aproxy.client() as client:
            result = await call(client)
            assert result.is_error
            text = text_of(result)
            assert f"port {aproxy.sandbox.port}" in text and "redirect_uri" in text and "already in use" in text
            blocker.close()
            retry = await call(client)  # not a crash: once the port is free, sign-in works
            assert not retry.is_error, text_of(retry)
    finally:
        blocker.close()


async def test_without_a_keychain_backend_the_call_says_how_to_opt_in_to_the_file_store(aproxy: AuthProxy) -> None:
    text = aproxy.write_pd().read_text().replace('store = "file"', 'store = "keyring"')
    aproxy.config.write_text(text)
    env = aproxy.env(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    async with aproxy.client(env=env) as client:
        result = await call(client)
    assert result.is_error
    assert '[secrets] store = "file"' in text_of(result)
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 0  # refused before the user signs in


async def test_two_processes_needing_sign_in_share_one(aproxy: AuthProxy) -> None:
    aproxy.sandbox.oauth.authorize_delay = 2.0  # the user is still on the consent page when the second asks
    aproxy.write_pd()
    async with aproxy.client() as first, aproxy.client() as second:
        results: list[Any] = []

        async def one(client: Any, delay: float) -> None:
            await anyio.sleep(delay)
            results.append(await call(client))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first, 0.0)
            tg.start_soon(one, second, 0.5)
    assert len(results) == 2 and all(not r.is_error for r in results), [text_of(r) for r in results]
    assert len(aproxy.sandbox.oauth.authorize_requests) == 1  # one browser sign-in, one listener
    assert aproxy.sandbox.oauth.issued["authorization_code"] == 1
    assert "another proxy process is signing in to pd; waiting for it" in aproxy.stderr_text()
