"""The Atlassian sign-in (OAuth 2.0 3LO) in a real headless Chromium (tests/_support/chromium.py): the real
`mcp-access-proxy login og` opens the authorization URL through `BROWSER`, Chromium loads the Atlassian stand-in's
consent page, the test picks a site and clicks Allow or Deny, Chromium follows the redirect to the proxy's loopback
listener, and the test reads what the user sees there; then the stored token, `whoami` and a call through `serve`.
Without Chromium these tests skip and say what to install; CI installs it and sets MCP_PROXY_TEST_REQUIRE_BROWSER=1,
so there they cannot skip."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from mcp_proxy.sandbox.jsm import seed
from tests._support.admin import Chromium
from tests._support.atlassian import OTHER_SITE, AtlassianProxy, AtlassianSandbox, atlassian_sandbox
from tests._support.chromium import Landing, answer_sign_in, browser_command, login_while_the_user_signs_in
from tests._support.jsm import JsmChecker
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def aproxy(tmp_path: Path, jsm_spec: JsmChecker) -> Iterator[AtlassianProxy]:
    """The proxy against the stand-in with its consent page on, for an account with two sites (so the page asks
    which one) and no `site` set: the site the user picks is the only one the token reaches."""
    with atlassian_sandbox(jsm_spec) as atl:
        atl.oauth.consent_page = True
        atl.add_site()
        proxy = AtlassianProxy(tmp_path, atl)
        proxy.write_og()
        yield proxy


def user_signs_in(browser: Chromium, opened: Path, atl: AtlassianSandbox, button: str) -> Landing:
    picks = {"#site": seed.CLOUD_ID} if button == "approve" else None  # Deny needs no site
    return answer_sign_in(browser, opened, f"{atl.url}/authorize", atl.redirect_uri, button, f"atlassian-{button}",
                          picks)


async def login_in_chromium(aproxy: AtlassianProxy, browser: Chromium, tmp_path: Path,
                            button: str) -> tuple[subprocess.CompletedProcess, Landing]:
    opened = tmp_path / "opened-urls"
    return await login_while_the_user_signs_in(
        partial(aproxy.run, "login", "og", env=aproxy.env(BROWSER=browser_command(opened)), timeout=180),
        partial(user_signs_in, browser, opened, aproxy.sandbox, button))


async def test_atlassian_login_allowed_in_chromium_on_the_chosen_site(aproxy: AtlassianProxy, browser: Chromium,
                                                                     tmp_path: Path) -> None:
    server = aproxy.sandbox.oauth
    login, landing = await login_in_chromium(aproxy, browser, tmp_path, "approve")
    # The page the user approved: the app, who they are, what it may do, and both of their sites to choose from.
    assert "MCP Access Proxy (sandbox)" in landing.consent and "Alice Atlassian (alice@example.com)" in landing.consent
    assert "read:ops-alert:jira-service-management" in landing.consent and "offline_access" in landing.consent
    assert seed.SITE in landing.consent and OTHER_SITE in landing.consent, landing.consent
    # What the user sees at the proxy's loopback listener.
    assert landing.url.startswith(aproxy.sandbox.redirect_uri + "?code="), landing.url
    assert landing.heading == "Signed in" and landing.title == "Signed in", landing.text
    assert "alice@example.com" in landing.text, landing.text
    assert "You can close this tab and return to your AI client or terminal." in landing.text, landing.text
    assert login.returncode == 0, login.stderr
    assert "Signed in to 'og' (Atlassian) as alice@example.com" in login.stdout, login.stdout
    assert server.consents == ["allow"] and server.issued["authorization_code"] == 1
    assert server.granted_sites == {seed.CLOUD_ID}
    # The token is in the store (the file store of the test's home), the metadata names the account.
    stored = b"".join(p.read_bytes() for p in aproxy.home.rglob("secrets.json"))
    assert any(token.encode() in stored for token in server.access), "the access token is not in the token store"
    assert json.loads(aproxy.token_meta().read_text())["identity_email"] == "alice@example.com"

    whoami = aproxy.run("whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "signed in to Atlassian as alice@example.com" in whoami.stdout, whoami.stdout
    assert "Alice Atlassian" in whoami.stdout and server.account_id in whoami.stdout
    assert f"site: {seed.SITE} (cloud id {seed.CLOUD_ID})" in whoami.stdout, whoami.stdout
    assert OTHER_SITE not in whoami.stdout  # the site the user did not choose is not reachable

    async with aproxy.client() as client:
        with anyio.fail_after(90):
            result = await client.call_tool("og_list_alerts", {"query": "status:open", "limit": 5})
    assert not result.is_error, text_of(result)
    calls = [e for e in server.gateway_log if "/v1/" in e["path"]]
    assert calls and all(e["path"].startswith(f"/ex/jira/{seed.CLOUD_ID}/jsm/ops/api/v1/") for e in calls)
    assert all(e["account_id"] == server.account_id and e["status"] == 200 for e in calls)
    assert server.issued["authorization_code"] == 1  # the call used the stored token: no second sign-in
    aproxy.assert_no_secret_leaked(login.stdout + login.stderr + whoami.stdout + whoami.stderr)


async def test_atlassian_login_denied_in_chromium(aproxy: AtlassianProxy, browser: Chromium, tmp_path: Path) -> None:
    server = aproxy.sandbox.oauth
    login, landing = await login_in_chromium(aproxy, browser, tmp_path, "deny")
    assert landing.url.startswith(aproxy.sandbox.redirect_uri + "?error=access_denied"), landing.url
    assert landing.heading == "Sign-in did not complete", landing.text
    # Says what happened and what to do, in the proxy's words (not the server's error_description).
    assert "You declined the access Atlassian asked you to grant" in landing.text, landing.text
    assert "sign in again and choose Allow" in landing.text, landing.text
    assert "User did not authorize the request" not in landing.text
    assert login.returncode != 0
    assert "declined" in login.stdout + login.stderr, login.stdout + login.stderr
    assert server.consents == ["deny"] and server.issued["authorization_code"] == 0
    assert server.granted_sites == set() and not aproxy.token_meta().exists()
    whoami = aproxy.run("whoami", "--offline")
    assert "not signed in; run `mcp-access-proxy login og`" in whoami.stdout, whoami.stdout
