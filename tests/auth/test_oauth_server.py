"""The sandbox OAuth server enforces what PagerDuty enforces, so the proxy's flow is tested against the
real rules: exact redirect URIs, PKCE, 30-second single-use codes, rotation, scope reporting, the ID token."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from mcp.client.auth.oauth2 import PKCEParameters

from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.oauth_server import REDIRECT_ERROR, OAuthClient, OAuthServer, create_app

REDIRECT = "http://localhost:8976/callback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env() -> Any:
    clock = Clock()
    server = OAuthServer(clock=clock, region="eu")
    server.add_client(OAuthClient("classic", (REDIRECT,)))
    server.add_client(OAuthClient("scoped", (REDIRECT,), secret="s3cret", scoped=True))
    running = serve_in_thread(create_app(server))
    http = httpx.Client(base_url=running.url, follow_redirects=False, timeout=10)
    yield server, http, clock
    http.close()
    running.stop()


def authorize(http: httpx.Client, pkce: PKCEParameters, client_id: str = "classic", scope: str = "read write",
              redirect_uri: str = REDIRECT, **extra: str) -> httpx.Response:
    params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "state": "st",
              "code_challenge": pkce.code_challenge, "code_challenge_method": "S256", "scope": scope, **extra}
    return http.get("/oauth/authorize", params=params)


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st"]
    return query["code"][0]


def exchange(http: httpx.Client, code: str, verifier: str, client_id: str = "classic", **extra: str) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": client_id, "code": code,
                                           "redirect_uri": REDIRECT, "code_verifier": verifier, **extra})


def test_redirect_uri_must_match_exactly(env: Any) -> None:
    _server, http, _clock = env
    pkce = PKCEParameters.generate()
    for wrong in ("http://localhost:8977/callback", "http://127.0.0.1:8976/callback", REDIRECT + "/", ""):
        response = authorize(http, pkce, redirect_uri=wrong)
        assert response.status_code == 400 and REDIRECT_ERROR in response.text
    assert authorize(http, pkce, client_id="nobody").status_code == 400


def test_code_exchange_enforces_pkce_single_use_and_30_seconds(env: Any) -> None:
    server, http, clock = env
    pkce = PKCEParameters.generate()
    code = code_of(authorize(http, pkce))
    wrong = exchange(http, code, PKCEParameters.generate().code_verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = code_of(authorize(http, pkce))
    ok = exchange(http, code, pkce.code_verifier)
    assert ok.status_code == 200
    reused = exchange(http, code, pkce.code_verifier)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    late = code_of(authorize(http, pkce))
    clock.now += 31
    expired = exchange(http, late, pkce.code_verifier)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]
    no_pkce = authorize(http, pkce, code_challenge_method="plain")
    assert "error=invalid_request" in no_pkce.headers["location"]
    assert server.issued["authorization_code"] == 1


def test_token_response_scopes_and_id_token(env: Any) -> None:
    _server, http, _clock = env
    pkce = PKCEParameters.generate()
    body = exchange(http, code_of(authorize(http, pkce, scope="read nonsense")), pkce.code_verifier).json()
    assert body["token_type"] == "bearer" and body["scope"] == "openid read"  # unknown scopes dropped silently
    assert body["access_token"].startswith("pdus+_0") and body["refresh_token"].startswith("pdus+_1")
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["aud"] == ["https://api.eu.pagerduty.com", "classic"] and claims["region"] == "EU"


def test_refresh_rotates_and_the_old_refresh_token_is_dead(env: Any) -> None:
    server, http, _clock = env
    pkce = PKCEParameters.generate()
    first = exchange(http, code_of(authorize(http, pkce)), pkce.code_verifier).json()
    refreshed = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": "classic",
                                                "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != first["refresh_token"]
    again = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": "classic",
                                            "refresh_token": first["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert "already used" in again.json()["error_description"]
    assert server.bearer_validator(refreshed.json()["access_token"])["user_id"] == "PALICE1"
    server.expire_access_tokens()
    assert server.bearer_validator(refreshed.json()["access_token"]) is None


def test_scoped_apps_need_their_secret(env: Any) -> None:
    _server, http, _clock = env
    pkce = PKCEParameters.generate()
    code = code_of(authorize(http, pkce, client_id="scoped", scope="incidents.read read"))
    refused = exchange(http, code, pkce.code_verifier, client_id="scoped")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    code = code_of(authorize(http, pkce, client_id="scoped", scope="incidents.read read"))
    body = exchange(http, code, pkce.code_verifier, client_id="scoped", client_secret="s3cret").json()
    assert body["scope"] == "openid incidents.read"  # classic scopes mean nothing to a scoped app


def test_denied_consent_and_revocation(env: Any) -> None:
    server, http, _clock = env
    pkce = PKCEParameters.generate()
    server.deny_consent = True
    assert "error=access_denied" in authorize(http, pkce).headers["location"]
    server.deny_consent = False
    body = exchange(http, code_of(authorize(http, pkce)), pkce.code_verifier).json()
    assert http.post("/oauth/revoke", data={"client_id": "classic", "token": body["refresh_token"]}).status_code == 200
    dead = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": "classic",
                                           "refresh_token": body["refresh_token"]})
    assert dead.json()["error"] == "invalid_grant"
    assert server.log and body["refresh_token"] not in str(server.log)  # the log keeps form keys, not values
