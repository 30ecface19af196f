"""The sign-in flows in a real headless Chromium (tests/_support/chromium.py): the proxy opens the authorization
URL through `BROWSER`, Chromium loads the sandbox OAuth server's consent page, the test clicks Allow or Deny,
Chromium follows the redirect to the proxy's loopback listener, and the test reads what the user sees there.
Without Chromium these tests skip and say what to install; CI installs it and sets
MCP_PROXY_TEST_REQUIRE_BROWSER=1, so there they cannot skip."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests._support.admin import Chromium
from tests._support.auth import AuthProxy, mcp_table, wait_for_tool
from tests._support.chromium import Landing, answer_sign_in, browser_command, login_while_the_user_signs_in
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


def user_signs_in(browser: Chromium, opened: Path, aproxy: AuthProxy, button: str, name: str) -> Landing:
    return answer_sign_in(browser, opened, f"{aproxy.sandbox.oauth_http.url}/oauth/authorize",
                          aproxy.sandbox.redirect_uri, button, name)


async def call_while_the_user_signs_in(aproxy: AuthProxy, browser: Chromium, tmp_path: Path, button: str,
                                       name: str = "pd_get_current_user") -> tuple[Any, Landing]:
    """A PagerDuty tool call that starts the sign-in, and the user answering it in Chromium meanwhile."""
    opened = tmp_path / "opened-urls"
    found: dict[str, Any] = {}
    async with aproxy.client(env=aproxy.env(BROWSER=browser_command(opened))) as client:

        async def the_call() -> None:
            with anyio.fail_after(180):
                found["result"] = await client.call_tool(name, {})

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(the_call)
            found["landing"] = await anyio.to_thread.run_sync(
                partial(user_signs_in, browser, opened, aproxy, button, f"pd-{button}"))
    return found["result"], found["landing"]


async def test_pagerduty_consent_approved_in_chromium(aproxy: AuthProxy, browser: Chromium, tmp_path: Path) -> None:
    server = aproxy.sandbox.oauth
    server.consent_page = True
    aproxy.write_pd()
    result, landing = await call_while_the_user_signs_in(aproxy, browser, tmp_path, "approve")
    assert "classic-desktop-app" in landing.consent and "read" in landing.consent  # the page the user approved
    assert landing.url.startswith(aproxy.sandbox.redirect_uri + "?code=")
    assert landing.heading == "Signed in" and landing.title == "Signed in"
    assert "alice@example.com" in landing.text, landing.text
    assert "You can close this tab and return to your AI client or terminal." in landing.text, landing.text
    assert not result.is_error, text_of(result)
    assert "alice@example.com" in text_of(result)  # the call ran as the user who signed in
    assert server.consents == ["allow"] and server.issued["authorization_code"] == 1
    assert "alice@example.com" in (aproxy.home / "data" / "tokens" / "pd.json").read_text()
    aproxy.assert_no_secret_leaked()


async def test_pagerduty_consent_denied_in_chromium(aproxy: AuthProxy, browser: Chromium, tmp_path: Path) -> None:
    server = aproxy.sandbox.oauth
    server.consent_page = True
    aproxy.write_pd()
    result, landing = await call_while_the_user_signs_in(aproxy, browser, tmp_path, "deny")
    assert landing.url.startswith(aproxy.sandbox.redirect_uri + "?error=access_denied")
    assert landing.heading == "Sign-in did not complete"
    # Says what happened and what to do, in the proxy's words (not the server's error_description).
    assert "You declined the access PagerDuty asked you to grant" in landing.text, landing.text
    assert "sign in again and choose Allow" in landing.text, landing.text
    assert "The user denied access" not in landing.text
    assert result.is_error
    text = text_of(result)
    assert "declined" in text and "Allow" in text and "mcp-access-proxy login pd" in text, text
    assert server.consents == ["deny"] and server.issued["authorization_code"] == 0
    assert not (aproxy.home / "data" / "tokens" / "pd.json").exists()


async def test_remote_mcp_server_login_in_chromium(aproxy: AuthProxy, browser: Chromium, mcp_server: Any,
                                                   tmp_path: Path) -> None:
    _verifier, url = mcp_server
    server = aproxy.sandbox.oauth
    server.consent_page = True
    aproxy.write({"mon": mcp_table(aproxy.sandbox, url, client_id="mcp-static-client")})
    opened = tmp_path / "opened-urls"
    done, landing = await login_while_the_user_signs_in(
        partial(aproxy.run, "login", "mon", env=aproxy.env(BROWSER=browser_command(opened)), timeout=180),
        partial(user_signs_in, browser, opened, aproxy, "approve", "mcp"))
    assert done.returncode == 0, done.stderr
    assert "Signed in to 'mon'" in done.stdout, done.stdout
    assert "mcp-static-client" in landing.consent and url in landing.consent  # the resource the token is for
    assert landing.heading == "Signed in", landing.text
    assert "You can close this tab" in landing.text, landing.text
    assert server.consents == ["allow"] and server.issued["authorization_code"] == 1
    async with aproxy.client() as client:
        await wait_for_tool(client, "mon_echo")
        with anyio.fail_after(30):
            result = await client.call_tool("mon_echo", {"text": "from the browser"})
        assert text_of(result) == "echo: from the browser"
    aproxy.assert_no_secret_leaked(done.stdout + done.stderr)
