"""A sign-in that changes under a running `serve` (issue 14, item 4): `logout` or `login` as someone else in a
terminal reaches the processes already running from their next call, not when their cached token is due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests._support.auth import AuthProxy
from tests._support.identity_change import ALICE, BOB, BearerLog, calls_of, watched_sandbox
from tests._support.policy_process import ListChanged, policy_config, policy_doc
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[AuthProxy, BearerLog]]:
    with watched_sandbox(tmp_path) as (sandbox, bearers):
        yield AuthProxy(tmp_path, sandbox), bearers


def login(aproxy: AuthProxy) -> None:
    done = aproxy.run("login", "pd", timeout=90)
    assert done.returncode == 0, done.stderr


async def test_a_logout_elsewhere_ends_the_running_process_use_of_the_token(
        watched: tuple[AuthProxy, BearerLog]) -> None:
    aproxy, bearers = watched
    aproxy.write_pd()
    login(aproxy)  # alice, in a terminal
    # BROWSER fails: the call after the logout cannot sign in again by itself, it gives the login advice.
    async with aproxy.client(env=aproxy.env(BROWSER="false")) as client:
        with anyio.fail_after(60):
            first = await client.call_tool("pd_get_current_user", {})
        assert not first.is_error and "alice@example.com" in text_of(first)
        alices = bearers.issued_to(ALICE)
        assert alices and set(bearers.tokens) <= alices
        out = aproxy.run("logout", "pd")  # in another terminal, while serve runs
        assert out.returncode == 0, out.stderr
        mark = bearers.mark()
        with anyio.fail_after(60):
            after = await client.call_tool("pd_get_current_user", {})
        assert after.is_error
        assert "mcp-access-proxy login pd" in text_of(after)
        assert not set(bearers.since(mark)) & alices, "the vendor was shown alice's token after the logout"
    calls = calls_of(aproxy.audit_records())
    assert [(c["outcome"], c.get("error.type")) for c in calls] == [("ok", None), ("error", "sign_in_required")]
    aproxy.assert_no_secret_leaked()


async def test_a_login_as_someone_else_elsewhere_makes_the_running_process_act_as_them(
        watched: tuple[AuthProxy, BearerLog]) -> None:
    aproxy, bearers = watched
    policy = aproxy.tmp / "policy.json"
    # alice may read her user and the incidents; bob only his user and the services.
    doc = policy_doc("r1", {t: {"state": "approved"} for t in
                            ("pd.get_current_user", "pd.list_incidents", "pd.list_services")},
                     toolsets={"me": ["pd.get_current_user"], "incidents": ["pd.list_incidents"],
                               "services": ["pd.list_services"]},
                     profiles=[{"name": "alice", "members": ["alice@example.com"], "toolsets": ["me", "incidents"]},
                               {"name": "bob", "members": ["bob@example.com"], "toolsets": ["me", "services"]}])
    policy.write_text(json.dumps(doc), encoding="utf-8")
    aproxy.write_pd(extra=policy_config(policy))
    login(aproxy)  # alice
    changed = ListChanged()
    async with aproxy.client(env=aproxy.env(BROWSER="false"), message_handler=changed) as client:
        await client.list_tools()  # the first list waits for the first policy sync, as a client's first list does
        with anyio.fail_after(60):
            first = await client.call_tool("pd_get_current_user", {})
            incidents = await client.call_tool("pd_list_incidents", {})
        assert "alice@example.com" in text_of(first) and not incidents.is_error
        alices = bearers.issued_to(ALICE)
        aproxy.sandbox.oauth.user_id = BOB  # the next browser sign-in is bob's
        login(aproxy)  # in another terminal, while serve runs
        bobs = bearers.issued_to(BOB)
        assert len(bobs) == 1
        seen_before = changed.count
        mark = bearers.mark()
        with anyio.fail_after(60):
            me = await client.call_tool("pd_get_current_user", {})
        assert not me.is_error and "bob@example.com" in text_of(me), text_of(me)
        assert set(bearers.since(mark)) == bobs, "the vendor was not shown bob's token (only)"
        with anyio.fail_after(60):
            denied = await client.call_tool("pd_list_incidents", {})  # alice's tool, not bob's
            services = await client.call_tool("pd_list_services", {})  # bob's tool, not alice's
        assert denied.is_error and "none of the policy profiles" in text_of(denied), text_of(denied)
        assert not services.is_error, text_of(services)
        assert not set(bearers.since(mark)) & alices
        with anyio.fail_after(15):
            while changed.count == seen_before:  # the tool list depends on the user: the client is told
                await anyio.sleep(0.05)
    records = aproxy.audit_records()
    calls = calls_of(records)
    assert [(c["gen_ai.tool.name"], c["user.email"], c["event_name"]) for c in calls] == [
        ("pd_get_current_user", "alice@example.com", "mcp.tool.call"),
        ("pd_list_incidents", "alice@example.com", "mcp.tool.call"),
        ("pd_get_current_user", "bob@example.com", "mcp.tool.call"),
        ("pd_list_incidents", "bob@example.com", "mcp.tool.denied"),
        ("pd_list_services", "bob@example.com", "mcp.tool.call")]
    assert all(c["outcome"] == "ok" for c in calls if c["event_name"] == "mcp.tool.call")
    served = [r for r in records if r["event_name"] == "auth.signed_in" and r.get("origin") != "login"]
    assert [(r["upstream"], r["user.email"]) for r in served] == [("pd", "bob@example.com")]
    aproxy.assert_no_secret_leaked()
