"""Every PagerDuty tool through the real proxy process against the emulator (one proxy for the module).

Two upstreams in API-key mode: `pd` with an account-level key and `from` (the actor PagerDuty needs
for writes), `pdme` with a user-level key (what `get_current_user` needs).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.pagerduty import TOOL_OPERATIONS, build
from mcp_proxy.sandbox.pagerduty import create_app
from tests._support.pagerduty import check_exchanges
from tests._support.proxy import ProxyEnv, text_of
from tests._support.rest import Live, Served, assert_secrets_kept, served_and_checked, whole_module_ran
from tests.pagerduty.spec_check import OpenApiChecker

pytestmark = pytest.mark.anyio

ACCOUNT_KEY = "u+E2eAcctKey0123456"
USER_KEY = "u+E2eAliceKey012345"  # alice@example.com's own key


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = create_app(api_keys={ACCOUNT_KEY: None, USER_KEY: "alice@example.com"})
    with served_and_checked("PagerDuty", app, OpenApiChecker, check_exchanges) as served:
        yield served


@pytest.fixture(scope="module")
async def live(served: Served, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    proxy = ProxyEnv(tmp_path_factory.mktemp("pagerduty"))
    common = {"kind": "pagerduty", "base_url": served.url, "call_timeout": 20}
    proxy.write({"pd": {**common, "api_key": "env:PD_KEY", "from": "alice@example.com"},
                 "pdme": {**common, "api_key": "env:PD_USER_KEY"}}, email="alice@example.com")
    async with proxy.client(env=proxy.env(PD_KEY=ACCOUNT_KEY, PD_USER_KEY=USER_KEY)) as client:
        yield Live(proxy, client)
    assert_secrets_kept(proxy, ACCOUNT_KEY, USER_KEY)


@pytest.fixture
def emu(served: Served):
    return served.emulator


async def test_the_tool_list_is_the_connectors_with_the_prefix(live: Live) -> None:
    listed = {t.name: t for t in (await live.client.list_tools()).tools}
    assert {n for n in listed if n.startswith("pd_")} == {f"pd_{name}" for name in TOOL_OPERATIONS}

    async def never() -> None:  # pragma: no cover - listing tools does no I/O
        raise AssertionError

    for tool in build(UpstreamConfig(key="pd", kind="pagerduty"), never).tools():
        exposed = listed[f"pd_{tool.name}"]
        assert exposed.input_schema == tool.input_schema and exposed.description == tool.description
        # Hints equal to MCP's defaults are left out; a write says destructiveHint either way.
        assert (exposed.annotations.read_only_hint is True) is tool.read_only
        assert exposed.annotations.destructive_hint is (None if tool.read_only else tool.destructive)


async def test_incident_reads(live: Live) -> None:
    urgent = await live.call("pd_list_incidents", {"statuses": ["triggered", "acknowledged"], "urgencies": ["high"],
                                                   "service_ids": ["PSVC001", "PSVC002"], "total": True})
    assert [i["incident_number"] for i in urgent.structured_content["incidents"]] == [1001, 1002]
    assert urgent.structured_content["total"] == 2
    one = await live.call("pd_get_incident", {"id": "1002"})
    assert one.structured_content["id"] == "Q0PAYDBLAG1002" and one.structured_content["status"] == "acknowledged"
    notes = await live.call("pd_list_incident_notes", {"id": "Q0CHECKOUT1001"})
    assert len(notes.structured_content["notes"]) >= 2
    alerts = await live.call("pd_list_incident_alerts", {"id": "Q0CHECKOUT1001", "statuses": ["triggered"]})
    assert {a["alert_key"] for a in alerts.structured_content["alerts"]} == {"checkout-5xx", "checkout-latency"}
    log = await live.call("pd_list_incident_log_entries", {"id": "Q0CHECKOUT1001", "is_overview": True})
    assert "trigger_log_entry" in {e["type"] for e in log.structured_content["log_entries"]}


async def test_incident_writes_act_as_the_configured_user(live: Live, emu) -> None:
    ack = await live.call("pd_acknowledge_incident", {"id": "1005"})
    assert ack.structured_content["changed"] is True
    assert (await live.call("pd_get_incident", {"id": "1005"})).structured_content["status"] == "acknowledged"
    put = [e for e in emu.log if e["method"] == "PUT"][-1]
    assert put["headers"]["from"] == "alice@example.com"
    note = await live.call("pd_add_incident_note", {"id": "1005", "content": "Backup job rerun scheduled."})
    assert note.structured_content["note"]["user"]["id"] == "PALICE1"
    notes = await live.call("pd_list_incident_notes", {"id": "1005"})
    assert notes.structured_content["notes"][-1]["content"] == "Backup job rerun scheduled."
    reassigned = await live.call("pd_reassign_incident", {"id": "1005", "user_ids": ["PBOB002"]})
    assert [a["id"] for a in reassigned.structured_content["incident"]["assignees"]] == ["PBOB002"]
    escalated = await live.call("pd_escalate_incident", {"id": "1005", "escalation_level": 2})
    # 1005 is on Payments DB, whose policy PEP0002 pages carol and alice at level 2
    assert [a["id"] for a in escalated.structured_content["incident"]["assignees"]] == ["PCAROL3", "PALICE1"]
    resolved = await live.call("pd_resolve_incident", {"id": "1005", "resolution": "Rerun succeeded."})
    assert resolved.structured_content["incident"]["status"] == "resolved"
    log = await live.call("pd_list_incident_log_entries", {"id": "1005", "limit": 10})
    latest = log.structured_content["log_entries"][0]
    assert latest["type"] == "resolve_log_entry" and latest["agent"]["id"] == "PALICE1"
    assert emu.incidents["Q0BACKUP01005"]["status"] == "resolved"


async def test_create_incident(live: Live, emu) -> None:
    created = await live.call("pd_create_incident", {"title": "Search latency high", "service_id": "PSVC003",
                                                     "urgency": "high", "incident_key": "e2e-search-latency",
                                                     "priority_id": "PPRIO02"})
    incident = created.structured_content["incident"]
    assert incident["status"] == "triggered" and incident["priority"]["id"] == "PPRIO02"
    found = await live.call("pd_list_incidents", {"incident_key": "e2e-search-latency"})
    assert [i["id"] for i in found.structured_content["incidents"]] == [incident["id"]]
    sent = [e for e in emu.log if e["method"] == "POST" and e["path"] == "/incidents"][-1]
    assert json.loads(sent["body"])["incident"]["title"] == "Search latency high"


async def test_services_users_and_the_current_user(live: Live) -> None:
    services = await live.call("pd_list_services", {"query": "check"})
    assert [s["id"] for s in services.structured_content["services"]] == ["PSVC001"]
    service = await live.call("pd_get_service", {"id": "PSVC002"})
    assert service.structured_content["escalation_policy"]["id"] == "PEP0002"
    users = await live.call("pd_list_users", {"team_ids": ["PTEAM01"]})
    assert [u["id"] for u in users.structured_content["users"]] == ["PALICE1", "PBOB002"]
    bob = await live.call("pd_get_user", {"id": "PBOB002"})
    assert bob.structured_content["email"] == "bob@example.com"
    me = await live.call("pdme_get_current_user")
    assert me.structured_content["id"] == "PALICE1" and "alice@example.com" in text_of(me)


async def test_schedules_overrides_and_on_calls(live: Live) -> None:
    schedules = await live.call("pd_list_schedules", {"query": "Database"})
    assert [s["id"] for s in schedules.structured_content["schedules"]] == ["PSCHED2"]
    schedule = await live.call("pd_get_schedule", {"id": "PSCHED1", "since": iso(timedelta(0)),
                                                   "until": iso(timedelta(days=1))})
    entries = schedule.structured_content["final_schedule"]["rendered_schedule_entries"]
    assert entries[0]["user"]["id"] == "PDAVE04"  # the seeded override covers today
    overrides = await live.call("pd_list_schedule_overrides", {"id": "PSCHED1", "since": iso(-timedelta(days=2)),
                                                               "until": iso(timedelta(days=7))})
    assert [o["id"] for o in overrides.structured_content["overrides"]] == ["PO00001", "PO00002"]
    oncalls = await live.call("pd_list_oncalls", {"schedule_ids": ["PSCHED1"]})
    assert {o["user"]["id"] for o in oncalls.structured_content["oncalls"]} == {"PDAVE04"}


async def test_policies_teams_and_priorities(live: Live) -> None:
    policies = await live.call("pd_list_escalation_policies", {"team_ids": ["PTEAM02"]})
    assert [p["id"] for p in policies.structured_content["escalation_policies"]] == ["PEP0002"]
    policy = await live.call("pd_get_escalation_policy", {"id": "PEP0001"})
    assert len(policy.structured_content["escalation_rules"]) == 2
    teams = await live.call("pd_list_teams")
    assert [t["name"] for t in teams.structured_content["teams"]] == ["SRE", "Database"]
    priorities = await live.call("pd_list_priorities", {"limit": 3})
    assert [p["name"] for p in priorities.structured_content["priorities"]] == ["P1", "P2", "P3"]
    assert priorities.structured_content["next_offset"] == 3


async def test_schema_invalid_calls_are_refused_by_the_proxy(live: Live, emu) -> None:
    mark = len(emu.log)
    assert "'id' is required" in await live.error("pd_get_incident", {})
    assert "argument 'statuses.0'" in await live.error("pd_list_incidents", {"statuses": ["sleeping"]})
    assert "argument 'escalation_level'" in await live.error("pd_escalate_incident", {"id": "1001",
                                                                                      "escalation_level": 0})
    assert "argument 'id'" in await live.error("pd_get_incident", {"id": "../users/me"})
    assert len(emu.log) == mark


async def test_vendor_errors_are_tool_errors_with_the_fix(live: Live, emu) -> None:
    text = await live.error("pd_get_current_user")  # an account-level key has no user
    assert "HTTP 400" in text and "user-level" in text.lower()
    text = await live.error("pd_get_incident", {"id": "Q0NOSUCHTHING"})
    assert "HTTP 404" in text and "list_incidents" in text
    emu.api_keys.pop(ACCOUNT_KEY)  # the key is removed at the vendor
    try:
        text = await live.error("pd_list_teams")
    finally:
        emu.api_keys[ACCOUNT_KEY] = None
    assert "HTTP 401" in text and "environment variable PD_KEY" in text and ACCOUNT_KEY not in text


async def test_rate_limited_reads_are_retried(live: Live, emu) -> None:
    mark = len(emu.log)
    emu.throttled = 2
    teams = await live.call("pd_list_teams")
    assert len(teams.structured_content["teams"]) == 2
    assert [e["status"] for e in emu.log[mark:]] == [429, 429, 200]


async def test_every_tool_was_called_through_the_proxy(live: Live, request: pytest.FixtureRequest) -> None:
    if not whole_module_ran(request):
        pytest.skip("only part of the module ran")
    called = {name.replace("pdme_", "pd_", 1) for name in live.called}
    assert {f"pd_{name}" for name in TOOL_OPERATIONS} - called == set()
