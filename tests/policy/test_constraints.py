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
