"""The emulator's own rules, seen over raw HTTP: auth, scopes, version, From, rate-limit headers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests._support.pagerduty import ACCOUNT_KEY, USER_KEY, Sandbox

pytestmark = pytest.mark.anyio
V2 = "application/vnd.pagerduty+json;version=2"


async def _get(pd: Sandbox, path: str, auth: str, accept: str = V2, **kw) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pd.url) as client:
        return await client.request(kw.pop("method", "GET"), path, headers={"Authorization": auth, "Accept": accept,
                                                                            **kw.pop("headers", {})}, **kw)


async def test_auth_shapes(pd: Sandbox) -> None:
    assert (await _get(pd, "/teams", f"Token token={ACCOUNT_KEY}")).status_code == 200
    for auth in (ACCOUNT_KEY, f"Token {ACCOUNT_KEY}", "Token token=wrong", "Bearer nope", ""):
        answer = await _get(pd, "/teams", auth)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == 2006, auth


async def test_bearer_needs_a_validator(pd_factory: Callable[..., Sandbox]) -> None:
    pd = pd_factory(bearer_validator=None)
    assert (await _get(pd, "/teams", "Bearer pdus+_0XAliceAllScopes00001")).status_code == 401


async def test_classic_read_scope_reads_but_cannot_write(pd_factory: Callable[..., Sandbox]) -> None:
    pd = pd_factory(bearer_validator=lambda t: {"user_id": "PCAROL3", "scopes": ["read"]} if t == "r" else None)
    assert (await _get(pd, "/oncalls", "Bearer r")).status_code == 200
    answer = await _get(pd, "/incidents/1001/notes", "Bearer r", method="POST", json={"note": {"content": "x"}})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == 2010
    assert "incidents.write" in answer.json()["error"]["errors"][0]
    pd.allow("missing required header 'From'")


async def test_other_api_versions_are_refused(pd: Sandbox) -> None:
    answer = await _get(pd, "/teams", f"Token token={ACCOUNT_KEY}", accept="application/vnd.pagerduty+json;version=1")
    assert answer.status_code == 406
    pd.allow("not the version-2 media type")
    pd.allow("status not declared")


async def test_from_rules(pd: Sandbox) -> None:
    change = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    answer = await _get(pd, "/incidents/1001", f"Token token={ACCOUNT_KEY}", method="PUT", json=change)
    assert answer.status_code == 400 and answer.json()["error"] == {
        "message": 'You must specify a user\'s email address in the "From" header to perform this action',
        "code": 2016}
    answer = await _get(pd, "/incidents/1001", f"Token token={ACCOUNT_KEY}", method="PUT", json=change,
                        headers={"From": "nobody@example.com"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 2001
    answer = await _get(pd, "/incidents/1001", f"Token token={USER_KEY}", method="PUT", json=change)
    assert answer.status_code == 200  # a user key acts as its user
    assert pd.emulator.incidents["Q0CHECKOUT1001"]["acknowledgements"][0]["acknowledger"]["id"] == "PALICE1"
    pd.allow("missing required header 'From'")


async def test_rate_limit_headers(pd_factory: Callable[..., Sandbox]) -> None:
    pd = pd_factory(rate_limit=True)
    pd.emulator.ratelimit_reset = 17
    answer = await _get(pd, "/teams", f"Token token={ACCOUNT_KEY}")
    assert answer.status_code == 429 and answer.headers["ratelimit-reset"] == "17"
    assert answer.headers["ratelimit-remaining"] == "0" and answer.json()["error"]["code"] == 2020


def test_unseeded_emulator_has_only_key_users() -> None:
    from mcp_proxy.sandbox.pagerduty import create_app

    emulator = create_app(api_keys={"k": "zoe@example.com", "a": None}, seed=False).state.emulator
    assert [u["email"] for u in emulator.users.values()] == ["zoe@example.com"] and not emulator.incidents
