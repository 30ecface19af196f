"""Every Opsgenie tool through the real proxy process against the emulator (one proxy for the module).

Two upstreams: `og` with an API integration key (everything), `ogcfg` with an API-key-management key
(reads only: Opsgenie refuses its alert writes) and small pages and results (paging and trimming).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.opsgenie import build
from mcp_proxy.sandbox.opsgenie import create_app, seed
from tests._support.opsgenie import check_exchanges
from tests._support.proxy import ProxyEnv, text_of
from tests._support.rest import Live, Served, assert_secrets_kept, served_and_checked, whole_module_ran
from tests.opsgenie.swagger_check import SwaggerChecker

pytestmark = pytest.mark.anyio

INTEGRATION_KEY = "5b7e2c1d-8a3f-4e6b-9c0d-e2e0integration"
CONFIG_KEY = "9d4c3b2a-1f0e-4d5c-8b7a-e2e0configkey01"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = create_app(integration_keys=[INTEGRATION_KEY], config_keys=[CONFIG_KEY])
    with served_and_checked("Opsgenie", app, SwaggerChecker, check_exchanges) as served:
        yield served


@pytest.fixture(scope="module")
async def live(served: Served, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    proxy = ProxyEnv(tmp_path_factory.mktemp("opsgenie"))
    common = {"kind": "opsgenie", "base_url": served.url, "call_timeout": 20}
    proxy.write({"og": {**common, "api_key": "env:OG_KEY"},
                 "ogcfg": {**common, "api_key": "env:OG_CONFIG_KEY", "page_size": 2, "max_result_chars": 1500}})
    async with proxy.client(env=proxy.env(OG_KEY=INTEGRATION_KEY, OG_CONFIG_KEY=CONFIG_KEY)) as client:
        yield Live(proxy, client)
    assert_secrets_kept(proxy, INTEGRATION_KEY, CONFIG_KEY)


@pytest.fixture
def emu(served: Served):
    return served.emulator


async def never() -> None:  # pragma: no cover - listing tools does no I/O
    raise AssertionError


TOOLS = [t.name for t in build(UpstreamConfig(key="og", kind="opsgenie"), never).tools()]


async def test_the_tool_list_is_the_connectors_with_the_prefix(live: Live) -> None:
    listed = {t.name: t for t in (await live.client.list_tools()).tools}
    for cfg in (UpstreamConfig(key="og", kind="opsgenie"), UpstreamConfig(key="ogcfg", kind="opsgenie", page_size=2)):
        for tool in build(cfg, never).tools():
            exposed = listed[f"{cfg.key}_{tool.name}"]
            assert exposed.input_schema == tool.input_schema and exposed.description == tool.description
            # Hints equal to MCP's defaults are left out; a write says destructiveHint either way.
            assert (exposed.annotations.read_only_hint is True) is tool.read_only
            assert exposed.annotations.destructive_hint is (None if tool.read_only else tool.destructive)
    assert len([n for n in listed if n.startswith("og_")]) == len(TOOLS) == 25
    assert listed["ogcfg_list_users"].input_schema["properties"]["limit"]["default"] == 2


async def test_alert_reads(live: Live) -> None:
    p1 = await live.call("og_list_alerts", {"query": "status:open AND priority:P1"})
    assert [a["id"] for a in p1.structured_content["alerts"]] == [seed.ALERT_DB_ID]
    assert "This is the last page." in text_of(p1)
    count = await live.call("og_count_alerts", {"query": "status:closed"})
    assert count.structured_content["count"] == 1
    by_tiny = await live.call("og_get_alert", {"identifier": "101", "identifierType": "tiny"})
    assert by_tiny.structured_content["id"] == seed.ALERT_DB_ID
    assert by_tiny.structured_content["details"] == {"lag_seconds": "45"}
    notes = await live.call("og_list_alert_notes", {"identifier": seed.ALERT_DB_ID, "limit": 2})
    assert notes.structured_content["notes"][0]["note"] == "Watching for an hour"
    logs = await live.call("og_list_alert_logs", {"identifier": "db-primary-replication-lag", "identifierType": "alias",
                                                  "order": "asc", "limit": 2})
    assert logs.structured_content["logs"][0]["log"] == "Alert created via Sandbox API"
    assert logs.structured_content["next_offset"]


async def test_create_alert_returns_the_processed_outcome(live: Live, emu) -> None:
    created = await live.call("og_create_alert", {
        "message": "Checkout latency above 2 s", "alias": "e2e-checkout-latency", "priority": "P2",
        "tags": ["checkout"], "responders": [{"type": "team", "name": "SRE"}]})
    out = created.structured_content
    assert out["processed"] is True and out["alertId"] in emu.alerts and out["requestId"] in text_of(created)
    status = await live.call("og_get_request_status", {"requestId": out["requestId"]})
    assert status.structured_content["processed"] and status.structured_content["alertId"] == out["alertId"]
    read = await live.call("og_get_alert", {"identifier": "e2e-checkout-latency", "identifierType": "alias"})
    assert read.structured_content["id"] == out["alertId"] and read.structured_content["priority"] == "P2"
    assert emu.alerts[out["alertId"]]["responders"] == [{"type": "team", "id": seed.SRE_TEAM_ID}]


async def test_alert_actions_change_the_alert(live: Live, emu) -> None:
    ident = {"identifier": "103", "identifierType": "tiny"}
    alert = emu.alerts[seed.ALERT_CERT_ID]
    open_before = (await live.call("og_count_alerts", {"query": "status:open"})).structured_content["count"]
    ack = await live.call("og_acknowledge_alert", {**ident, "note": "looking"})
    assert ack.structured_content["isSuccess"] and alert["acknowledged"] is True
    assert (await live.call("og_get_alert", ident)).structured_content["acknowledged"] is True
    await live.call("og_unacknowledge_alert", ident)
    assert (await live.call("og_get_alert", ident)).structured_content["acknowledged"] is False
    await live.call("og_add_alert_note", {**ident, "note": "renewal ticket CERT-42"})
    notes = await live.call("og_list_alert_notes", ident)
    assert notes.structured_content["notes"][0]["note"] == "renewal ticket CERT-42"
    await live.call("og_snooze_alert", {**ident, "minutes": 30})
    assert alert["snoozed"] is True
    await live.call("og_escalate_alert", {**ident, "escalation": {"name": "SRE_escalation"}})
    await live.call("og_assign_alert", {**ident, "owner": {"username": "carol@example.com"}})
    assert (await live.call("og_get_alert", ident)).structured_content["owner"] == "carol@example.com"
    closed = await live.call("og_close_alert", {**ident, "note": "renewed"})
    assert closed.structured_content["action"] == "Close"
    assert (await live.call("og_get_alert", ident)).structured_content["status"] == "closed"
    after = await live.call("og_count_alerts", {"query": "status:open"})
    assert after.structured_content["count"] == open_before - 1
    logs = await live.call("og_list_alert_logs", {**ident, "limit": 20})
    assert any("escalat" in entry["log"].lower() for entry in logs.structured_content["logs"])


async def test_escalations_schedules_and_on_call(live: Live) -> None:
    escalations = await live.call("og_list_escalations")
    assert [e["id"] for e in escalations.structured_content["escalations"]] == [seed.ESCALATION_ID]
    one = await live.call("og_get_escalation", {"identifier": "SRE_escalation", "identifierType": "name"})
    assert len(one.structured_content["rules"]) == 3
    schedules = await live.call("og_list_schedules", {"expandRotations": True})
    assert {s["name"] for s in schedules.structured_content["schedules"]} == {"SRE_schedule", "Database_schedule"}
    schedule = await live.call("og_get_schedule", {"identifier": seed.SCHEDULE_ID})
    assert schedule.structured_content["name"] == "SRE_schedule"
    timeline = await live.call("og_get_schedule_timeline", {"identifier": seed.SCHEDULE_ID, "interval": 3,
                                                            "intervalUnit": "weeks", "date": "2025-01-06T09:00:00Z"})
    final = [p["recipient"] for p in timeline.structured_content["periods"] if p["timeline"] == "final"]
    assert final == ["alice@example.com", "bob@example.com", "carol@example.com"]
    at = "2025-01-14T12:00:00Z"  # bob's week
    now_on = await live.call("og_who_is_on_call", {"identifier": "SRE_schedule", "identifierType": "name",
                                                   "flat": True, "date": at})
    assert now_on.structured_content["onCallRecipients"] == ["bob@example.com"]
    nxt = await live.call("og_next_on_call", {"identifier": seed.SCHEDULE_ID, "date": at})
    assert "carol@example.com" in text_of(nxt)


async def test_teams_and_users(live: Live) -> None:
    teams = await live.call("og_list_teams")
    assert {t["name"] for t in teams.structured_content["teams"]} == {"SRE", "Database"}
    team = await live.call("og_get_team", {"identifier": "SRE", "identifierType": "name"})
    assert {m["user"]["username"] for m in team.structured_content["members"]} == {"alice@example.com",
                                                                                   "bob@example.com"}
    admins = await live.call("og_list_users", {"query": "role:admin"})
    assert [u["username"] for u in admins.structured_content["users"]] == ["alice@example.com"]
    user = await live.call("og_get_user", {"identifier": "erin@example.com", "includeContacts": True})
    assert user.structured_content["id"] == seed.ERIN_ID
    assert user.structured_content["userContacts"][0]["to"] == "erin@example.com"


async def test_paging_to_the_end_and_the_trimming_note(live: Live, emu) -> None:
    users, offset, pages = [], None, 0
    while pages < 10:
        page = await live.call("ogcfg_list_users", {} if offset is None else {"offset": offset})
        users += [u["username"] for u in page.structured_content["users"]]
        offset, pages = page.structured_content["next_offset"], pages + 1
        if offset is None:
            break
    assert pages == 3 and users == sorted(u["username"] for u in emu.users)
    # 1500 characters hold fewer alerts than asked for: a note says so, and next_offset skips none of them.
    first = await live.call("ogcfg_list_alerts", {"limit": 10, "order": "asc"})
    shown = first.structured_content["alerts"]
    assert first.structured_content["truncated"] is True and first.structured_content["omitted"] >= 1
    assert "were left out to keep the result under 1500 characters" in text_of(first)
    rest = await live.call("ogcfg_list_alerts", {"limit": 10, "order": "asc",
                                                 "offset": first.structured_content["next_offset"]})
    assert rest.structured_content["alerts"][0]["id"] not in {a["id"] for a in shown}
    assert first.structured_content["next_offset"] == len(shown)


async def test_concurrent_writes_each_get_their_own_outcome(live: Live, emu) -> None:
    results: dict[int, dict] = {}

    async def create(i: int) -> None:
        out = await live.call("og_create_alert", {"message": f"Concurrent alert {i}", "alias": f"e2e-concurrent-{i}"})
        results[i] = out.structured_content

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(create, i)
    assert len({r["alertId"] for r in results.values()}) == 6 and all(r["processed"] for r in results.values())
    for i, r in results.items():
        assert emu.alerts[r["alertId"]]["alias"] == f"e2e-concurrent-{i}"


async def test_schema_invalid_calls_are_refused_by_the_proxy(live: Live, emu) -> None:
    mark = len(emu.log)
    assert "'identifier' is required" in await live.error("og_get_alert", {})
    assert "argument 'priority'" in await live.error("og_create_alert", {"message": "x", "priority": "P9"})
    assert "argument 'limit'" in await live.error("og_list_alerts", {"limit": 1000})
    assert len(emu.log) == mark


async def test_a_recipient_named_by_a_field_its_type_lacks_is_refused_before_sending(live: Live, emu) -> None:
    """Opsgenie finds a user by username and a team by name; sent as {"type": "user", "name": ...} the alert
    would go out without that responder (the spec's UserRecipient has no `name`)."""
    mark = len(emu.log)
    text = await live.error("og_create_alert", {"message": "x",
                                                "responders": [{"type": "user", "name": "bob@example.com"}]})
    assert "responders[0]: a user is named by id or username, not name" in text
    text = await live.error("og_create_alert", {"message": "x", "visibleTo": [{"type": "team", "username": "SRE"}]})
    assert "visibleTo[0]: a team is named by id or name, not username" in text
    assert len(emu.log) == mark
    right = await live.call("og_create_alert", {"message": "Page bob", "alias": "e2e-page-bob",
                                                "responders": [{"type": "user", "username": "bob@example.com"}]})
    assert emu.alerts[right.structured_content["alertId"]]["responders"] == [{"type": "user", "id": seed.BOB_ID}]


async def test_vendor_errors_are_tool_errors_with_the_fix(live: Live, emu) -> None:
    text = await live.error("og_get_alert", {"identifier": "no-such-alert", "identifierType": "alias"})
    assert "HTTP 404" in text and "no-such-alert" in text and "list_alerts" in text
    # The API-key-management key reads, but its alert writes are refused: the fix is an integration key.
    teams = await live.call("ogcfg_list_teams")
    assert len(teams.structured_content["teams"]) == 2
    text = await live.error("ogcfg_add_alert_note", {"identifier": seed.ALERT_DB_ID, "note": "from the config key"})
    assert "HTTP 403" in text and "use an API integration key" in text
    assert "from the config key" not in [n["note"] for n in emu.notes[seed.ALERT_DB_ID]]
    emu.integration_keys.discard(INTEGRATION_KEY)  # the key is deleted at the vendor
    try:
        text = await live.error("og_list_teams")
    finally:
        emu.integration_keys.add(INTEGRATION_KEY)
    assert "HTTP 401" in text and "environment variable OG_KEY" in text and INTEGRATION_KEY not in text


async def test_rate_limited_reads_are_retried(live: Live, emu) -> None:
    mark = len(emu.log)
    emu.throttle(times=2, period=0.01)
    users = await live.call("og_list_users")
    assert len(users.structured_content["users"]) == 5
    assert [e["status"] for e in emu.log[mark:]] == [429, 429, 200]


async def test_every_tool_was_called_through_the_proxy(live: Live, request: pytest.FixtureRequest) -> None:
    if not whole_module_ran(request):
        pytest.skip("only part of the module ran")
    assert {f"og_{name}" for name in TOOLS} - set(live.called) == set()
