"""Argument constraints on the hosted `manage_incidents`, through the real proxy on both protocol eras: the
policy approves it pinned to the server's definition for `add_note` only; the model is shown only that action,
other actions are refused before PagerDuty sees them, and every exchange matches the facts file."""

from __future__ import annotations

import json

import anyio
import pytest

from mcp_proxy.sandbox import pagerduty_mcp
from tests._support.audit import home_paths, spool_records
from tests._support.pd_hosted import USER_KEY, check_every_exchange, hosted_upstream, live_hashes
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import ProxyEnv, text_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_manage_incidents_approved_for_add_note_only(proxy: ProxyEnv, hosted: pagerduty_mcp.Sandbox,
                                                           tmp_path, mode: str):
    hashes = live_hashes(hosted)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "pd.manage_incidents": {"state": "approved", "class": "write", "sha256": hashes["manage_incidents"],
                                "constraints": {"request.action": ["add_note"]}},
        "pd.browse_incidents": {"state": "approved", "class": "read", "sha256": hashes["browse_incidents"]}})))
    proxy.write({"pd": hosted_upstream(hosted)}, extra=policy_config(policy))
    async with proxy.client(env=proxy.env(PD_TEST_KEY=USER_KEY), mode=mode) as client:
        with anyio.fail_after(30):
            tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"pd_manage_incidents", "pd_browse_incidents"} <= set(tools)
        assert "pd_manage_services" not in tools  # not approved: invisible
        action = tools["pd_manage_incidents"].input_schema["properties"]["request"]["properties"]["action"]
        assert action["enum"] == ["add_note"]
        with anyio.fail_after(40):
            ok = await client.call_tool("pd_manage_incidents", {"request": {
                "action": "add_note", "incident_id": "Q0PAYDBLAG1002", "note": "Vacuum finished."}})
            assert not ok.is_error, text_of(ok)
            refused = await client.call_tool("pd_manage_incidents", {"request": {
                "action": "update", "manage_request": {"incident_ids": ["Q0PAYDBLAG1002"], "status": "resolved"}}})
            assert refused.is_error and '"add_note"' in text_of(refused) and '"update"' in text_of(refused)
            read = await client.call_tool("pd_browse_incidents", {"request": {"action": "list_notes",
                                                                              "incident_id": "Q0PAYDBLAG1002"}})
            assert "Vacuum finished." in text_of(read)
    assert hosted.emulator.incidents["Q0PAYDBLAG1002"]["status"] == "acknowledged"  # never resolved
    seen = [(e["tool"], e["arguments"]["request"]["action"]) for e in hosted.stand_in.log if e["tool"]]
    assert seen == [("manage_incidents", "add_note"), ("browse_incidents", "list_notes")]
    assert check_every_exchange(hosted.stand_in) == 2
    records = spool_records(home_paths(proxy.home))
    [denied] = [r for r in records if r["event_name"] == "mcp.tool.denied"]
    assert denied["policy.decision.code"] == "constraint" and denied["gen_ai.tool.name"] == "pd_manage_incidents"
