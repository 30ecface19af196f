"""The Atlassian sign-in (OAuth 2.0 3LO) of the JSM Operations backend, through the real proxy process against
the stand-in Atlassian service (mcp_proxy/sandbox/atlassian_oauth.py) in front of the JSM emulator: a tool call
signs in like PagerDuty's, the cloud id comes from the accessible resources, rotating refresh tokens are shared
by processes, `login`/`whoami`/`logout` work, and the same `og.*` policy governs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from mcp_proxy.sandbox.jsm import seed
from tests._support.atlassian import OTHER_SITE, AtlassianProxy, AtlassianSandbox, atlassian_sandbox
from tests._support.jsm import JsmChecker
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio

JSM_SCOPES = {"read:ops-alert:jira-service-management", "write:ops-alert:jira-service-management",
              "read:ops-config:jira-service-management"}


@pytest.fixture
def atl(jsm_spec: JsmChecker) -> Iterator[AtlassianSandbox]:
    with atlassian_sandbox(jsm_spec) as box:
        yield box


@pytest.fixture
def aproxy(tmp_path: Path, atl: AtlassianSandbox) -> AtlassianProxy:
    return AtlassianProxy(tmp_path, atl)


async def call(client: Any, name: str = "og_list_alerts", **arguments: Any) -> types.CallToolResult:
    with anyio.fail_after(90):
        return await client.call_tool(name, arguments or {"query": "status:open", "limit": 5})


async def test_a_jsm_tool_call_signs_in_and_runs_as_the_user(aproxy: AtlassianProxy) -> None:
    aproxy.write_og()
    async with aproxy.client() as client:
        result = await call(client)
        assert not result.is_error, text_of(result)
        again = await call(client, "og_get_alert", identifier="101", identifierType="tiny")
        assert not again.is_error, text_of(again)
    server = aproxy.sandbox.oauth
    assert server.issued["authorization_code"] == 1
    request = server.authorize_requests[0]
    assert request["audience"] == "api.atlassian.com" and request["prompt"] == "consent"
    assert {"offline_access", "read:me", *JSM_SCOPES} <= set(request["scope"].split())
    exchange = server.token_requests[0]
    assert exchange["content_type"] == "application/json" and "client_secret" in exchange["keys"]
    # Every API call went through the 3LO gateway root with the user's token, for the site's cloud id.
    calls = [e for e in server.gateway_log if "/v1/" in e["path"]]
    assert calls and all(e["path"].startswith(f"/ex/jira/{seed.CLOUD_ID}/jsm/ops/api/v1/") for e in calls)
    assert all(e["account_id"] == server.account_id and e["status"] == 200 for e in calls)
    meta = json.loads(aproxy.token_meta().read_text())
    assert meta["identity_email"] == "alice@example.com"
    aproxy.assert_no_secret_leaked()


async def test_two_processes_refreshing_the_rotating_token_end_with_one_live_token(aproxy: AtlassianProxy) -> None:
    server = aproxy.sandbox.oauth
    server.expires_in = 31  # due for refresh 1 s after it is issued (30 s margin)
    aproxy.write_og()
    login = aproxy.run("login", "og")
    assert login.returncode == 0, login.stderr
    await anyio.sleep(1.5)
    server.refresh_delay = 1.0  # both processes find the token due while the first refresh is in flight
    async with aproxy.client() as first, aproxy.client() as second:
        results: list[types.CallToolResult] = []

        async def one(client: Any) -> None:
            results.append(await call(client))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first)
            tg.start_soon(one, second)
    assert all(not r.is_error for r in results), [text_of(r) for r in results]
    assert server.issued["refresh_token"] >= 1
    assert server.issued["refresh_refused"] == 0 and server.issued["family_revoked"] == 0
    assert len(server.active_refresh_tokens) == 1
    aproxy.assert_no_secret_leaked(login.stdout + login.stderr)


async def test_login_whoami_and_logout(aproxy: AtlassianProxy) -> None:
    aproxy.write_og(site=seed.SITE)
    login = aproxy.run("login", "og")
    assert login.returncode == 0, login.stderr
    assert "Signed in to 'og' (Atlassian) as alice@example.com" in login.stdout
    whoami = aproxy.run("whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "alice@example.com" in whoami.stdout and "Alice Atlassian" in whoami.stdout
    assert seed.SITE in whoami.stdout and seed.CLOUD_ID in whoami.stdout
    assert aproxy.sandbox.oauth.account_id in whoami.stdout
    offline = aproxy.run("whoami", "--offline")
    assert "alice@example.com" in offline.stdout and seed.SITE in offline.stdout
    logout = aproxy.run("logout", "og")
    assert logout.returncode == 0, logout.stderr
    assert "Signed out of 'og' (alice@example.com)" in logout.stdout
    assert "id.atlassian.com/manage-profile/apps" in logout.stdout
    assert not aproxy.token_meta().exists()
    after = aproxy.run("whoami", "--offline")
    assert "not signed in; run `mcp-access-proxy login og`" in after.stdout
    aproxy.assert_no_secret_leaked(login.stdout + whoami.stdout + logout.stdout)


async def test_two_sites_without_site_is_a_clear_error_naming_them(aproxy: AtlassianProxy) -> None:
    aproxy.sandbox.add_site()
    aproxy.write_og()
    async with aproxy.client() as client:
        result = await call(client)
    assert result.is_error
    text = text_of(result)
    assert seed.SITE in text and OTHER_SITE in text and "upstreams.og.site" in text
    assert not [e for e in aproxy.sandbox.oauth.gateway_log if "/v1/" in e["path"]]


async def test_site_picks_one_of_several(aproxy: AtlassianProxy) -> None:
    aproxy.sandbox.add_site()
    aproxy.write_og(site=seed.SITE)
    async with aproxy.client() as client:
        result = await call(client)
    assert not result.is_error, text_of(result)
    calls = [e for e in aproxy.sandbox.oauth.gateway_log if "/v1/" in e["path"]]
    assert calls and all(f"/ex/jira/{seed.CLOUD_ID}/" in e["path"] for e in calls)


async def test_a_site_the_user_cannot_reach_is_named(aproxy: AtlassianProxy) -> None:
    aproxy.write_og(site="other.atlassian.net")
    async with aproxy.client() as client:
        result = await call(client)
    assert result.is_error
    text = text_of(result)
    assert "other.atlassian.net" in text and seed.SITE in text


POLICY = {"og.list_alerts": {"state": "approved", "class": "read"},
          "og.get_alert": {"state": "approved", "class": "read"},
          "og.count_alerts": {"state": "pending"},
          "og.close_alert": {"state": "disabled"}}


async def test_the_same_og_policy_governs_the_signed_in_backend(aproxy: AtlassianProxy, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", POLICY)))
    aproxy.write_og(extra=policy_config(policy))
    async with aproxy.client() as client:
        listed = sorted(t.name for t in (await client.list_tools()).tools if t.name.startswith("og_"))
        listing = await call(client)
        closing = await call(client, "og_close_alert", identifier="101", identifierType="tiny")
        counting = await call(client, "og_count_alerts", query="status:open")
    assert "og_list_alerts" in listed and "og_close_alert" not in listed
    assert not listing.is_error, text_of(listing)
    assert closing.is_error and counting.is_error
    assert not [e for e in aproxy.sandbox.emulator.log if e["method"] == "POST"]
