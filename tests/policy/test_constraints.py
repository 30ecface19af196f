"""Argument constraints (mcp_proxy/policy/constraints.py): which calls they allow, and the schema the model
is shown."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mcp_proxy.policy.constraints import narrowed_schema, violation

MANAGE = {
    "$defs": {
        "ManageRequest": {"type": "object", "properties": {
            "status": {"anyOf": [{"enum": ["acknowledged", "resolved"], "type": "string"}, {"type": "null"}],
                       "default": None, "title": "Status"},
            "incident_ids": {"type": "array", "items": {"type": "string"}}}},
        "Other": {"type": "object", "properties": {"status": {"type": "string"}}},
    },
    "type": "object",
    "properties": {"request": {"type": "object", "properties": {
        "action": {"type": "string", "enum": ["create", "update", "add_note", "add_responders", "start_workflow"]},
        "manage_request": {"$ref": "#/$defs/ManageRequest"},
        "other": {"$ref": "#/$defs/Other"},
        "tags": {"type": "array", "items": {"type": "string"}}}}},
    "required": ["request"],
}
RULES = {"request.action": ["add_note", "update"], "request.manage_request.status": ["acknowledged"],
         "request.tags": ["p1", "p2"]}


@pytest.mark.parametrize("arguments, broken", [
    ({"request": {"action": "add_note"}}, None),
    ({"request": {"action": "update", "manage_request": {"status": "acknowledged"}}}, None),
    ({"request": {"action": "create"}}, "request.action"),
    ({"request": {"action": "update", "manage_request": {"status": "resolved"}}}, "request.manage_request.status"),
    ({"request": {"action": "update", "manage_request": {"status": None}}}, "request.manage_request.status"),
    ({"request": {"action": "add_note", "tags": ["p1", "p3"]}}, "request.tags"),  # every item of a list
    ({"request": {"action": "add_note", "tags": ["p2", "p1"]}}, None),
    ({"request": {}}, None),  # absent paths are not constrained (the schema says what is required)
    ({"request": {"action": ["add_note"]}}, None),
    ({"request": "not an object"}, None),
])
def test_which_calls_the_constraints_allow(arguments, broken):
    found = violation(RULES, arguments)
    assert (found.path if found else None) == broken


def test_json_equality_not_python_equality():
    assert violation({"a": [1]}, {"a": True}) is not None, "true is not 1"
    assert violation({"a": [{"x": 1, "y": 2}]}, {"a": {"y": 2, "x": 1}}) is None


def test_the_message_names_the_allowed_values():
    found = violation(RULES, {"request": {"action": "create"}})
    assert found is not None
    text = found.message("pd_manage_incidents")
    assert '"add_note", "update"' in text and "pd_manage_incidents" in text and '"create"' in text


def test_the_narrowed_schema_allows_exactly_what_the_constraints_allow():
    narrowed = narrowed_schema(MANAGE, RULES)
    request = narrowed["properties"]["request"]["properties"]
    assert request["action"]["enum"] == ["add_note", "update"]
    assert request["manage_request"]["properties"]["status"]["enum"] == ["acknowledged"]
    assert "default" not in request["manage_request"]["properties"]["status"]  # null is not allowed any more
    assert request["tags"] == {"type": "array", "items": {"enum": ["p1", "p2"]}}
    assert narrowed["$defs"]["ManageRequest"] == MANAGE["$defs"]["ManageRequest"], "shared definitions untouched"
    assert request["other"] == {"$ref": "#/$defs/Other"}
    assert MANAGE["properties"]["request"]["properties"]["action"]["enum"][0] == "create", "the input is not changed"
    validator = jsonschema.Draft202012Validator(narrowed)
    for arguments in ({"request": {"action": "add_note"}}, {"request": {"action": "update", "manage_request": {
            "status": "acknowledged", "incident_ids": ["P1"]}}}):
        assert not list(validator.iter_errors(arguments)), json.dumps(arguments)
    for arguments in ({"request": {"action": "create"}}, {"request": {"manage_request": {"status": "resolved"}}}):
        assert list(validator.iter_errors(arguments)), json.dumps(arguments)


def _doc(entry: dict) -> dict:
    from tests._support.policy_docs import make_doc

    doc = make_doc("r1")
    doc["tools"] = {"pd.manage_incidents": entry}
    return doc


def test_a_document_carries_constraints_and_refuses_malformed_ones():
    from mcp_proxy.errors import PolicyError
    from mcp_proxy.policy.document import parse_document

    doc = parse_document(_doc({"state": "approved", "constraints": {"request.action": ["add_note"]}}))
    assert doc.tools["pd.manage_incidents"].constraints == (("request.action", ("add_note",)),)
    for bad in ({"request.action": []}, {"request..action": ["x"]}, ["request.action"], {}):
        with pytest.raises(PolicyError, match="constraints"):
            parse_document(_doc({"state": "approved", "constraints": bad}))


def test_a_draft_keeps_the_constraints_of_an_existing_entry():
    from mcp_proxy.policy.definition import ToolFacts
    from mcp_proxy.policy.draft import make_draft

    facts = ToolFacts(key="pd.manage_incidents", upstream="pd", name="manage_incidents",
                      exposed_name="pd_manage_incidents", definition_hash="a" * 64, read_only=False)
    existing = _doc({"state": "approved", "sha256": "a" * 64, "constraints": {"request.action": ["add_note"]}})
    draft = make_draft([facts], 0.0, existing=existing)
    assert draft["tools"]["pd.manage_incidents"]["constraints"] == {"request.action": ["add_note"]}


@pytest.mark.anyio
async def test_the_constrain_stage_refuses_what_the_constraints_do_not_allow():
    from mcp_proxy.server.stages.constrain import Constrain
    from tests._support.pipeline_fakes import FakePolicy, call_of, catalog_with, text_of

    policy = FakePolicy({"up.echo"}, constraints={"up.echo": {"text": ("hi", "hello")}})
    sent: list[str] = []

    async def forward(call):  # type: ignore[no-untyped-def]
        sent.append(call.arguments["text"])
        return {"content": [], "isError": False}

    for text in ("hi", "bye"):
        call = call_of(arguments={"text": text})
        call.entry = catalog_with("up").lookup("up_echo")
        result = await Constrain(policy)(call, forward)
        if text == "bye":
            assert call.denial is not None and call.denial.code == "constraint" and '"hi", "hello"' in text_of(result)
    assert sent == ["hi"]
