"""Upstreams do not talk to the user behind the policy, through the real process: an upstream's request
toward the user (elicitation) reaches the user only during a call to an approved tool of that upstream,
labelled, and every one is recorded; outside such a call it is refused toward the upstream.

The fake upstream asks with server-initiated requests, which exist on the handshake era only, so it is pinned
there (`protocol = "legacy"`); the 2026-07-28 form is tests/governance/test_upstream_input.py."""

from __future__ import annotations

import json

import anyio
import mcp_types as types
import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio


def _requests(proxy) -> list[dict]:
    return [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "mcp.upstream.request"]


async def test_an_upstream_with_every_tool_disabled_cannot_ask_the_user_for_a_password(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": {"state": "disabled"}})))
    seen_by_upstream = tmp_path / "answers.jsonl"
    proxy.write({"f": stdio_upstream(env={"FAKE_ELICIT_ON_LIST": str(seen_by_upstream)},
                                                protocol="legacy")},
                extra=policy_config(policy))
    asked: list[str] = []

    async def user(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"password": "hunter2"})

    async with proxy.client(elicitation_callback=user) as client:
        await client.list_tools()
        with anyio.fail_after(15):
            while not seen_by_upstream.exists():
                await anyio.sleep(0.05)
    assert asked == [], "the user never saw the upstream's request"
    assert "hunter2" not in seen_by_upstream.read_text()
    [record] = _requests(proxy)[:1]
    assert (record["mcp.request.kind"], record["decision"], record["upstream"]) == ("elicitation", "deny", "f")


async def test_during_an_approved_call_the_ask_is_relayed_labelled_and_recorded(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.ask": {"state": "approved", "class": "read"}})))
    proxy.write({"f": stdio_upstream(protocol="legacy")}, extra=policy_config(policy))
    asked: list[str] = []

    async def user(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "green"})

    async with proxy.client(elicitation_callback=user) as client:
        result = await client.call_tool("f_ask", {"question": "favourite colour?"})
        assert text_of(result) == "accept:green"
    assert asked == ["[f, while running f_ask] favourite colour?"]
    [record] = _requests(proxy)
    assert (record["decision"], record["elicitation.action"], record["upstream.tool"]) == ("allow", "accept", "ask")
    calls = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "mcp.tool.call"]
    assert record["gen_ai.tool.call.id"] == calls[-1]["gen_ai.tool.call.id"]
