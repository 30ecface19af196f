"""Every outbound client the proxy builds (policy source, audit shipper, OAuth token and revocation endpoints,
REST connectors) against two real local servers: a redirect to another origin is refused with a message that
names both origins and no header value, and no credential ever reaches the second server."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.config import SecretRef
from mcp_proxy.paths import Paths
from mcp_proxy.policy.signature import generate_key_pair
from tests._support.policy_docs import make_doc
from tests._support.policy_engine import Clock, Harness, Keys
from tests._support.redirects import Origin, origins

pytestmark = pytest.mark.anyio

TOKEN = "policy-bearer-0123456789abcdef"
API_KEY = "policy-api-key-0123456789abcdef"


@pytest.fixture(scope="module")
def keys() -> Keys:
    ed = generate_key_pair("EdDSA")
    other = generate_key_pair("EdDSA")
    return Keys(ed[0], ed[1].decode(), ed[0], ed[1].decode(), other[0], other[1].decode())


@pytest.fixture
def harness(tmp_path) -> Harness:
    root = tmp_path / "home"
    return Harness(Paths(root / "config", root / "data", root / "cache", root / "logs"), Clock())


@pytest.fixture
def credentials(monkeypatch) -> dict[str, SecretRef]:
    monkeypatch.setenv("REDIRECT_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("REDIRECT_TEST_KEY", API_KEY)
    return {"Authorization": SecretRef("env", "REDIRECT_TEST_TOKEN", "policy.headers.Authorization"),
            "X-API-Key": SecretRef("env", "REDIRECT_TEST_KEY", "policy.headers.X-API-Key")}


def _no_credential_reached(origin: Origin, *secrets: str) -> None:
    assert origin.requests() == [], "nothing may be sent to an origin nobody configured"
    for value in origin.header_values():
        assert all(secret not in value for secret in secrets)


# --- policy source ---------------------------------------------------------------------------------------------

async def test_a_policy_redirected_to_another_origin_is_not_activated(harness, keys, credentials):
    with origins(2) as (home, other):
        signed = keys.sign(make_doc())
        home.redirect("/policy.jws", other.url + "/policy.jws")
        other.serve("/policy.jws", signed, **{"Content-Type": "application/jose"})
        engine = harness.engine(home.url + "/policy.jws", public_keys=(keys.ed_public,), headers=credentials)
        report = await engine.sync()
        assert report.result == "failed" and engine.revision is None
        assert home.url in report.message and other.url in report.message
        assert "[policy] source" in report.message
        assert TOKEN not in report.message and API_KEY not in report.message
        assert engine.status().problem and "could not be fetched" in engine.status().problem
        assert harness.named("policy.activated") == []
        _no_credential_reached(other, TOKEN, API_KEY)
        assert home.requests()[0].headers["authorization"] == TOKEN  # the configured origin did get them


async def test_a_policy_redirect_within_its_origin_is_followed(harness, keys, credentials):
    with origins(1) as (home,):
        home.redirect("/policy.jws", "/v2/policy.jws", 301)
        home.serve("/v2/policy.jws", keys.sign(make_doc()))
        engine = harness.engine(home.url + "/policy.jws", public_keys=(keys.ed_public,), headers=credentials)
        report = await engine.sync()
        assert report.result == "activated" and engine.revision == "r1"
        assert [seen.headers.get("x-api-key") for seen in home.requests()] == [API_KEY, API_KEY]


async def test_a_policy_chain_that_leaves_the_origin_late_is_refused(harness, keys, credentials):
    with origins(2) as (home, other):
        home.redirect("/policy.jws", "/hop", 302)
        home.redirect("/hop", other.url + "/policy.jws", 308)
        other.serve("/policy.jws", keys.sign(make_doc()))
        engine = harness.engine(home.url + "/policy.jws", public_keys=(keys.ed_public,), headers=credentials)
        report = await engine.sync()
        assert report.result == "failed" and engine.revision is None and other.url in report.message
        _no_credential_reached(other, TOKEN, API_KEY)


async def test_a_policy_redirect_to_an_unreadable_location_fails_cleanly(harness, credentials):
    with origins(1) as (home,):
        home.redirect("/policy.jws", "http://[::1")
        report = await harness.engine(home.url + "/policy.jws", headers=credentials).sync()
        assert report.result == "failed" and "unreadable URL" in report.message and TOKEN not in report.message


# --- audit shipper ---------------------------------------------------------------------------------------------

async def test_the_collector_redirecting_elsewhere_pauses_shipping(tmp_path):
    from mcp_proxy.audit.transport import Sender

    with origins(2) as (home, other):
        home.redirect("/v1/logs", other.url + "/v1/logs", 307)
        other.serve("/v1/logs", b"{}")
        sender = Sender(home.url, "otlp-json", {"Authorization": f"Bearer {TOKEN}", "X-API-Key": API_KEY},
                        use_gzip=False, scrub=lambda text: text)
        try:
            outcome = await sender.send(b'{"resourceLogs": []}')
        finally:
            await sender.aclose()
        # pause, not reject: the records are fine, a fixed [audit] collector will deliver them
        assert outcome.kind == "pause"
        assert home.url in outcome.detail and other.url in outcome.detail and "[audit] collector" in outcome.detail
        assert TOKEN not in outcome.detail and API_KEY not in outcome.detail
        _no_credential_reached(other, TOKEN, API_KEY)


async def test_the_collector_redirecting_within_its_origin_is_not_followed_either(tmp_path):
    from mcp_proxy.audit.transport import Sender

    with origins(1) as (home,):
        home.redirect("/v1/logs", "/other/v1/logs", 308)
        sender = Sender(home.url, "otlp-json", {"X-API-Key": API_KEY}, use_gzip=False, scrub=lambda text: text)
        try:
            outcome = await sender.send(b'{"resourceLogs": []}')
        finally:
            await sender.aclose()
        assert outcome.kind == "pause" and "redirect" in outcome.detail
        assert [seen.path for seen in home.requests()] == ["/v1/logs"]


# --- OAuth token and revocation endpoints ---------------------------------------------------------------------

def _oauth_client(token_url: str):
    from mcp_proxy.auth.endpoint import Client

    return Client(token_url=token_url, client_id="app", client_secret="client-secret-0123456789",
                  redirect_uri="http://127.0.0.1:8976/callback")


def test_a_token_endpoint_redirecting_elsewhere_is_refused():
    from mcp_proxy.auth.endpoint import refresh
    from mcp_proxy.errors import TokenEndpointError

    with origins(2) as (home, other):
        home.redirect("/token", other.url + "/token", 307)
        other.serve("/token", json.dumps({"access_token": "a", "token_type": "Bearer"}).encode())
        with pytest.raises(TokenEndpointError) as caught:
            refresh(_oauth_client(home.url + "/token"), "refresh-token-0123456789")
        message = str(caught.value)
        assert home.url in message and other.url in message and "redirect" in message
        assert "token_url" in message and "refresh-token-0123456789" not in message
        assert not caught.value.refused  # not a dead grant: a new sign-in would not fix it
        assert other.requests() == []


def test_a_revocation_endpoint_redirecting_elsewhere_is_refused():
    from mcp_proxy.auth.endpoint import revoke

    with origins(2) as (home, other):
        home.redirect("/revoke", other.url + "/revoke", 308)
        other.serve("/revoke", b"")
        problem = revoke(home.url + "/revoke", _oauth_client(home.url + "/token"), "access-0123456789", "access_token")
        assert problem is not None and other.url in problem and "revoke_url" in problem
        assert other.requests() == []


def test_the_identity_call_does_not_follow_a_redirect():
    from mcp_proxy.auth.endpoint import fetch_identity
    from mcp_proxy.auth.providers import PROVIDERS

    provider = next(p for p in PROVIDERS.values() if p.identity_path)
    with origins(2) as (home, other):
        home.redirect(provider.identity_path, other.url + provider.identity_path, 302)
        assert fetch_identity(provider, home.url, "access-0123456789") == (None, None)
        assert other.requests() == []


# --- REST connectors ------------------------------------------------------------------------------------------

def _rest_client(base_url: str):
    import httpx

    from mcp_proxy.connectors.base import ConnectorError, Credential
    from mcp_proxy.connectors.http import RestClient, VendorProfile

    async def credential() -> Credential:
        return Credential("api_key", API_KEY)

    def error(response: httpx.Response) -> ConnectorError:
        return ConnectorError(f"Acme answered HTTP {response.status_code}", "http_status")

    profile = VendorProfile("Acme", lambda c: {"GenieKey": c.value, "X-API-Key": c.value}, error,
                            default_headers={"Cookie": f"session={TOKEN}"})
    return RestClient(profile, base_url, credential, max_retries=0)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_vendor_redirecting_elsewhere_is_refused(status):
    from mcp_proxy.connectors.base import ConnectorError

    with origins(2) as (home, other):
        home.redirect("/v2/alerts", other.url + "/v2/alerts", status)
        other.serve("/v2/alerts", b'{"data": []}')
        client = _rest_client(home.url)
        try:
            with pytest.raises(ConnectorError) as caught:
                await client.json("POST", "/v2/alerts", json={"message": "x"})
        finally:
            await client.aclose()
        assert caught.value.error_type == "redirect_refused"
        message = str(caught.value)
        assert home.url in message and other.url in message and "base_url" in message and API_KEY not in message
        _no_credential_reached(other, TOKEN, API_KEY)


async def test_a_vendor_url_on_another_origin_is_never_requested():
    from mcp_proxy.connectors.base import ConnectorError

    with origins(2) as (home, other):
        other.serve("/v2/alerts", b'{"data": []}')
        client = _rest_client(home.url)
        try:
            with pytest.raises(ConnectorError) as caught:  # an absolute URL (a vendor's `next` link) elsewhere
                await client.json("GET", other.url + "/v2/alerts")
        finally:
            await client.aclose()
        assert caught.value.error_type == "redirect_refused" and other.url in str(caught.value)
        _no_credential_reached(other, TOKEN, API_KEY)


async def test_a_connector_may_move_its_own_base_url():
    """PagerDuty follows the region of a sign-in by setting base_url: the guard moves with it."""
    from mcp_proxy.connectors.base import ConnectorError

    with origins(2) as (home, other):
        other.serve("/v2/alerts", b'{"data": []}')
        client = _rest_client(home.url)
        try:
            client.base_url = other.url + "/"
            assert await client.json("GET", "/v2/alerts") == {"data": []}
            with pytest.raises(ConnectorError, match="refused"):
                await client.json("GET", home.url + "/v2/alerts")
        finally:
            await client.aclose()
        assert [seen.headers["geniekey"] for seen in other.requests()] == [API_KEY]
        assert home.requests() == []
