"""The spec checker itself: it finds operations, catches what it should, and each of its spec
corrections still corrects a flaw that is in the published file."""

from __future__ import annotations

import pytest
import yaml

from tests.statuspage.spec_check import SPEC_NAME, OpenApiChecker
from tests.vendor_specs import spec_text

P = "/pages/acmepage0001"


@pytest.fixture(scope="module")
def raw_spec() -> dict:
    return yaml.safe_load(spec_text(SPEC_NAME))


def test_each_fix_still_corrects_a_published_flaw(raw_spec: dict) -> None:
    schemas = raw_spec["components"]["schemas"]
    assert schemas["Incident"]["properties"]["metadata"]["type"] == "Object"
    assert schemas["GroupComponent"]["properties"]["components"]["type"] == "string"
    assert schemas["GroupComponent"]["properties"]["components"]["example"].startswith("[")
    assert schemas["Subscriber"]["properties"]["components"]["type"] == "string"
    metrics = raw_spec["paths"]["/pages/{page_id}/metrics"]["get"]["responses"]["200"]
    assert metrics["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Metric"}


def test_operation_lookup_prefers_literal_segments(spec: OpenApiChecker) -> None:
    assert spec.operation("GET", f"{P}/incidents/unresolved").template == "/pages/{page_id}/incidents/unresolved"
    assert spec.operation("GET", f"{P}/incidents/abc").template == "/pages/{page_id}/incidents/{incident_id}"
    assert spec.operation("GET", f"{P}/subscribers/count").template == "/pages/{page_id}/subscribers/count"
    with pytest.raises(AssertionError, match="no such operation"):
        spec.operation("POST", f"{P}/incidents/unresolved")


def test_request_checks(spec: OpenApiChecker) -> None:
    json_ct = {"content-type": "application/json"}
    assert spec.check_request("GET", f"{P}/subscribers", "page=0&limit=5&state=all", {}, None) == []
    bad_query = spec.check_request("GET", f"{P}/subscribers", "per_page=5&state=gone&page=x", {}, None)
    assert any("undeclared query parameter 'per_page'" in p for p in bad_query)
    assert any("'gone' not in" in p for p in bad_query) and any("not an integer" in p for p in bad_query)
    assert any("> maximum 1100" in p for p in spec.check_request("GET", f"{P}/components", "per_page=5000", {},
                                                                  None))
    good = {"incident": {"name": "x", "status": "identified", "deliver_notifications": False,
                         "components": {"c1": "major_outage"}, "component_ids": ["c1"]}}
    assert spec.check_request("POST", f"{P}/incidents", "", json_ct, good) == []
    typo = {"incident": {"name": "x", "deliver_notification": False}}
    assert any("undeclared property 'deliver_notification'" in p
               for p in spec.check_request("POST", f"{P}/incidents", "", json_ct, typo))
    wrong = {"incident": {"name": "x", "status": "fixed"}}
    assert any("'fixed' is not one of" in p for p in spec.check_request("PATCH", f"{P}/incidents/i", "", json_ct,
                                                                         wrong))
    assert any("not application/json" in p for p in spec.check_request("POST", f"{P}/incidents", "", {}, good))
    assert any("required body is missing" in p for p in spec.check_request("POST", f"{P}/incidents", "", {}, None))
    assert any("sends a body" in p for p in spec.check_request("GET", f"{P}/incidents", "", json_ct, good))


def test_response_checks(spec: OpenApiChecker) -> None:
    assert spec.check_response("GET", f"{P}/metrics", 200, [{"id": "m", "name": "x"}]) == []
    assert spec.check_response("GET", f"{P}/incidents/i", 200, {"id": "i", "metadata": {"a": {}}}) == []
    assert any("not of type 'array'" in p for p in spec.check_response("GET", f"{P}/incidents", 200, {"id": "i"}))
    assert any("undeclared property 'colour'" in p
               for p in spec.check_response("GET", f"{P}/components/c", 200, {"id": "c", "colour": "red"}))
    assert any("is not a 'date-time'" in p
               for p in spec.check_response("GET", f"{P}/components/c", 200, {"id": "c", "updated_at": "yesterday"}))
    assert any("status not declared" in p for p in spec.check_response("GET", f"{P}/components/c", 503,
                                                                        {"message": "down"}))
    # Generic statuses: the rate limit and auth apply to every operation.
    assert spec.check_response("GET", f"{P}/components", 420, {"message": "slow down"}) == []
    assert any("lacks message" in p for p in spec.check_response("GET", f"{P}/components", 429, {"error": "x"}))
    assert spec.check_response("DELETE", f"{P}/subscribers/s", 200, {"id": "s", "components": ["c"]}) == []
    # Invalid-input statuses are accepted undeclared only for operations that take a body.
    assert spec.check_response("PATCH", f"{P}/incidents/i", 422, {"message": "bad"}) == []
    assert any("status not declared" in p for p in spec.check_response("GET", f"{P}/incidents/i", 422,
                                                                        {"message": "bad"}))
