"""Every Opsgenie tool through the connector against the emulator over HTTP.

The `og` fixture checks every request and response against the vendor spec when each test ends.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.sandbox.opsgenie import seed
from tests._support.opsgenie import USER

pytestmark = pytest.mark.anyio

EXPECTED = {
    "list_alerts": "read", "count_alerts": "read", "get_alert": "read", "create_alert": "write",
    "acknowledge_alert": "write", "unacknowledge_alert": "write", "close_alert": "destructive",
    "add_alert_note": "write", "snooze_alert": "write", "escalate_alert": "write", "assign_alert": "write",
    "list_alert_notes": "read", "list_alert_logs": "read", "get_request_status": "read",
    "list_escalations": "read", "get_escalation": "read", "list_schedules": "read", "get_schedule": "read",
    "get_schedule_timeline": "read", "who_is_on_call": "read", "next_on_call": "read", "list_teams": "read",
    "get_team": "read", "list_users": "read", "get_user": "read",
}


def _closed_objects(schema: dict, where: str) -> list[str]:
    """Every object schema must say additionalProperties: false; every array must be bounded."""
    problems = []
    if schema.get("type") == "object" and "properties" in schema and schema.get("additionalProperties") is not False:
        problems.append(where)
    if schema.get("type") == "array" and "maxItems" not in schema:
        problems.append(f"{where} (unbounded array)")
    if schema.get("type") == "string" and "enum" not in schema and "maxLength" not in schema:
        problems.append(f"{where} (unbounded string)")
    for key, sub in (schema.get("properties") or {}).items():
        problems += _closed_objects(sub, f"{where}.{key}")
    if isinstance(schema.get("items"), dict):
        problems += _closed_objects(schema["items"], f"{where}[]")
    return problems


async def test_tool_catalog_is_stable_and_well_formed(og):
    tools = og.connector().tools()
    assert {t.name: ("destructive" if t.destructive else "read" if t.read_only else "write") for t in tools} == EXPECTED
    for tool in tools:
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,30}", tool.name) and not tool.name.startswith("opsgenie")
        assert tool.input_schema["type"] == "object" and tool.input_schema["additionalProperties"] is False
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert _closed_objects(tool.input_schema, tool.name) == []
        assert len(tool.description) > 60 and tool.title
        limit = tool.input_schema["properties"].get("limit")
        if limit:
            assert limit["maximum"] <= 100 and limit["minimum"] == 1
    assert og.emulator.log == []  # listing tools does no I/O


async def test_list_get_and_count_alerts(og):
    con = og.connector()
    out = await con.call("list_alerts", {"query": "status:open AND priority:P1"})
    assert [a["id"] for a in out.structured["alerts"]] == [seed.ALERT_DB_ID]
    assert out.structured["next_offset"] is None and "last page" in out.text
    out = await con.call("count_alerts", {"query": "status:open"})
    assert out.structured["count"] == 4 and "4 alerts" in out.text
    for ident, kind in ((seed.ALERT_DB_ID, "id"), ("db-primary-replication-lag", "alias"), ("101", "tiny")):
        out = await con.call("get_alert", {"identifier": ident, "identifierType": kind})
        assert out.structured["id"] == seed.ALERT_DB_ID and out.structured["details"] == {"lag_seconds": "45"}
        assert "Replication lag" in out.text
    sent = og.requests("GET", "/v2/alerts/")
    assert [e["query"] for e in sent[-3:]] == ["identifierType=id", "identifierType=alias", "identifierType=tiny"]
    assert all(e["authorized"] for e in og.emulator.log)


async def test_alias_with_reserved_characters_stays_one_path_segment(og):
    con = og.connector()
    out = await con.call("create_alert", {"message": "odd alias", "alias": "svc a?b#c"})
    assert out.structured["alias"] == "svc a?b#c"
    got = await con.call("get_alert", {"identifier": "svc a?b#c", "identifierType": "alias"})
    assert got.structured["message"] == "odd alias"


async def test_create_alert_polls_and_returns_the_alert(og):
    con = og.connector()
    out = await con.call("create_alert", {
        "message": "Checkout latency above 2 s", "alias": "checkout-latency", "priority": "P2",
        "tags": ["checkout"], "details": {"p99": "2.4s"}, "entity": "checkout",
        "responders": [{"type": "team", "name": "SRE"}, {"type": "user", "username": "bob@example.com"}],
        "visibleTo": [{"type": "team", "id": seed.DB_TEAM_ID}], "note": "opened from the assistant"})
    alert_id = out.structured["alertId"]
    assert out.structured["processed"] and out.structured["alias"] == "checkout-latency"
    assert alert_id in out.text and not out.is_error
    sent = json.loads(og.requests("POST", "/v2/alerts")[0]["body"])
    assert sent["user"] == USER and sent["source"] == "mcp-access-proxy"
    stored = og.emulator.alerts[alert_id]
    assert stored["priority"] == "P2" and stored["responders"][0] == {"type": "team", "id": seed.SRE_TEAM_ID}
    # the status endpoint was polled: first "not processed", then the result
    polls = og.requests("GET", "/v2/alerts/requests/")
    assert [p["status"] for p in polls] == [404, 200]
    assert polls[0]["response_headers"]["X-Opsgenie-Errortype"] == "RequestNotProcessed"
    again = await con.call("create_alert", {"message": "Checkout latency above 2 s", "alias": "checkout-latency"})
    assert again.structured["alertId"] == alert_id and og.emulator.alerts[alert_id]["count"] == 2


async def test_alert_actions_change_the_alert_and_name_the_user(og):
    con = og.connector()
    ident = {"identifier": "102", "identifierType": "tiny"}
    await con.call("acknowledge_alert", {**ident, "note": "on it"})
    alert = og.emulator.alerts[seed.ALERT_DISK_ID]
    assert alert["acknowledged"] and alert["report"]["acknowledgedBy"] == USER
    await con.call("unacknowledge_alert", ident)
    assert not alert["acknowledged"]
    out = await con.call("add_alert_note", {**ident, "note": "cleaned /var/log"})
    assert "Added note" in out.text
    assert og.emulator.notes[seed.ALERT_DISK_ID][-1]["note"] == "cleaned /var/log"
    await con.call("snooze_alert", {**ident, "minutes": 30})
    assert alert["snoozed"]
    until = datetime.fromisoformat(alert["snoozedUntil"].replace("Z", "+00:00"))
    assert timedelta(minutes=25) < until - datetime.now(UTC) <= timedelta(minutes=31)
    end = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    await con.call("snooze_alert", {**ident, "endTime": end.isoformat()})
    assert alert["snoozedUntil"].startswith(end.strftime("%Y-%m-%dT%H:%M:%S"))
    await con.call("escalate_alert", {**ident, "escalation": {"name": "SRE_escalation"}})
    await con.call("assign_alert", {**ident, "owner": {"username": "carol@example.com"}})
    assert alert["owner"] == "carol@example.com"
    out = await con.call("close_alert", {**ident, "note": "fixed"})
    assert alert["status"] == "closed" and out.structured["action"] == "Close"
    bodies = [json.loads(e["body"]) for e in og.requests("POST", "/v2/alerts/")]
    assert all(b["user"] == USER and b["source"] == "mcp-access-proxy" for b in bodies)
    assert all(e["query"] == "identifierType=tiny" for e in og.requests("POST", "/v2/alerts/"))


async def test_actions_without_user_email_send_no_user(og):
    con = og.connector(user_email=None)
    await con.call("acknowledge_alert", {"identifier": seed.ALERT_CERT_ID})
    assert "user" not in json.loads(og.requests("POST", "/acknowledge")[0]["body"])


async def test_bad_action_arguments_are_refused_before_sending(og):
    con = og.connector()
    for name, args in (("snooze_alert", {"identifier": "101", "identifierType": "tiny"}),
                       ("snooze_alert", {"identifier": "101", "endTime": "tomorrow"}),
                       ("snooze_alert", {"identifier": "101", "endTime": "2030-01-01T00:00:00"}),
                       ("escalate_alert", {"identifier": "101", "escalation": {}}),
                       ("create_alert", {"message": "x", "responders": [{"type": "team"}]}),
                       ("get_alert", {"identifier": "  "})):
        with pytest.raises(ConnectorError) as info:
            await con.call(name, args)
        assert info.value.error_type == "bad_argument"
    assert og.emulator.log == []


async def test_notes_and_logs(og):
    con = og.connector()
    notes = await con.call("list_alert_notes", {"identifier": seed.ALERT_DB_ID})
    assert [n["note"] for n in notes.structured["notes"]][0] == "Watching for an hour"  # newest first
    logs = await con.call("list_alert_logs", {"identifier": "db-primary-replication-lag", "identifierType": "alias",
                                              "order": "asc", "limit": 2})
    assert logs.structured["logs"][0]["log"] == "Alert created via Sandbox API"
    assert logs.structured["next_offset"]


async def test_request_status_tool(og_factory):
    og = og_factory(processing_polls=2)
    con = og.connector()
    rid = og.emulator.submit("Acknowledge", og.emulator.alert_action("acknowledge", seed.ALERT_CERT_ID, "id", {}))
    first = await con.call("get_request_status", {"requestId": rid})
    assert first.structured == {"requestId": rid, "processed": False} and "not processed" in first.text
    await con.call("get_request_status", {"requestId": rid})
    done = await con.call("get_request_status", {"requestId": rid})
    assert done.structured["processed"] and done.structured["isSuccess"]
    assert done.structured["alertId"] == seed.ALERT_CERT_ID and "succeeded" in done.text
    with pytest.raises(ConnectorError) as info:
        await con.call("get_request_status", {"requestId": "7b1f6a52-0000-4000-8000-000000000000"})
    assert info.value.error_type == "http_404" and "request" in info.value.message.lower()


async def test_escalations_teams_users(og):
    con = og.connector()
    esc = await con.call("list_escalations", {})
    assert [e["id"] for e in esc.structured["escalations"]] == [seed.ESCALATION_ID]
    one = await con.call("get_escalation", {"identifier": "SRE_escalation", "identifierType": "name"})
    assert len(one.structured["rules"]) == 3 and "3 rules" in one.text
    teams = await con.call("list_teams", {})
    assert {t["name"] for t in teams.structured["teams"]} == {"SRE", "Database"}
    team = await con.call("get_team", {"identifier": "Database", "identifierType": "name"})
    assert {m["user"]["username"] for m in team.structured["members"]} == {"carol@example.com", "erin@example.com"}
    user = await con.call("get_user", {"identifier": "bob@example.com", "includeContacts": True})
    assert user.structured["id"] == seed.BOB_ID and user.structured["userContacts"][0]["to"] == "bob@example.com"
    admins = await con.call("list_users", {"query": "role:admin"})
    assert [u["username"] for u in admins.structured["users"]] == ["alice@example.com"]
    assert admins.structured["totalCount"] == 1


async def test_schedules_timeline_and_on_call(og):
    con = og.connector()
    plain = await con.call("list_schedules", {})
    assert {s["name"] for s in plain.structured["schedules"]} == {"SRE_schedule", "Database_schedule"}
    assert "rotations" not in plain.structured["schedules"][0]
    expanded = await con.call("list_schedules", {"expandRotations": True})
    assert expanded.structured["schedules"][0]["rotations"][0]["type"] == "weekly"
    sched = await con.call("get_schedule", {"identifier": "SRE_schedule", "identifierType": "name"})
    assert sched.structured["id"] == seed.SCHEDULE_ID
    # 2025-01-06 09:00Z starts alice's week; bob from 2025-01-13, carol from 2025-01-20
    at = "2025-01-14T12:00:00+01:00"
    now_on = await con.call("who_is_on_call", {"identifier": "SRE_schedule", "identifierType": "name", "date": at})
    assert [p["name"] for p in now_on.structured["onCallParticipants"]] == ["bob@example.com"]
    assert "bob@example.com" in now_on.text
    sent = og.requests("GET", "/on-calls")[0]["query"]
    assert "scheduleIdentifierType=name" in sent and "identifierType=name&" not in sent
    assert "date=2025-01-14T11%3A00%3A00Z" in sent
    flat = await con.call("who_is_on_call", {"identifier": seed.SCHEDULE_ID, "flat": True, "date": at})
    assert flat.structured["onCallRecipients"] == ["bob@example.com"]
    nxt = await con.call("next_on_call", {"identifier": seed.SCHEDULE_ID, "date": at})
    assert "carol@example.com" in nxt.text
    timeline = await con.call("get_schedule_timeline", {"identifier": seed.SCHEDULE_ID, "date": "2025-01-06T09:00:00Z",
                                                        "interval": 3, "intervalUnit": "weeks", "expand": ["base"]})
    final = [p["recipient"] for p in timeline.structured["periods"] if p["timeline"] == "final"]
    assert final == ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert any(p["timeline"] == "base" for p in timeline.structured["periods"])
    nobody = await con.call("who_is_on_call", {"identifier": seed.DB_SCHEDULE_ID})
    assert "nobody" in nobody.text
