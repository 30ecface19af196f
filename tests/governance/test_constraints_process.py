"""Argument constraints through the real process, on both protocol eras and both entry paths: a composite
tool approved for some actions only is shown with only those actions, refuses the others naming the
allowed values, and records each refusal."""

from __future__ import annotations

import json

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_composite_tool_approved_for_some_actions_only(proxy, tmp_path, mode):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {"f.manage": {
        "state": "approved", "class": "write", "constraints": {"request.action": ["add_note", "update"]}}})))
    proxy.write({"f": stdio_upstream(env={"FAKE_COMPOSITE": "1"})}, extra=policy_config(policy))
    async with proxy.client(mode=mode) as client:
        [manage] = [t for t in (await client.list_tools()).tools if t.name == "f_manage"]
        assert manage.input_schema["properties"]["request"]["properties"]["action"]["enum"] == ["add_note", "update"]
        ok = await client.call_tool("f_manage", {"request": {"action": "add_note", "note": "looking"}})
        assert not ok.is_error and text_of(ok) == "done: add_note"
        refused = await client.call_tool("f_manage", {"request": {"action": "resolve"}})
        assert refused.is_error and '"add_note", "update"' in text_of(refused) and '"resolve"' in text_of(refused)
    records = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]
    [denied] = [r for r in records if r["event_name"] == "mcp.tool.denied"]
    assert denied["policy.decision.code"] == "constraint" and denied["gen_ai.tool.call.arguments"] == {
        "request": {"action": "resolve"}}
    assert not any(r["event_name"] == "mcp.tool.started" and r["gen_ai.tool.call.arguments"]["request"]["action"]
                   == "resolve" for r in records), "the refused action never reached the upstream"
