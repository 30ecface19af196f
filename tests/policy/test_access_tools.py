"""The proxy's own tools: what is unavailable and why, and access requests as audit events."""

from __future__ import annotations

import pytest

from mcp_proxy.policy.access_tools import ACCESS_TOOL_NAMES, access_tool_definitions, call_access_tool
from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

LIST = tool("pd.list_incidents", read_only=True)
CREATE = tool("pd.create_incident")
CLOSE = tool("og.close_alert", destructive=True)
FACTS = [LIST, CREATE, CLOSE]
USER = "alice@example.com"


def test_definitions_are_valid_mcp_tools():
    import mcp_types as types

    defs = access_tool_definitions()
    assert tuple(d["name"] for d in defs) == ACCESS_TOOL_NAMES
    for d in defs:
        types.Tool.model_validate(d)
        assert d["inputSchema"]["type"] == "object"


async def _engine(harness, write_policy, doc):
    engine = harness.engine(write_policy(doc))
    await engine.sync()
    return engine


async def call(engine, harness, name, **arguments):
    return await call_access_tool(name, arguments, engine=engine, facts=FACTS, user=USER, emit=harness.emit)


async def test_unavailable_tools_lists_each_with_its_reason(harness, write_policy):
    engine = await _engine(harness, write_policy, make_doc(tools={LIST.key: approved(LIST),
                                                                  CLOSE.key: {"state": "disabled"}}))
    text, structured, is_error = await call(engine, harness, "proxy_unavailable_tools")
    assert not is_error
    assert {(r["tool"], r["code"]) for r in structured["unavailable"]} == {
        ("pd_create_incident", "pending"), ("og_close_alert", "disabled")}
    assert "pd_list_incidents" not in text and "proxy_request_access" in text
    text, structured, _ = await call(engine, harness, "proxy_unavailable_tools", filter="close")
    assert [r["tool"] for r in structured["unavailable"]] == ["og_close_alert"]


async def test_with_no_policy_it_says_so_and_what_to_do(harness, paths):
    engine = harness.engine(str(paths.config_dir / "missing.json"))
    await engine.sync()
    text, structured, is_error = await call(engine, harness, "proxy_unavailable_tools")
    assert not is_error and structured["problem"]
    assert "fail" in text and "policy sync" in text and "does not exist" in text
    assert len(structured["unavailable"]) == 3


async def test_expired_policy_is_explained(harness, write_policy):
    engine = await _engine(harness, write_policy, make_doc(tools={LIST.key: approved(LIST)}, expires=NOW + 5))
    harness.clock.now = NOW + 10
    text, structured, _ = await call(engine, harness, "proxy_unavailable_tools")
    assert "expired" in text and {r["code"] for r in structured["unavailable"]} == {"expired"}


async def test_request_access_records_one_event_and_says_what_happens_next(harness, write_policy):
    engine = await _engine(harness, write_policy, make_doc(tools={LIST.key: approved(LIST)}))
    text, structured, is_error = await call(engine, harness, "proxy_request_access", tool="pd.create_incident",
                                            reason="I am on call and need to open incidents")
    assert not is_error and structured["recorded"] and structured["key"] == CREATE.key
    assert "administrator" in text and CREATE.definition_hash in text
    [event] = harness.named("access.requested")
    assert event["user.email"] == USER and event["tool.key"] == CREATE.key
    assert event["reason"] == "I am on call and need to open incidents"
    assert event["policy.decision.code"] == "pending" and event["policy.revision"] == "r1"
    # asked again (a model retrying): not recorded twice
    _, again, _ = await call(engine, harness, "proxy_request_access", tool="pd_create_incident", reason="please")
    assert again["request_id"] == structured["request_id"] and not again["recorded"]
    assert len(harness.named("access.requested")) == 1


@pytest.mark.parametrize("arguments,fragment", [({"tool": "pd_create_incident"}, "`reason` is required"),
                                                ({"reason": "x"}, "`tool` is required"),
                                                ({"tool": "pd_nope", "reason": "x"}, "No upstream tool named")])
async def test_request_access_bad_input(harness, write_policy, arguments, fragment):
    engine = await _engine(harness, write_policy, make_doc())
    text, _, is_error = await call(engine, harness, "proxy_request_access", **arguments)
    assert is_error and fragment in text
    assert not harness.named("access.requested")


async def test_request_for_an_available_tool_records_nothing(harness, write_policy):
    engine = await _engine(harness, write_policy, make_doc(tools={LIST.key: approved(LIST)}))
    text, structured, is_error = await call(engine, harness, "proxy_request_access", tool="pd_list_incidents",
                                            reason="x")
    assert not is_error and structured["available"] and "already available" in text
    assert not harness.named("access.requested")


async def test_ungoverned(harness):
    from mcp_proxy.policy import PolicyEngine

    engine = PolicyEngine(None, harness.paths, emit=harness.emit)
    text, structured, is_error = await call(engine, harness, "proxy_unavailable_tools")
    assert not is_error and structured == {"governed": False, "unavailable": []} and "ungoverned" in text
    _, _, is_error = await call(engine, harness, "proxy_nothing")
    assert is_error
