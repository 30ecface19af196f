"""The sandbox OAuth server's consent page (`consent_page = True`, for the real-browser tests): a form with Allow
and Deny, decided once, the redirect only after the click; without it the server approves at once, as the
stand-in browser needs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mcp.client.auth.oauth2 import PKCEParameters

from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthClient, OAuthServer, create_app

REDIRECT = "http://localhost:8976/callback"


@pytest.fixture
def env() -> Any:
    server = OAuthServer()
    server.add_client(OAuthClient("classic<b>", (REDIRECT,)))
    running = serve_in_thread(create_app(server))
    http = httpx.Client(base_url=running.url, follow_redirects=False, timeout=10)
    yield server, http
    http.close()
    running.stop()


def authorize(http: httpx.Client, **extra: str) -> httpx.Response:
    params = {"client_id": "classic<b>", "redirect_uri": REDIRECT, "response_type": "code", "state": "st",
              "code_challenge": PKCEParameters.generate().code_challenge, "code_challenge_method": "S256",
              "scope": "read write bogus", **extra}
    return http.get("/oauth/authorize", params=params)


def consent_id(page: httpx.Response) -> str:
    match = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def answer(http: httpx.Client, consent: str, decision: str) -> httpx.Response:
    return http.post("/oauth/authorize", data={"consent": consent, "decision": decision})


def test_without_the_page_the_server_approves_at_once(env: Any) -> None:
    server, http = env
    response = authorize(http)
    assert response.status_code == 302 and "code=" in response.headers["location"]
    assert server.consents == [] and server.issued["authorization_code"] == 0 and len(server.all_codes) == 1


def test_the_page_shows_the_app_and_scopes_and_redirects_only_after_allow(env: Any) -> None:
    server, http = env
    server.consent_page = True
    page = authorize(http)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="approve"' in page.text and 'id="deny"' in page.text and ">Allow<" in page.text
    assert "classic&lt;b&gt;" in page.text and "<li>read</li><li>write</li>" in page.text  # escaped; known scopes
    assert "bogus" not in page.text and server.all_codes == []  # no code before the click
    allowed = answer(http, consent_id(page), "allow")
    assert allowed.status_code == 303
    query = parse_qs(urlsplit(allowed.headers["location"]).query)
    assert allowed.headers["location"].startswith(REDIRECT + "?")
    assert query["state"] == ["st"] and query["code"] == server.all_codes
    assert server.consents == ["allow"]


def test_deny_redirects_with_access_denied_and_a_page_is_answered_once(env: Any) -> None:
    server, http = env
    server.consent_page = True
    consent = consent_id(authorize(http))
    denied = answer(http, consent, "deny")
    assert denied.status_code == 303
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st"] and "code" not in query
    again = answer(http, consent, "allow")  # the same page posted again: refused, no code
    assert again.status_code == 400 and "start the sign-in again" in again.text
    assert server.all_codes == [] and server.consents == ["deny"]


def test_a_bad_request_is_refused_before_any_page(env: Any) -> None:
    server, http = env
    server.consent_page = True
    assert authorize(http, redirect_uri="http://localhost:1/other").status_code == 400
    no_pkce = authorize(http, code_challenge_method="plain")
    assert no_pkce.status_code == 302 and "error=invalid_request" in no_pkce.headers["location"]
    assert server.consent_desk.pending == {}
