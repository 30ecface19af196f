"""Every tool of the JSM backend through the real proxy process against the emulator (one proxy for the module);
each exchange the emulator saw is checked against Atlassian's OpenAPI document when the module ends.

Two upstreams: `og` (cloud_id configured) and `ogsite` (cloud id looked up from the site; small pages and
results)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.opsgenie import build
from mcp_proxy.sandbox.jsm import create_app, seed
from tests._support.jsm import JsmChecker, check_exchanges
from tests._support.proxy import ProxyEnv, text_of
from tests._support.rest import Live, Served, assert_secrets_kept, served_and_checked, whole_module_ran

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with served_and_checked("JSM Ops", create_app(), JsmChecker, check_exchanges) as served:
        yield served


@pytest.fixture(scope="module")
async def live(served: Served, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    proxy = ProxyEnv(tmp_path_factory.mktemp("jsm"))
    common = {"kind": "opsgenie", "api": "jsm", "base_url": served.url, "call_timeout": 20, "email": seed.EMAIL,
              "api_token": "env:JSM_TOKEN"}
    proxy.write({"og": {**common, "cloud_id": seed.CLOUD_ID},
                 "ogsite": {**common, "site": seed.SITE, "resources_url": f"{served.url}/_edge/tenant_info",
                            "page_size": 2, "max_result_chars": 1500}})
    async with proxy.client(env=proxy.env(JSM_TOKEN=seed.API_TOKEN)) as client:
        yield Live(proxy, client)
    assert_secrets_kept(proxy, seed.API_TOKEN)


@pytest.fixture
def emu(served: Served):
    return served.emulator


async def never() -> None:  # pragma: no cover - listing tools does no I/O
    raise AssertionError


TOOLS = [t.name for t in build(UpstreamConfig(key="og", kind="opsgenie", api="jsm"), never).tools()]


async def test_the_tool_list_is_the_backends_with_the_prefix(live: Live) -> None:
    listed = {t.name: t for t in (await live.client.list_tools()).tools}
    for tool in build(UpstreamConfig(key="og", kind="opsgenie", api="jsm"), never).tools():
        exposed = listed[f"og_{tool.name}"]
        assert exposed.input_schema == tool.input_schema and exposed.description == tool.description
        # A hint equal to MCP's default is left out; a write still says destructiveHint either way.
        assert (exposed.annotations.read_only_hint is True) is tool.read_only
        assert exposed.annotations.destructive_hint is (None if tool.read_only else tool.destructive)
    assert len([n for n in listed if n.startswith("og_")]) == len(TOOLS) == 22
    assert "og_list_users" not in listed and "og_get_team" not in listed


async def test_alert_reads(live: Live) -> None:
    p1 = await live.call("og_list_alerts", {"query": "status:open AND priority:P1"})
    assert [a["id"] for a in p1.structured_content["alerts"]] == [seed.ALERT_DB_ID]
    assert p1.structured_content["count"] == 1 and "This is the last page." in text_of(p1)
    assert (await live.call("og_count_alerts", {"query": "status:closed"})).structured_content["count"] == 1
    by_tiny = await live.call("og_get_alert", {"identifier": "101", "identifierType": "tiny"})
    assert by_tiny.structured_content["id"] == seed.ALERT_DB_ID
    assert by_tiny.structured_content["extraProperties"] == {"lag_seconds": "45"}
    by_alias = await live.call("og_get_alert", {"identifier": "db-primary-replication-lag",
                                                "identifierType": "alias"})
    assert by_alias.structured_content["tinyId"] == "101"
    notes = await live.call("og_list_alert_notes", {"identifier": seed.ALERT_DB_ID, "limit": 2})
    assert notes.structured_content["notes"][0]["note"] == "Watching for an hour"
    more = await live.call("og_list_alert_notes", {"identifier": seed.ALERT_DB_ID, "limit": 2,
                                                   "offset": notes.structured_content["next_offset"]})
    assert [n["note"] for n in more.structured_content["notes"]] == ["Vacuum running on primary",
                                                                      "Replica is 45 s behind"]
    logs = await live.call("og_list_alert_logs", {"identifier": "101", "identifierType": "tiny", "limit": 2})
    assert logs.structured_content["logs"][0]["log"] == "Alert count increased to 1"
    assert logs.structured_content["next_offset"]
    small = await live.call("ogsite_list_alerts", {})
    assert len(small.structured_content["alerts"]) == 2 and small.structured_content["next_offset"] == 2


async def test_create_alert_returns_the_processed_outcome(live: Live, emu) -> None:
    created = await live.call("og_create_alert", {
        "message": "Checkout latency above 2 s", "alias": "e2e-checkout-latency", "priority": "P2",
        "tags": ["checkout"], "details": {"p99": "2.4s"}, "responders": [{"type": "team", "name": "SRE"}]})
    out = created.structured_content
    assert out["processed"] is True and out["alertId"] in emu.alerts
    status = await live.call("og_get_request_status", {"requestId": out["requestId"]})
    assert status.structured_content["processed"] and status.structured_content["action"] == "Create"
    alert = emu.alerts[out["alertId"]]
    assert alert["responders"] == [{"type": "team", "id": seed.SRE_TEAM_ID}]
    assert alert["extraProperties"] == {"p99": "2.4s"}


async def test_alert_actions_change_the_alert(live: Live, emu) -> None:
    ident = {"identifier": "103", "identifierType": "tiny"}
    alert = emu.alerts[seed.ALERT_CERT_ID]
    ack = await live.call("og_acknowledge_alert", {**ident, "note": "looking"})
    assert ack.structured_content["isSuccess"] and ack.structured_content["noteAdded"] and alert["acknowledged"]
    await live.call("og_unacknowledge_alert", ident)
    assert (await live.call("og_get_alert", ident)).structured_content["acknowledged"] is False
    note = await live.call("og_add_alert_note", {**ident, "note": "renewal ticket CERT-42"})
    assert note.structured_content["note"] == "renewal ticket CERT-42"
    notes = await live.call("og_list_alert_notes", ident)
    assert notes.structured_content["notes"][0]["note"] == "renewal ticket CERT-42"
    await live.call("og_snooze_alert", {**ident, "minutes": 30})
    assert alert["snoozed"] is True
    await live.call("og_escalate_alert", {**ident, "escalation": {"name": "SRE_escalation"}})
    await live.call("og_assign_alert", {**ident, "owner": {"id": seed.CAROL}})
    assert (await live.call("og_get_alert", ident)).structured_content["owner"] == "carol@example.com"
    refused = await live.error("og_assign_alert", {**ident, "owner": {"username": "carol@example.com"}})
    assert "account id" in refused
    closed = await live.call("og_close_alert", {**ident, "note": "renewed"})
    assert closed.structured_content["action"] == "Close" and alert["status"] == "closed"


async def test_schedules_on_call_teams_and_escalations(live: Live) -> None:
    schedules = await live.call("og_list_schedules", {"expandRotations": True})
    assert [s["name"] for s in schedules.structured_content["schedules"]] == ["SRE_schedule", "Database_schedule"]
    one = await live.call("og_get_schedule", {"identifier": "SRE_schedule", "identifierType": "name"})
    assert one.structured_content["id"] == seed.SRE_SCHEDULE_ID
    # 2025-01-06T09:00Z + 1 week: bob's turn; next is carol
    at = {"identifier": seed.SRE_SCHEDULE_ID, "date": "2025-01-14T10:00:00Z"}
    now = await live.call("og_who_is_on_call", at)
    assert now.structured_content == {"onCallParticipants": [{"id": seed.BOB, "type": "user"}]}
    flat = await live.call("og_who_is_on_call", {**at, "flat": True})
    assert flat.structured_content == {"onCallUsers": [seed.BOB]}
    nxt = await live.call("og_next_on_call", {**at, "identifier": "SRE_schedule", "identifierType": "name"})
    assert nxt.structured_content == {"nextOnCallParticipants": [{"id": seed.CAROL, "type": "user"}]}
    timeline = await live.call("og_get_schedule_timeline", {**at, "intervalUnit": "days", "interval": 3,
                                                            "expand": ["base"]})
    assert {p["recipient"] for p in timeline.structured_content["periods"]} == {seed.BOB}
    teams = await live.call("og_list_teams")
    assert [t["name"] for t in teams.structured_content["teams"]] == ["SRE", "Database"]
    escalations = await live.call("og_list_escalations")
    assert [(e["name"], e["teamId"]) for e in escalations.structured_content["escalations"]] == [
        ("SRE_escalation", seed.SRE_TEAM_ID), ("Database_escalation", seed.DB_TEAM_ID)]
    one_esc = await live.call("og_get_escalation", {"identifier": "Database_escalation", "identifierType": "name"})
    assert one_esc.structured_content["id"] == seed.DB_ESCALATION_ID


async def test_the_site_lookup_and_errors_through_the_proxy(live: Live, emu) -> None:
    assert (await live.call("ogsite_count_alerts", {})).structured_content["count"] >= 5
    assert len([e for e in emu.log if e["path"] == "/_edge/tenant_info"]) == 1
    missing = await live.error("og_get_alert", {"identifier": "no-such-alert"})
    assert "no-such-alert" in missing
    assert "colour" in await live.error("og_count_alerts", {"query": "colour:blue"})


async def test_every_tool_was_called(live: Live, request: pytest.FixtureRequest) -> None:
    if not whole_module_ran(request):
        pytest.skip("only meaningful when the whole module runs")
    called = {name.removeprefix("og_").removeprefix("ogsite_") for name in live.called}
    assert set(TOOLS) <= called, f"not called: {set(TOOLS) - called}"
