"""Every Statuspage tool through the connector against the emulator over real HTTP; every exchange
is checked against the vendor's OpenAPI spec when the test ends (conftest)."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest

from mcp_proxy.connectors.statuspage import TOOL_OPERATIONS
from mcp_proxy.sandbox.statuspage import ORG, PAGE, PAGE2
from tests._support.statuspage import Sandbox

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    # name: "read" | "write" | "destructive"
    "list_pages": "read", "get_page": "read", "list_components": "read", "get_component": "read",
    "update_component_status": "write", "list_component_groups": "read", "get_component_group": "read",
    "list_incidents": "read", "list_unresolved_incidents": "read", "get_incident": "read",
    "create_incident": "write", "update_incident": "write", "resolve_incident": "write",
    "list_maintenances": "read", "create_maintenance": "write", "update_maintenance": "write",
    "list_metrics": "read", "add_metric_data_point": "write", "list_subscribers": "read",
    "count_subscribers": "read", "add_subscriber": "write", "unsubscribe_subscriber": "destructive",
    "list_users": "read",
}
NOTIFYING = ("create_incident", "update_incident", "resolve_incident", "create_maintenance", "update_maintenance")


def body_of(entry: dict[str, Any]) -> Any:
    return json.loads(entry["body"]) if entry["body"] else None


async def test_tool_names_classes_and_schemas(sp: Sandbox, spec) -> None:
    tools = {t.name: t for t in sp.connector().tools()}
    assert set(tools) == set(EXPECTED_TOOLS) == set(TOOL_OPERATIONS)
    for name, tool in tools.items():
        kind = EXPECTED_TOOLS[name]
        assert tool.read_only is (kind == "read"), name
        assert tool.destructive is (kind == "destructive"), name
        # read/write class follows from the HTTP methods the tool uses, and each operation is in the spec
        methods = {m for m, _ in TOOL_OPERATIONS[name]}
        assert (methods == {"GET"}) is tool.read_only, name
        for method, template in TOOL_OPERATIONS[name]:
            assert method.lower() in spec.spec["paths"][template], (name, method, template)
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False, name
        for size in ("per_page", "limit"):
            if size in schema["properties"]:
                assert schema["properties"][size]["maximum"] == 100 and schema["properties"][size]["minimum"] == 1
        assert len(tool.description) > 60 and len(name) <= 30
        annotations = tool.annotations()
        assert annotations.get("readOnlyHint", False) is tool.read_only and "openWorldHint" not in annotations


async def test_deliver_notifications_is_required_and_undefaulted(sp: Sandbox) -> None:
    tools = {t.name: t for t in sp.connector().tools()}
    for name in NOTIFYING:
        schema = tools[name].input_schema
        prop = schema["properties"]["deliver_notifications"]
        assert "deliver_notifications" in schema["required"] and prop["type"] == "boolean"
        assert "default" not in prop
        assert "subscribers" in prop["description"] and "emailed" in tools[name].description
        validator = jsonschema.Draft202012Validator(schema)
        minimal = {"create_incident": {"name": "x"}, "create_maintenance": {
            "name": "x", "scheduled_for": "2030-01-01T00:00:00Z", "scheduled_until": "2030-01-01T01:00:00Z"},
            "update_incident": {"incident_id": "incdblag0001", "status": "monitoring", "body": "b"},
            "resolve_incident": {"incident_id": "incdblag0001"}, "update_maintenance": {"incident_id": "x"}}[name]
        assert not validator.is_valid(minimal), name
        assert validator.is_valid({**minimal, "deliver_notifications": False}), name
    # Called without it, the connector refuses before sending anything.
    connector = sp.connector()
    with pytest.raises(Exception) as caught:
        await connector.call("create_incident", {"name": "No choice made"})
    assert "deliver_notifications is required" in str(caught.value)
    assert not sp.requests("POST")


async def test_pages(sp: Sandbox) -> None:
    c = sp.connector()
    out = await c.call("list_pages", {})
    assert [p["id"] for p in out.structured["pages"]] == [PAGE, PAGE2]
    assert "default page is acmepage0001" in out.text
    out = await c.call("get_page", {"page_id": PAGE2})
    assert out.structured["name"] == "Acme Internal Tools" and out.structured["time_zone"] == "Europe/Berlin"
    out = await c.call("get_page", {})
    assert out.structured["id"] == PAGE


async def test_components_and_groups(sp: Sandbox) -> None:
    c = sp.connector()
    out = await c.call("list_components", {})
    rows = {r["id"]: r for r in out.structured["components"]}
    assert rows["cmpdb0000001"]["status"] == "degraded_performance" and rows["grpcore00001"]["group"] is True
    assert out.structured["more_may_exist"] is False and out.structured["next"] is None
    degraded = await c.call("list_components", {"status": "degraded_performance"})
    assert [r["id"] for r in degraded.structured["components"]] == ["cmpdb0000001"]
    one = await c.call("get_component", {"component_id": "cmpapi000001"})
    assert one.structured["name"] == "API" and one.structured["group_id"] == "grpcore00001"
    updated = await c.call("update_component_status", {"component_id": "cmpapi000001", "status": "partial_outage"})
    assert updated.structured["status"] == "partial_outage" and "partial_outage" in updated.text
    assert sp.emulator.components[PAGE]["cmpapi000001"]["status"] == "partial_outage"
    assert body_of(sp.requests("PATCH")[-1]) == {"component": {"status": "partial_outage"}}
    groups = await c.call("list_component_groups", {})
    assert {g["id"]: g["components"] for g in groups.structured["component_groups"]}["grpdata00001"] == [
        "cmpdb0000001", "cmpstore0001"]
    group = await c.call("get_component_group", {"group_id": "grpcore00001"})
    assert group.structured["name"] == "Core platform" and "3 components" in group.text
    other = await c.call("list_components", {"page_id": PAGE2})
    assert [r["id"] for r in other.structured["components"]] == ["cmpwiki00001"]


async def test_incident_reads(sp: Sandbox) -> None:
    c = sp.connector()
    everything = await c.call("list_incidents", {})
    ids = [i["id"] for i in everything.structured["incidents"]]
    assert ids[0] == "incdblag0001" and set(ids) >= {"inclogin0001", "incapi500001", "mntdbupg0001"}
    latest = everything.structured["incidents"][0]["latest_update"]
    assert latest["status"] == "identified" and "replica" in latest["body"]
    search = await c.call("list_incidents", {"q": "SSO"})
    assert [i["id"] for i in search.structured["incidents"]] == ["inclogin0001"]
    assert sp.requests("GET", "/incidents")[-1]["query"] == "page=1&limit=25&q=SSO"
    unresolved = await c.call("list_unresolved_incidents", {})
    assert [i["id"] for i in unresolved.structured["incidents"]] == ["incdblag0001"]
    detail = await c.call("get_incident", {"incident_id": "inclogin0001"})
    updates = detail.structured["incident_updates"]
    assert [u["status"] for u in updates] == ["resolved", "monitoring", "investigating"]
    assert detail.structured["components"][0]["id"] == "cmpauth00001"
    upcoming = await c.call("list_maintenances", {})
    assert [m["id"] for m in upcoming.structured["maintenances"]] == ["mntdbupg0001"]
    active = await c.call("list_maintenances", {"which": "active"})
    assert [m["id"] for m in active.structured["maintenances"]] == ["mntcdn000001"]
    scheduled = await c.call("list_maintenances", {"which": "scheduled"})
    assert [m["id"] for m in scheduled.structured["maintenances"]] == ["mntdbupg0001"]
    paths = [e["path"] for e in sp.requests("GET", "/incidents/")]
    assert f"/pages/{PAGE}/incidents/active_maintenance" in paths and f"/pages/{PAGE}/incidents/upcoming" in paths


async def test_incident_lifecycle_posts_updates_by_patch(sp: Sandbox) -> None:
    c = sp.connector()
    created = await c.call("create_incident", {
        "name": "Checkout errors", "body": "We see failed payments.", "impact_override": "major",
        "components": {"cmpapi000001": "partial_outage"}, "deliver_notifications": True})
    iid = created.structured["id"]
    assert created.structured["status"] == "investigating" and "subscribers are being notified" in created.text
    sent = body_of(sp.requests("POST", "/incidents")[-1])["incident"]
    assert sent == {"name": "Checkout errors", "status": "investigating", "deliver_notifications": True,
                    "body": "We see failed payments.", "impact_override": "major",
                    "component_ids": ["cmpapi000001"], "components": {"cmpapi000001": "partial_outage"}}
    assert sp.emulator.components[PAGE]["cmpapi000001"]["status"] == "partial_outage"
    assert sp.emulator.outbox[-1]["incident_id"] == iid

    notes = len(sp.emulator.outbox)
    updated = await c.call("update_incident", {"incident_id": iid, "status": "identified",
                                               "body": "A bad deploy; rolling back.", "deliver_notifications": False})
    assert updated.structured["status"] == "identified" and "were not notified" in updated.text
    patch = sp.requests("PATCH")[-1]
    assert patch["path"] == f"/pages/{PAGE}/incidents/{iid}"
    assert body_of(patch) == {"incident": {"status": "identified", "body": "A bad deploy; rolling back.",
                                           "deliver_notifications": False}}
    assert [u["body"] for u in updated.structured["incident_updates"]][0] == "A bad deploy; rolling back."
    assert len(sp.emulator.outbox) == notes  # nobody was emailed

    resolved = await c.call("resolve_incident", {"incident_id": iid, "components": {"cmpapi000001": "operational"},
                                                 "deliver_notifications": True})
    assert resolved.structured["status"] == "resolved" and resolved.structured.get("resolved_at")
    assert resolved.structured["incident_updates"][0]["body"] == "This incident has been resolved."
    assert sp.emulator.components[PAGE]["cmpapi000001"]["status"] == "operational"
    assert len(sp.emulator.incidents[PAGE][iid]["_updates"]) == 3
    unresolved = await c.call("list_unresolved_incidents", {})
    assert iid not in [i["id"] for i in unresolved.structured["incidents"]]


async def test_maintenance_create_and_update(sp: Sandbox) -> None:
    c = sp.connector()
    out = await c.call("create_maintenance", {
        "name": "Storage firmware", "scheduled_for": "2030-03-01T10:00:00+01:00",
        "scheduled_until": "2030-03-01T12:00:00+01:00", "body": "Storage will be read-only.",
        "component_ids": ["cmpstore0001"], "deliver_notifications": False})
    mid = out.structured["id"]
    sent = body_of(sp.requests("POST", "/incidents")[-1])["incident"]
    assert sent["status"] == "scheduled" and sent["scheduled_for"] == "2030-03-01T09:00:00Z"
    # Reminders and automatic start/end messages follow the explicit choice.
    assert sent["scheduled_remind_prior"] is False and sent["auto_transition_deliver_notifications_at_start"] is False
    assert sent["auto_transition_deliver_notifications_at_end"] is False and sent["scheduled_auto_in_progress"]
    assert out.structured["components"][0]["id"] == "cmpstore0001"
    assert not sp.emulator.outbox
    upcoming = await c.call("list_maintenances", {"which": "upcoming"})
    assert mid in [m["id"] for m in upcoming.structured["maintenances"]]

    moved = await c.call("update_maintenance", {"incident_id": mid, "scheduled_until": "2030-03-01T13:00:00Z",
                                                "deliver_notifications": False})
    assert moved.structured["scheduled_until"].startswith("2030-03-01T13:00:00")
    started = await c.call("update_maintenance", {"incident_id": mid, "status": "in_progress",
                                                  "body": "Work has started.", "deliver_notifications": True})
    assert started.structured["status"] == "in_progress" and sp.emulator.outbox[-1]["status"] == "in_progress"
    with pytest.raises(Exception, match="needs a status"):
        await c.call("update_maintenance", {"incident_id": mid, "body": "x", "deliver_notifications": False})
    with pytest.raises(Exception, match="nothing to change"):
        await c.call("update_maintenance", {"incident_id": mid, "deliver_notifications": False})
    with pytest.raises(Exception, match="after scheduled_for"):
        await c.call("create_maintenance", {"name": "x", "scheduled_for": "2030-01-01T02:00:00Z",
                                            "scheduled_until": "2030-01-01T01:00:00Z", "deliver_notifications": False})


async def test_metrics(sp: Sandbox) -> None:
    c = sp.connector()
    listed = await c.call("list_metrics", {})
    assert [m["id"] for m in listed.structured["metrics"]] == ["metapilat001", "meterrrate01", "metddcpu0001"]
    stamp = int(time.time()) - 95
    out = await c.call("add_metric_data_point", {"metric_id": "metapilat001", "value": 182.5, "timestamp": stamp})
    assert out.structured == {"metric_id": "metapilat001", "timestamp": stamp - stamp % 30, "value": 182.5}
    assert sp.emulator.metric_data["metapilat001"] == {stamp - stamp % 30: 182.5}
    assert body_of(sp.requests("POST", "/data")[-1]) == {"data": {"timestamp": stamp, "value": 182.5}}
    now = await c.call("add_metric_data_point", {"metric_id": "meterrrate01", "value": 0})
    assert abs(now.structured["timestamp"] - time.time()) < 120
    with pytest.raises(Exception, match="within the last 28 days"):
        await c.call("add_metric_data_point", {"metric_id": "metapilat001", "value": 1, "timestamp": 1000})


async def test_subscribers(sp: Sandbox) -> None:
    c = sp.connector()
    listed = await c.call("list_subscribers", {})
    ids = {s["id"] for s in listed.structured["subscribers"]}
    assert ids == {"subalice0001", "subbob000001", "subdave00001", "subhook00001", "subsms000001"}
    assert sp.requests("GET", "/subscribers")[-1]["query"] == "page=0&limit=25"
    quarantined = await c.call("list_subscribers", {"state": "quarantined"})
    assert [s["id"] for s in quarantined.structured["subscribers"]] == ["subquar00001"]
    found = await c.call("list_subscribers", {"q": "bob@", "type": "email", "sort_field": "created_at",
                                              "sort_direction": "desc"})
    assert [s["id"] for s in found.structured["subscribers"]] == ["subbob000001"]
    count = await c.call("count_subscribers", {})
    assert count.structured["total"] == 5 and count.structured["by_type"]["email"] == 3
    emails = await c.call("count_subscribers", {"type": "email", "state": "all"})
    assert emails.structured["total"] == 5  # 3 active, 1 unconfirmed, 1 quarantined

    added = await c.call("add_subscriber", {"email": "erin@example.com", "component_ids": ["cmpapi000001"]})
    assert added.structured["mode"] == "email" and added.structured["components"] == ["cmpapi000001"]
    assert "confirmation message" in added.text and sp.emulator.outbox[-1]["kind"] == "subscription_confirmation"
    hook = await c.call("add_subscriber", {"endpoint": "https://hooks.example.com/x", "email": "ops@example.com",
                                           "skip_confirmation_notification": True})
    assert hook.structured["mode"] == "webhook" and "no confirmation" in hook.text
    sms = await c.call("add_subscriber", {"phone_country": "GB", "phone_number": "7700900123"})
    assert sms.structured["mode"] == "sms"
    with pytest.raises(Exception, match="webhook subscriber needs"):
        await c.call("add_subscriber", {"endpoint": "https://hooks.example.com/y"})
    with pytest.raises(Exception, match="give email"):
        await c.call("add_subscriber", {})

    gone = await c.call("unsubscribe_subscriber", {"subscriber_id": "subdave00001",
                                                   "skip_unsubscription_notification": True})
    assert "dave@example.net" in gone.text and "without telling them" in gone.text
    assert sp.requests("DELETE")[-1]["query"] == "skip_unsubscription_notification=true"
    assert sp.emulator.subscribers[PAGE]["subdave00001"]["_state"] == "unsubscribed"
    assert not any(e.get("subscriber_id") == "subdave00001" for e in sp.emulator.outbox)


async def test_users(sp: Sandbox) -> None:
    out = await sp.connector().call("list_users", {})
    assert out.structured["users"][0] == {"id": "usralice0001", "email": "alice@example.com", "first_name": "Alice",
                                          "last_name": "Archer"}
    assert sp.requests("GET", "/users")[-1]["path"] == f"/organizations/{ORG}/users"


async def test_json_suffix_and_gateway_prefix_base_url(sp: Sandbox) -> None:
    """A base_url with a path prefix keeps it; the emulator accepts the documented `.json` form."""
    import httpx

    from tests._support.statuspage import KEY

    async with httpx.AsyncClient() as client:
        r = await client.get(f"{sp.url}/pages/{PAGE}/incidents/unresolved.json",
                             headers={"Authorization": f"OAuth {KEY}"})
    assert r.status_code == 200 and [i["id"] for i in r.json()] == ["incdblag0001"]
    assert sp.emulator.log[-1]["path"] == f"/pages/{PAGE}/incidents/unresolved"
    connector = sp.connector(base_url=sp.url + "/")
    out = await connector.call("get_page", {})
    assert out.structured["id"] == PAGE and sp.emulator.log[-1]["raw_path"] == f"/v1/pages/{PAGE}"
