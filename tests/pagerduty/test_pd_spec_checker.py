"""The spec checker catches what it should, and the scope tables match the spec's `x-pd-requires-scope`."""

from __future__ import annotations

import pytest

from mcp_proxy.connectors.pagerduty import TOOL_OPERATIONS
from mcp_proxy.connectors.pagerduty.client import SCOPES, operation_of
from mcp_proxy.sandbox.pagerduty.app import ROUTES
from tests.pagerduty.spec_check import OpenApiChecker

ACCEPT = {"Accept": "application/vnd.pagerduty+json;version=2"}
WRITE = {**ACCEPT, "From": "alice@example.com", "Content-Type": "application/json"}


def test_connector_scopes_match_the_spec(spec: OpenApiChecker) -> None:
    for (method, template), scope in SCOPES.items():
        assert spec.scope(method, template) == scope, (method, template)
    for name, operations in TOOL_OPERATIONS.items():
        for method, template in operations:
            assert (method, template) in SCOPES, name
            assert spec.operation(method, template.replace("{id}", "PX")).template == template


def test_emulator_scopes_match_the_spec(spec: OpenApiChecker) -> None:
    for method, template, _, scope in ROUTES:
        assert spec.scope(method, template) == scope, (method, template)


def test_operation_of_prefers_literal_segments() -> None:
    assert operation_of("GET", "/users/me") == ("GET", "/users/me")
    assert operation_of("GET", "/users/PX") == ("GET", "/users/{id}")
    assert operation_of("PUT", "/incidents/Q1/notes") is None


def test_operation_lookup(spec: OpenApiChecker) -> None:
    assert spec.operation("GET", "/users/me").template == "/users/me"
    assert spec.operation("GET", "/users/PABC123").template == "/users/{id}"
    with pytest.raises(AssertionError, match="no such operation"):
        spec.operation("DELETE", "/incidents/Q1")


def test_request_problems_are_found(spec: OpenApiChecker) -> None:
    ok = spec.check_request("GET", "/incidents", "statuses[]=triggered&statuses[]=acknowledged&sort_by="
                            "created_at:desc,urgency:asc&limit=5", ACCEPT, None)
    assert ok == []
    cases = [
        ("GET", "/incidents", "status=triggered", ACCEPT, None, "undeclared query parameter 'status'"),
        ("GET", "/incidents", "statuses[]=open", ACCEPT, None, "'open' not in"),
        ("GET", "/incidents", "statuses[]=triggered&statuses[]=triggered", ACCEPT, None, "repeats a value"),
        ("GET", "/incidents", "limit=ten", ACCEPT, None, "not an integer"),
        ("GET", "/incidents", "sort_by=a,b,c", ACCEPT, None, "maxItems 2"),
        ("GET", "/oncalls", "earliest=yes", ACCEPT, None, "not a boolean"),
        ("GET", "/oncalls", "since=tomorrow", ACCEPT, None, "not a date-time"),
        ("GET", "/schedules/P1/overrides", "since=2026-01-01T00:00:00Z", ACCEPT, None,
         "missing required query parameter 'until'"),
        ("GET", "/teams", "", {}, None, "not the version-2 media type"),
        ("PUT", "/incidents/Q1", "", ACCEPT, {"incident": {"type": "incident_reference"}},
         "missing required header 'From'"),
        ("PUT", "/incidents/Q1", "", WRITE, {"incident": {"status": "acknowledged"}}, "'type' is a required"),
        ("PUT", "/incidents/Q1", "", WRITE, {"incident": {"type": "incident_reference", "status": "closed"}},
         "'closed' is not one of"),
        ("PUT", "/incidents/Q1", "", WRITE, {"incident": {"type": "incident_reference", "state": "resolved"}},
         "undeclared property 'state'"),
        ("POST", "/incidents/Q1/notes", "", WRITE, {"note": {"content": "x", "user": "me"}},
         "undeclared property 'user'"),
        ("POST", "/incidents/Q1/notes", "", {**WRITE, "From": "alice"}, {"note": {"content": "x"}},
         "not an email address"),
        ("GET", "/teams", "", ACCEPT, {"x": 1}, "sends a body"),
    ]
    for method, path, query, headers, body, expected in cases:
        problems = spec.check_request(method, path, query, headers, body)
        assert any(expected in p for p in problems), (method, path, query, body, problems)


def test_response_problems_are_found(spec: OpenApiChecker) -> None:
    page = {"limit": 25, "offset": 0, "more": False, "total": None}
    assert spec.check_response("GET", "/teams", 200, {**page, "teams": [
        {"id": "PT1", "type": "team", "name": "SRE", "summary": "SRE", "self": None, "html_url": None}]}) == []
    assert spec.check_response("GET", "/schedules/P1/overrides", 200, {"overrides": []}) == []
    cases = [
        (200, {**page}, "'teams' is a required property"),
        (200, {**page, "teams": [{"id": "PT1", "type": "team"}]}, "'name' is a required property"),
        (200, {**page, "teams": [{"id": "PT1", "type": "team", "name": "x", "colour": "red"}]},
         "undeclared property 'colour'"),
        (200, {**page, "more": "no", "teams": []}, "is not of type 'boolean'"),
        (500, {"error": {"message": "x", "code": 1}}, "status not declared"),
        (404, {"message": "Not Found"}, "lacks error.message and error.code"),
        (404, {"error": {"message": "Not Found", "code": "2100"}}, "is not of type 'integer'"),
    ]
    for status, body, expected in cases:
        problems = spec.check_response("GET", "/teams", status, body)
        assert any(expected in p for p in problems), (status, body, problems)


def test_log_entry_and_channel_fixes_still_reject_nonsense(spec: OpenApiChecker) -> None:
    page = {"limit": 25, "offset": 0, "more": False, "total": None}
    entry = {"id": "PL1", "type": "acknowledge_log_entry", "created_at": "2026-11-22T09:00:00Z",
             "channel": {"type": "api"}}
    assert spec.check_response("GET", "/incidents/Q1/log_entries", 200, {**page, "log_entries": [entry]}) == []
    bad = {**entry, "type": "acknowledgement_entry"}
    assert spec.check_response("GET", "/incidents/Q1/log_entries", 200, {**page, "log_entries": [bad]})
