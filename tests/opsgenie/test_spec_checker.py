"""The spec checker itself: it must catch what it is meant to catch, or the spec checks prove nothing."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("method, path, operation", [
    ("GET", "/v2/alerts/count", "countAlerts"),
    ("GET", "/v2/alerts/requests/abc", "getRequestStatus"),
    ("GET", "/v2/alerts/abc", "getAlert"),
    ("GET", "/v2/schedules/on-calls", "listOnCalls"),
    ("GET", "/v2/schedules/abc/on-calls", "getOnCalls"),
    ("POST", "/v2/alerts/abc/notes", "addNote"),
])
def test_literal_segments_win_over_templates(spec, method, path, operation):
    assert spec.operation(method, path)[0].spec["operationId"] == operation


def test_unknown_operations_are_rejected(spec):
    with pytest.raises(AssertionError, match="no such operation"):
        spec.operation("POST", "/v2/alerts/abc/reopen")


def test_query_parameters(spec):
    assert spec.check_request("GET", "/v2/alerts", "query=status%3Aopen&offset=0&limit=20&order=desc", None) == []
    problems = spec.check_request("GET", "/v2/alerts", "limit=101&order=up&page=2&offset=-1", None)
    assert len(problems) == 4 and any("page" in p for p in problems)
    problems = spec.check_request("GET", "/v2/schedules/x/on-calls", "identifierType=name&flat=yes", None)
    assert any("identifierType" in p for p in problems) and any("boolean" in p for p in problems)
    timeline = "date=2025-01-01T00%3A00%3A00Z&expand=base"
    assert spec.check_request("GET", "/v2/schedules/x/timeline", timeline, None) == []
    assert spec.check_request("GET", "/v2/schedules/x/timeline", "date=tomorrow", None)


def test_request_bodies(spec):
    ok = {"message": "m", "responders": [{"type": "team", "name": "SRE"}, {"type": "user", "username": "a@b.c"}],
          "priority": "P1", "details": {"k": "v"}, "user": "a@b.c", "source": "s"}
    assert spec.check_request("POST", "/v2/alerts", "", ok) == []
    assert any("'message' is a required property" in p for p in spec.check_request("POST", "/v2/alerts", "", {}))
    assert any("severity" in p for p in spec.check_request("POST", "/v2/alerts", "", {"message": "m", "severity": 1}))
    assert any("'P9'" in p for p in spec.check_request("POST", "/v2/alerts", "", {"message": "m", "priority": "P9"}))
    wrong_recipient = {"message": "m", "responders": [{"type": "user", "name": "Alice"}]}
    assert any("'name'" in p for p in spec.check_request("POST", "/v2/alerts", "", wrong_recipient))
    assert spec.check_request("POST", "/v2/alerts/a/snooze", "", {"endTime": "tomorrow"})
    assert any("declares none" in p for p in spec.check_request("GET", "/v2/teams", "", {"x": 1}))
    assert any("required body" in p for p in spec.check_request("POST", "/v2/alerts/a/notes", "", None))


def test_responses(spec):
    assert spec.check_response("POST", "/v2/alerts", 202, {"result": "ok", "took": 0.1, "requestId": "r"}) == []
    assert spec.check_response("POST", "/v2/alerts", 202, {"result": "ok"})  # requestId and took are required
    assert spec.check_response("GET", "/v2/alerts", 404, {"message": "x", "took": 0, "requestId": "r"})
    assert spec.check_response("GET", "/v2/alerts", 200, {"data": [{"tinyId": "1"}], "took": 0, "requestId": "r"})
    assert spec.check_response("GET", "/v2/alerts/count", 200, {"data": {"count": "3"}, "took": 0, "requestId": "r"})
    error = {"message": "bad", "errors": {"message": "empty"}, "took": 0, "requestId": "r"}
    assert spec.check_response("POST", "/v2/alerts", 422, error) == []  # field errors are a known real extra
