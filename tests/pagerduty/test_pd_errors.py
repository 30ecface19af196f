"""Faults: auth, the From actor, scopes, not found, rate limits, and secrets kept out of messages."""

from __future__ import annotations

import pytest

from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.connectors.pagerduty import current_user
from mcp_proxy.connectors.pagerduty.client import rate_limit_wait
from tests._support.pagerduty import ACCOUNT_KEY, TOKENS, USER_KEY, Sandbox

pytestmark = pytest.mark.anyio
READ_ONLY_TOKEN = "pdus+_0XAliceReadOnly000002"
APP_TOKEN = "pdus+_0XAppTokenNoUser00004"


async def _error(connector, name: str, args: dict) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await connector.call(name, args)
    return caught.value


async def test_401_api_key_names_the_secret_to_set(pd: Sandbox) -> None:
    wrong = "u+WrongKey0123456789"
    err = await _error(pd.connector(key=wrong), "list_incidents", {})
    assert err.error_type == "http_401"
    assert "`mcp-access-proxy secret set pagerduty`" in err.message and "upstreams.pd.api_key" in err.message
    assert "code 2006" in err.message and wrong not in err.message
    env = pd.connector(key=wrong, api_key=SecretRef("env", "PD_KEY", "upstreams.pd.api_key"))
    assert "environment variable PD_KEY" in (await _error(env, "list_teams", {})).message
    assert len(pd.requests()) == 2  # 401 is not retried


async def test_401_bearer_says_sign_in_again(pd: Sandbox) -> None:
    token = "pdus+_0XExpiredToken000099"
    c = pd.connector(key=token, scheme="bearer", auth="oauth", api_key=None)
    err = await _error(c, "get_incident", {"id": "1001"})
    assert err.error_type == "http_401" and "`mcp-access-proxy login pd`" in err.message
    assert token not in err.message
    assert pd.requests()[-1]["headers"].get("authorization") is None  # the log never holds credentials


async def test_missing_from_is_refused_before_sending(pd: Sandbox) -> None:
    for key in (ACCOUNT_KEY, USER_KEY):  # with an API key PagerDuty may not know the user: ask for `from`
        c = pd.connector(key=key, user_email=None)
        err = await _error(c, "add_incident_note", {"id": "1001", "content": "hi"})
        assert err.error_type == "missing_from"
        assert "set upstreams.pd.from (or [user] email) to the email of the PagerDuty user writes are made as" \
            in err.message
    assert pd.emulator.log == []
    bad = pd.connector(from_email="not-an-email")
    assert (await _error(bad, "acknowledge_incident", {"id": "1001"})).error_type == "missing_from"


async def test_vendor_400_for_missing_from_names_the_config_key(pd: Sandbox) -> None:
    c = pd.connector(key=APP_TOKEN, scheme="bearer", auth="oauth", user_email=None)  # an app token has no user
    err = await _error(c, "resolve_incident", {"id": "1001"})
    assert err.error_type == "missing_from" and "upstreams.pd.from" in err.message
    assert "From" in err.message and "code 2016" in err.message
    assert pd.emulator.incidents["Q0CHECKOUT1001"]["status"] == "triggered"
    assert len(pd.requests("PUT")) == 1
    pd.allow("PUT /incidents/{id}: missing required header 'From'")


async def test_403_missing_scope_names_it(pd: Sandbox) -> None:
    c = pd.connector(key=READ_ONLY_TOKEN, scheme="bearer", auth="oauth", api_key=None)
    assert (await c.call("list_incidents", {})).structured["incidents"]
    err = await _error(c, "acknowledge_incident", {"id": "1001"})
    assert err.error_type == "http_403"
    assert "'incidents.write'" in err.message and "upstreams.pd.scopes" in err.message
    assert "`mcp-access-proxy login pd`" in err.message
    err = await _error(c, "list_oncalls", {})
    assert "'oncalls.read'" in err.message and "GET /oncalls" in err.message
    me = await c.call("get_current_user", {})  # /users/me needs no scope
    assert me.structured["id"] == "PALICE1"
    assert READ_ONLY_TOKEN not in err.message


async def test_404s_say_what_was_not_found(pd: Sandbox) -> None:
    c = pd.connector()
    err = await _error(c, "get_incident", {"id": "QNOPE000000000"})
    assert err.error_type == "http_404" and "no incident with id 'QNOPE000000000'" in err.message
    assert "list_incidents" in err.message
    err = await _error(c, "add_incident_note", {"id": "QNOPE000000000", "content": "x"})
    assert "no incident with id 'QNOPE000000000'" in err.message
    err = await _error(c, "get_escalation_policy", {"id": "PNOPE01"})
    assert "no escalation policy with id 'PNOPE01'" in err.message and "list_escalation_policies" in err.message
    err = await _error(c, "list_schedule_overrides", {"id": "PNOPE02", "since": "2026-01-01T00:00:00Z",
                                                      "until": "2026-01-02T00:00:00Z"})
    assert "no schedule with id 'PNOPE02'" in err.message


async def test_400_invalid_input_shows_vendor_errors(pd: Sandbox) -> None:
    c = pd.connector()
    err = await _error(c, "reassign_incident", {"id": "1001", "user_ids": ["PNOBODY"]})
    assert err.error_type == "http_400" and "User PNOBODY not found" in err.message and "code 2001" in err.message


async def test_account_key_current_user_explains(pd: Sandbox) -> None:
    c = pd.connector(key=ACCOUNT_KEY)
    with pytest.raises(ConnectorError) as caught:
        await current_user(c)
    assert "account-level key" in caught.value.message and "user API key" in caught.value.message
    assert ACCOUNT_KEY not in caught.value.message


async def test_429_reads_are_retried_with_ratelimit_reset(pd: Sandbox) -> None:
    pd.emulator.throttled = 2
    out = await pd.connector().call("list_priorities", {})
    assert len(out.structured["priorities"]) == 5
    statuses = [e["status"] for e in pd.requests("GET", "/priorities")]
    assert statuses == [429, 429, 200]
    assert pd.requests()[0]["response_headers"]["ratelimit-reset"] == "0"
    assert pd.requests()[0]["response"] == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}


async def test_429_write_is_retried_once_accepted_and_never_twice(pd: Sandbox) -> None:
    pd.emulator.throttled = 1
    out = await pd.connector().call("add_incident_note", {"id": "1001", "content": "once"})
    assert out.structured["note"]["content"] == "once"
    assert [e["status"] for e in pd.requests("POST")] == [429, 200]
    assert [n["content"] for n in pd.emulator.notes["Q0CHECKOUT1001"]].count("once") == 1


async def test_persistent_429_gives_up_with_advice(pd_factory) -> None:
    pd = pd_factory(rate_limit=True)
    err = await _error(pd.connector(max_retries=2), "acknowledge_incident", {"id": "1001"})
    assert err.error_type == "rate_limited" and "rate limiting" in err.message
    assert len(pd.requests("PUT")) == 3  # a 429 means it did not run: safe to send again
    assert pd.emulator.incidents["Q0CHECKOUT1001"]["status"] == "triggered"


def test_rate_limit_wait_hint() -> None:
    import httpx

    assert rate_limit_wait(httpx.Response(429, headers={"ratelimit-reset": "7"})) == 7.0
    assert rate_limit_wait(httpx.Response(429, headers={"retry-after": "3"})) == 3.0
    assert rate_limit_wait(httpx.Response(429)) is None  # RestClient falls back to its backoff


async def test_5xx_on_write_is_not_retried(pd: Sandbox) -> None:
    import httpx

    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": {"message": "Service Unavailable", "code": 5000}})

    c = pd.connector(transport=httpx.MockTransport(handler))
    err = await _error(c, "resolve_incident", {"id": "1001"})
    assert len(calls) == 1 and "check it with get_incident before repeating it" in err.message
    assert calls[0].headers["authorization"] == f"Token token={ACCOUNT_KEY}"


async def test_no_credential_in_any_error(pd: Sandbox) -> None:
    """Even when the vendor echoes the key back, the model never sees it."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": f"bad header {request.headers['authorization']}",
                                                   "code": 2001, "errors": [request.headers["authorization"]]}})

    for key, scheme in ((USER_KEY, "api_key"), (list(TOKENS)[0], "bearer")):
        c = pd.connector(key=key, scheme=scheme, transport=httpx.MockTransport(handler))
        for name, args in (("list_incidents", {}), ("create_incident", {"title": "t", "service_id": "PSVC001"})):
            err = await _error(c, name, args)
            assert key not in err.message and "<redacted>" in err.message
