"""Every PagerDuty tool through the connector against the emulator over real HTTP; the exchanges
are checked against the spec when each test ends (conftest)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import jsonschema
import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.pagerduty import TOOL_OPERATIONS, build, current_user
from tests._support.pagerduty import BOB_KEY, USER, USER_KEY, Sandbox

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = [
    "list_incidents", "get_incident", "acknowledge_incident", "resolve_incident", "reassign_incident",
    "escalate_incident", "add_incident_note", "list_incident_notes", "list_incident_alerts",
    "list_incident_log_entries", "create_incident", "list_services", "get_service", "list_users", "get_user",
    "get_current_user", "list_schedules", "get_schedule", "list_schedule_overrides", "list_oncalls",
    "list_escalation_policies", "get_escalation_policy", "list_teams", "list_priorities",
]


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _noop_credentials():  # pragma: no cover - never called
    raise AssertionError("no I/O expected")


def test_tool_list_is_stable_and_well_formed() -> None:
    connector = build(UpstreamConfig(key="pd", kind="pagerduty"), _noop_credentials)
    tools = connector.tools()
    assert [t.name for t in tools] == EXPECTED_TOOLS == list(TOOL_OPERATIONS)
    for tool in tools:
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False, tool.name
        assert len(tool.description) > 60 and len(tool.name) <= 28, tool.name
        writes = {m for m, _ in TOOL_OPERATIONS[tool.name]} != {"GET"}
        assert tool.read_only is not writes, tool.name
    by_name = {t.name: t for t in tools}
    for name in ("resolve_incident", "reassign_incident", "escalate_incident"):
        assert by_name[name].destructive and not by_name[name].idempotent
    assert by_name["acknowledge_incident"].idempotent and not by_name["acknowledge_incident"].destructive
    # Only the hints that differ from MCP's defaults, and destructiveHint on every write (the policy needs it).
    assert by_name["list_incidents"].annotations() == {"title": "List incidents", "readOnlyHint": True}
    assert by_name["resolve_incident"].annotations() == {"title": "Resolve incident", "destructiveHint": True}
    assert by_name["acknowledge_incident"].annotations() == {"title": "Acknowledge incident",
                                                             "destructiveHint": False, "idempotentHint": True}
    assert by_name["list_incidents"].input_schema["properties"]["limit"]["default"] == 25
    assert by_name["list_incidents"].extra["scopes"] == ["incidents.read"]
    assert by_name["add_incident_note"].extra["scopes"] == ["incidents.write"]


def test_schema_defaults_follow_page_size() -> None:
    connector = build(UpstreamConfig(key="pd", kind="pagerduty", page_size=40), _noop_credentials)
    tool = next(t for t in connector.tools() if t.name == "list_users")
    assert tool.input_schema["properties"]["limit"]["default"] == 40


async def test_list_incidents_filters_and_brackets(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("list_incidents", {"statuses": ["triggered", "acknowledged"], "urgencies": ["high"],
                                          "service_ids": ["PSVC001", "PSVC002"], "limit": 10})
    numbers = [i["incident_number"] for i in out.structured["incidents"]]
    assert numbers == [1001, 1002]  # newest first by default
    assert out.structured["more"] is False and out.structured["next_offset"] is None
    query = parse_qsl(pd.requests("GET", "/incidents")[-1]["query"])
    assert ("statuses[]", "triggered") in query and ("statuses[]", "acknowledged") in query
    assert ("service_ids[]", "PSVC002") in query and ("sort_by", "created_at:desc") in query
    assert "This is the last page." in out.text
    headers = pd.requests("GET", "/incidents")[-1]["headers"]
    assert headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert "from" not in headers  # reads do not name an actor


async def test_list_incidents_window_priority_team_user_and_total(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("list_incidents", {"priority_ids": ["PPRIO01"], "date_range": "all", "total": True})
    assert sorted(i["incident_number"] for i in out.structured["incidents"]) == [1000, 1001, 1004]
    assert out.structured["total"] == 3
    recent = await c.call("list_incidents", {"priority_ids": ["PPRIO01"]})  # default window: last 30 days
    assert 1000 not in [i["incident_number"] for i in recent.structured["incidents"]]
    window = await c.call("list_incidents", {"since": _iso(-timedelta(hours=10)), "until": _iso(timedelta(0)),
                                             "team_ids": ["PTEAM02"], "user_ids": ["PCAROL3", "PDAVE04"],
                                             "sort_by": ["urgency:desc", "created_at:asc"]})
    assert [i["incident_number"] for i in window.structured["incidents"]] == [1002, 1005]
    assert window.structured["incidents"][0]["assignees"] == [{"id": "PCAROL3", "summary": "Carol Chen"}]
    by_key = await c.call("list_incidents", {"incident_key": "pg-nope"})
    assert by_key.structured["incidents"] == []


async def test_get_incident_by_id_and_number(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("get_incident", {"id": "Q0CHECKOUT1001"})
    assert out.structured["title"] == "Checkout error rate above 5%"
    assert "Incident #1001" in out.text and "triggered" in out.text
    by_number = await c.call("get_incident", {"id": "1002"})
    assert by_number.structured["status"] == "acknowledged"


async def test_acknowledge_then_acknowledge_again(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("acknowledge_incident", {"id": "Q0CHECKOUT1001"})
    assert out.structured["changed"] is True and out.structured["incident"]["status"] == "acknowledged"
    assert pd.emulator.incidents["Q0CHECKOUT1001"]["status"] == "acknowledged"
    put = pd.requests("PUT")[-1]
    assert put["headers"]["from"] == "alice@example.com"
    assert put["headers"]["content-type"] == "application/json"
    entry = pd.emulator.log_entries["Q0CHECKOUT1001"][0]
    assert entry["type"] == "acknowledge_log_entry" and entry["agent"]["id"] == "PALICE1"
    again = await c.call("acknowledge_incident", {"id": "Q0CHECKOUT1001"})
    assert not again.is_error and again.structured == {"id": "Q0CHECKOUT1001", "changed": False,
                                                       "reason": "already_acknowledged"}
    assert "already acknowledged" in again.text and "not an error to retry" in again.text


async def test_resolve_with_resolution_and_already_resolved(pd: Sandbox) -> None:
    c = pd.connector(from_email="bob@example.com")  # `from` wins over [user] email
    out = await c.call("resolve_incident", {"id": "1003", "resolution": "CDN cache purged."})
    assert out.structured["incident"]["status"] == "resolved"
    entry = pd.emulator.log_entries["Q0WEBSLOW1003"][0]
    assert entry["type"] == "resolve_log_entry" and entry["note"] == "CDN cache purged."
    assert entry["agent"]["id"] == "PBOB002" and "Bob Baker" in entry["summary"]
    again = await c.call("resolve_incident", {"id": "1004"})
    assert again.structured["reason"] == "already_resolved" and "already resolved" in again.text
    ack = await c.call("acknowledge_incident", {"id": "1004"})
    assert ack.structured["changed"] is False and "already resolved" in ack.text


async def test_reassign_to_users_and_to_policy(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("reassign_incident", {"id": "1002", "user_ids": ["PBOB002", "PDAVE04"]})
    assert [a["id"] for a in out.structured["incident"]["assignees"]] == ["PBOB002", "PDAVE04"]
    body = json.loads(pd.requests("PUT")[-1]["body"])
    assert body["incident"]["assignments"][0] == {"assignee": {"id": "PBOB002", "type": "user_reference"}}
    policy = await c.call("reassign_incident", {"id": "1002", "escalation_policy_id": "PEP0001"})
    assert policy.structured["incident"]["escalation_policy"]["id"] == "PEP0001"
    kinds = [e["type"] for e in pd.emulator.log_entries["Q0PAYDBLAG1002"][:2]]
    assert kinds == ["assign_log_entry", "assign_log_entry"]
    for bad in ({"id": "1002"}, {"id": "1002", "user_ids": ["PBOB002"], "escalation_policy_id": "PEP0001"}):
        with pytest.raises(Exception, match="either user_ids"):
            await c.call("reassign_incident", bad)


async def test_escalate(pd: Sandbox) -> None:
    c = pd.connector(key=BOB_KEY, user_email="bob@example.com")
    out = await c.call("escalate_incident", {"id": "1001", "escalation_level": 2})
    assert [a["id"] for a in out.structured["incident"]["assignees"]] == ["PBOB002"]
    entry = pd.emulator.log_entries["Q0CHECKOUT1001"][0]
    assert entry["type"] == "escalate_log_entry" and entry["agent"]["id"] == "PBOB002"
    assert entry["assignees"][0]["id"] == "PBOB002"
    with pytest.raises(Exception, match="Escalation level must be between 1 and 2"):
        await c.call("escalate_incident", {"id": "1001", "escalation_level": 3})


async def test_notes_alerts_and_log_entries(pd: Sandbox) -> None:
    c = pd.connector(key=BOB_KEY)
    added = await c.call("add_incident_note", {"id": "Q0CHECKOUT1001", "content": "Rolled back 2026.11.21-3."})
    assert added.structured["note"]["user"]["id"] == "PBOB002"
    notes = await c.call("list_incident_notes", {"id": "Q0CHECKOUT1001"})
    assert [n["content"] for n in notes.structured["notes"]][-1] == "Rolled back 2026.11.21-3."
    assert len(notes.structured["notes"]) == 3
    alerts = await c.call("list_incident_alerts", {"id": "Q0CHECKOUT1001", "statuses": ["triggered"]})
    assert {a["alert_key"] for a in alerts.structured["alerts"]} == {"checkout-5xx", "checkout-latency"}
    log = await c.call("list_incident_log_entries", {"id": "Q0CHECKOUT1001"})
    first = log.structured["log_entries"][0]
    assert first["type"] == "annotate_log_entry" and first["agent"]["id"] == "PBOB002"
    overview = await c.call("list_incident_log_entries", {"id": "Q0CHECKOUT1001", "is_overview": True,
                                                          "since": _iso(-timedelta(days=1))})
    assert all(e["type"] != "annotate_log_entry" for e in overview.structured["log_entries"])
    with pytest.raises(Exception, match="content must not be empty"):
        await c.call("add_incident_note", {"id": "Q0CHECKOUT1001", "content": "   "})


async def test_create_incident(pd: Sandbox) -> None:
    c = pd.connector()
    out = await c.call("create_incident", {"title": "Login failures spiking", "service_id": "PSVC003",
                                           "urgency": "high", "details": "Auth errors 30%/min",
                                           "priority_id": "PPRIO02", "incident_key": "login-fail"})
    inc = out.structured["incident"]
    assert inc["incident_number"] == 1008 and inc["status"] == "triggered" and inc["priority"]["id"] == "PPRIO02"
    assert "Created." in out.text and pd.requests("POST", "/incidents")[-1]["headers"]["from"] == USER
    direct = await c.call("create_incident", {"title": "Check replica", "service_id": "PSVC002",
                                              "assignee_user_ids": ["PCAROL3"]})
    assert direct.structured["incident"]["assignees"] == [{"id": "PCAROL3", "summary": "Carol Chen"}]
    with pytest.raises(Exception, match="dedup key") as caught:
        await c.call("create_incident", {"title": "Again", "service_id": "PSVC003", "incident_key": "login-fail"})
    assert "repeating it unchanged will fail again" in str(caught.value)


async def test_services_users_and_current_user(pd: Sandbox) -> None:
    c = pd.connector(key=USER_KEY)
    services = await c.call("list_services", {"query": "check", "team_ids": ["PTEAM01"]})
    assert [s["id"] for s in services.structured["services"]] == ["PSVC001"]
    service = await c.call("get_service", {"id": "PSVC002"})
    assert service.structured["escalation_policy"]["id"] == "PEP0002"
    users = await c.call("list_users", {"query": "example.com", "team_ids": ["PTEAM02"]})
    assert [u["email"] for u in users.structured["users"]] == ["carol@example.com", "dave@example.com"]
    user = await c.call("get_user", {"id": "PBOB002"})
    assert user.structured["email"] == "bob@example.com"
    me = await c.call("get_current_user", {})
    assert me.structured["id"] == "PALICE1" and "alice@example.com" in me.text
    assert (await current_user(c))["email"] == "alice@example.com"


async def test_schedules_overrides_and_oncalls(pd: Sandbox) -> None:
    c = pd.connector()
    schedules = await c.call("list_schedules", {"query": "SRE"})
    assert [s["id"] for s in schedules.structured["schedules"]] == ["PSCHED1"]
    schedule = await c.call("get_schedule", {"id": "PSCHED1", "since": _iso(timedelta(0)),
                                             "until": _iso(timedelta(days=2))})
    entries = schedule.structured["final_schedule"]["rendered_schedule_entries"]
    assert entries and entries[0]["user"]["id"] == "PDAVE04"  # the seeded override covers today
    overrides = await c.call("list_schedule_overrides", {"id": "PSCHED1", "since": _iso(-timedelta(days=2)),
                                                         "until": _iso(timedelta(days=7))})
    assert [o["id"] for o in overrides.structured["overrides"]] == ["PO00001", "PO00002"]
    with pytest.raises(Exception, match="until is required"):
        await c.call("list_schedule_overrides", {"id": "PSCHED1", "since": _iso(timedelta(0))})
    oncalls = await c.call("list_oncalls", {"escalation_policy_ids": ["PEP0002"]})
    assert [(o["escalation_level"], o["user"]["id"]) for o in oncalls.structured["oncalls"]][1:] == [
        (2, "PCAROL3"), (2, "PALICE1")]
    mine = await c.call("list_oncalls", {"user_ids": ["PDAVE04"], "earliest": True})
    assert {o["schedule"]["id"] for o in mine.structured["oncalls"]} >= {"PSCHED1"}
    query = parse_qsl(pd.requests("GET", "/oncalls")[-1]["query"])
    assert ("user_ids[]", "PDAVE04") in query and ("earliest", "true") in query


async def test_policies_teams_priorities(pd: Sandbox) -> None:
    c = pd.connector()
    policies = await c.call("list_escalation_policies", {"user_ids": ["PBOB002"]})
    assert [p["id"] for p in policies.structured["escalation_policies"]] == ["PEP0001"]
    assert policies.structured["escalation_policies"][0]["levels"][1]["targets"][0]["id"] == "PBOB002"
    policy = await c.call("get_escalation_policy", {"id": "PEP0002"})
    assert len(policy.structured["escalation_rules"]) == 2
    teams = await c.call("list_teams", {"query": "data"})
    assert [t["name"] for t in teams.structured["teams"]] == ["Database"]
    priorities = await c.call("list_priorities", {})
    assert [p["name"] for p in priorities.structured["priorities"]] == ["P1", "P2", "P3", "P4", "P5"]


async def test_bad_arguments_are_refused_before_sending(pd: Sandbox) -> None:
    c = pd.connector()
    for name, args, match in [
        ("get_incident", {"id": "../users/me"}, "must be a PagerDuty id"),
        ("list_incidents", {"since": "yesterday"}, "ISO 8601"),
        ("list_incidents", {"since": "2026-01-01T00:00:00"}, "needs a time zone"),
        ("list_incidents", {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before until"),
        ("list_incidents", {"date_range": "all", "since": "2026-01-01T00:00:00Z"}, "not both"),
        ("list_incidents", {"limit": 101}, "from 1 to 100"),
        ("escalate_incident", {"id": "1001", "escalation_level": 0}, "integer ≥ 1"),
    ]:
        with pytest.raises(Exception, match=match):
            await c.call(name, args)
    assert pd.emulator.log == []


async def test_bearer_user_token_writes_without_from(pd: Sandbox) -> None:
    c = pd.connector(key="pdus+_0XBobClassicWrite0003", scheme="bearer", user_email=None)
    out = await c.call("acknowledge_incident", {"id": "1005"})
    assert out.structured["changed"] is True
    assert pd.requests("PUT")[-1]["headers"].get("from") is None
    assert pd.emulator.log_entries["Q0BACKUP01005"][0]["agent"]["id"] == "PBOB002"
    pd.allow("PUT /incidents/{id}: missing required header 'From'")  # the spec marks it required regardless
