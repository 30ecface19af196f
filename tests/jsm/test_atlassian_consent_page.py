"""The Atlassian stand-in's consent page (`consent_page = True`, for the real-browser tests), answered with form
posts as a browser would: it shows the app, the user, the scopes and, when the account has several sites, a site
picker; Allow grants the chosen site only, Deny redirects with access_denied, a page is answered once. Without the
page the stand-in approves at once on every site, as the stand-in browser needs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_proxy.sandbox.jsm import seed
from tests._support.atlassian import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLOUD_ID,
    OTHER_SITE,
    AtlassianSandbox,
    atlassian_sandbox,
)


@pytest.fixture
def atl() -> Iterator[tuple[AtlassianSandbox, httpx.Client]]:
    with atlassian_sandbox() as box, httpx.Client(base_url=box.url, follow_redirects=False, timeout=10) as http:
        yield box, http


def authorize(box: AtlassianSandbox, http: httpx.Client) -> httpx.Response:
    params = {"audience": "api.atlassian.com", "client_id": CLIENT_ID, "redirect_uri": box.redirect_uri,
              "response_type": "code", "prompt": "consent", "state": "st<1>",
              "scope": "read:ops-alert:jira-service-management read:me offline_access write:jira-work"}
    return http.get("/authorize", params=params)


def consent_id(page: httpx.Response) -> str:
    match = re.search(r'name="consent" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def answer(http: httpx.Client, consent: str, decision: str, **extra: str) -> httpx.Response:
    return http.post("/authorize", data={"consent": consent, "decision": decision, **extra})


def redirect_query(response: httpx.Response, box: AtlassianSandbox) -> dict[str, list[str]]:
    location = response.headers["location"]
    assert location.startswith(box.redirect_uri + "?"), location
    return parse_qs(urlsplit(location).query)


def sites_reached_with(http: httpx.Client, box: AtlassianSandbox, code: str) -> list[Any]:
    """Exchange the code as the proxy does, and list the sites the token reaches."""
    tokens = http.post("/oauth/token", json={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                             "client_secret": CLIENT_SECRET, "code": code,
                                             "redirect_uri": box.redirect_uri})
    assert tokens.status_code == 200, tokens.text
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    listed = http.get("/oauth/token/accessible-resources", headers=bearer)
    assert listed.status_code == 200, listed.text
    return [s["url"] for s in listed.json()]


def test_without_the_page_the_user_approves_at_once_on_every_site(atl: Any) -> None:
    box, http = atl
    box.add_site()
    response = authorize(box, http)
    assert response.status_code == 302
    query = redirect_query(response, box)
    assert query["state"] == ["st<1>"] and box.oauth.consents == []
    assert sites_reached_with(http, box, query["code"][0]) == [f"https://{seed.SITE}", f"https://{OTHER_SITE}"]


def test_the_page_shows_app_user_scopes_and_a_site_picker_and_allow_grants_the_chosen_site(atl: Any) -> None:
    box, http = atl
    box.oauth.consent_page = True
    box.add_site()
    page = authorize(box, http)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "MCP Access Proxy (sandbox)" in text and "Alice Atlassian (alice@example.com)" in text
    # Only the scopes the app has; the others are not offered.
    assert ("<li>read:ops-alert:jira-service-management</li><li>read:me</li><li>offline_access</li>" in text)
    assert "write:jira-work" not in text
    assert '<select id="site" name="site" required><option value="" selected>Choose a site</option>' in text
    assert f'<option value="{seed.CLOUD_ID}">{seed.SITE}</option>' in text
    assert f'<option value="{OTHER_CLOUD_ID}">{OTHER_SITE}</option>' in text
    assert 'id="approve"' in text and ">Allow<" in text and 'id="deny"' in text
    assert "code=" not in text and box.oauth.codes == {}  # no code before the click
    consent = consent_id(page)
    no_site = answer(http, consent, "allow")  # Allow without choosing: refused, the page stays open
    assert no_site.status_code == 400 and "Choose the site" in no_site.text
    not_offered = answer(http, consent, "allow", site="00000000-0000-4000-8000-000000000000")
    assert not_offered.status_code == 400 and box.oauth.consents == []
    allowed = answer(http, consent, "allow", site=OTHER_CLOUD_ID)
    assert allowed.status_code == 303
    query = redirect_query(allowed, box)
    assert query["state"] == ["st<1>"] and box.oauth.consents == ["allow"]
    assert sites_reached_with(http, box, query["code"][0]) == [f"https://{OTHER_SITE}"]
    assert box.oauth.granted_sites == {OTHER_CLOUD_ID}


def test_one_site_is_shown_without_a_picker(atl: Any) -> None:
    box, http = atl
    box.oauth.consent_page = True
    page = authorize(box, http)
    assert f"Use app on: <b>{seed.SITE}</b>" in page.text and "<select" not in page.text
    allowed = answer(http, consent_id(page), "allow", site=seed.CLOUD_ID)
    assert allowed.status_code == 303
    assert sites_reached_with(http, box, redirect_query(allowed, box)["code"][0]) == [f"https://{seed.SITE}"]


def test_deny_redirects_with_access_denied_and_a_page_is_answered_once(atl: Any) -> None:
    box, http = atl
    box.oauth.consent_page = True
    box.add_site()
    consent = consent_id(authorize(box, http))
    denied = answer(http, consent, "deny")  # no site needed to decline
    assert denied.status_code == 303
    query = redirect_query(denied, box)
    assert query["error"] == ["access_denied"] and query["state"] == ["st<1>"] and "code" not in query
    again = answer(http, consent, "allow", site=seed.CLOUD_ID)
    assert again.status_code == 400 and "start the sign-in again" in again.text
    assert box.oauth.consents == ["deny"] and box.oauth.codes == {} and box.oauth.granted_sites == set()
