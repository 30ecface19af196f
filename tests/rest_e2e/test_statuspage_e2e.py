"""Every Statuspage tool through the real proxy process against the emulator (one proxy for the module)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.statuspage import TOOL_OPERATIONS, build
from mcp_proxy.sandbox.statuspage import ORG, PAGE, PAGE2, create_app
from tests._support.proxy import ProxyEnv, text_of
from tests._support.rest import Live, Served, assert_secrets_kept, served_and_checked, whole_module_ran
from tests._support.statuspage import check_exchanges
from tests.statuspage.spec_check import OpenApiChecker

pytestmark = pytest.mark.anyio

KEY = "sp0e2e0key1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = create_app(api_keys=(KEY,))
    with served_and_checked("Statuspage", app, OpenApiChecker, check_exchanges, '/v1') as served:
        yield served


@pytest.fixture(scope="module")
async def live(served: Served, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    proxy = ProxyEnv(tmp_path_factory.mktemp("statuspage"))
    proxy.write({"sp": {"kind": "statuspage", "base_url": served.url, "api_key": "env:SP_KEY",
                        "page_id": PAGE, "organization_id": ORG, "rate_limit_per_second": 1000, "call_timeout": 20}})
    async with proxy.client(env=proxy.env(SP_KEY=KEY)) as client:
        yield Live(proxy, client)
    assert_secrets_kept(proxy, KEY)


@pytest.fixture
def emu(served: Served):
    return served.emulator


def statuses_since(emu, mark: int) -> list[int]:
    return [e["status"] for e in emu.log[mark:]]


async def test_the_tool_list_is_the_connectors_with_the_prefix(live: Live) -> None:
    listed = {t.name: t for t in (await live.client.list_tools()).tools if t.name.startswith("sp_")}
    assert set(listed) == {f"sp_{name}" for name in TOOL_OPERATIONS}

    async def never() -> None:  # pragma: no cover - listing tools does no I/O
        raise AssertionError

    for tool in build(UpstreamConfig(key="sp", kind="statuspage", page_id=PAGE), never).tools():
        exposed = listed[f"sp_{tool.name}"]
        assert exposed.input_schema == tool.input_schema and exposed.description == tool.description
        # Hints equal to MCP's defaults are left out; a write says destructiveHint either way.
        assert (exposed.annotations.read_only_hint is True) is tool.read_only
        assert exposed.annotations.destructive_hint is (None if tool.read_only else tool.destructive)


async def test_pages(live: Live) -> None:
    pages = await live.call("sp_list_pages")
    assert [p["id"] for p in pages.structured_content["pages"]] == [PAGE, PAGE2]
    assert "default page is acmepage0001" in text_of(pages)
    other = await live.call("sp_get_page", {"page_id": PAGE2})
    assert other.structured_content["name"] == "Acme Internal Tools"
    assert (await live.call("sp_get_page")).structured_content["id"] == PAGE


async def test_components_and_groups(live: Live, emu) -> None:
    degraded = await live.call("sp_list_components", {"status": "degraded_performance"})
    assert [c["id"] for c in degraded.structured_content["components"]] == ["cmpdb0000001"]
    paged = await live.call("sp_list_components", {"page": 1, "per_page": 2})
    assert len(paged.structured_content["components"]) == 2 and paged.structured_content["next"]
    mail = await live.call("sp_get_component", {"component_id": "cmpmail00001"})
    assert mail.structured_content["name"] == "Email delivery" and mail.structured_content["status"] == "operational"
    changed = await live.call("sp_update_component_status", {"component_id": "cmpmail00001",
                                                             "status": "partial_outage"})
    assert changed.structured_content["status"] == "partial_outage"
    again = await live.call("sp_get_component", {"component_id": "cmpmail00001"})
    assert again.structured_content["status"] == "partial_outage"
    assert emu.components[PAGE]["cmpmail00001"]["status"] == "partial_outage"
    groups = await live.call("sp_list_component_groups")
    assert {g["id"] for g in groups.structured_content["component_groups"]} == {"grpcore00001", "grpdata00001"}
    group = await live.call("sp_get_component_group", {"group_id": "grpdata00001"})
    assert group.structured_content["components"] == ["cmpdb0000001", "cmpstore0001"]


async def test_incident_reads(live: Live) -> None:
    found = await live.call("sp_list_incidents", {"q": "SSO"})
    assert [i["id"] for i in found.structured_content["incidents"]] == ["inclogin0001"]
    unresolved = await live.call("sp_list_unresolved_incidents")
    assert "incdblag0001" in [i["id"] for i in unresolved.structured_content["incidents"]]
    detail = await live.call("sp_get_incident", {"incident_id": "inclogin0001"})
    assert [u["status"] for u in detail.structured_content["incident_updates"]] == [
        "resolved", "monitoring", "investigating"]
    active = await live.call("sp_list_maintenances", {"which": "active"})
    assert [m["id"] for m in active.structured_content["maintenances"]] == ["mntcdn000001"]


async def test_incident_lifecycle_without_notifications(live: Live, emu) -> None:
    sent = len(emu.outbox)
    created = await live.call("sp_create_incident", {
        "name": "Search is slow", "body": "Searches take 10 s.", "components": {"cmpweb000001": "degraded_performance"},
        "deliver_notifications": False})
    iid = created.structured_content["id"]
    assert created.structured_content["status"] == "investigating" and iid in emu.incidents[PAGE]
    updated = await live.call("sp_update_incident", {"incident_id": iid, "status": "identified",
                                                     "body": "An index was dropped; rebuilding.",
                                                     "deliver_notifications": False})
    assert updated.structured_content["status"] == "identified"
    read = await live.call("sp_get_incident", {"incident_id": iid})
    assert read.structured_content["incident_updates"][0]["body"] == "An index was dropped; rebuilding."
    resolved = await live.call("sp_resolve_incident", {"incident_id": iid, "deliver_notifications": False,
                                                       "components": {"cmpweb000001": "operational"}})
    assert resolved.structured_content["status"] == "resolved"
    unresolved = await live.call("sp_list_unresolved_incidents")
    assert iid not in [i["id"] for i in unresolved.structured_content["incidents"]]
    assert len(emu.outbox) == sent  # nobody was emailed: the choice was explicit


async def test_maintenance_create_and_update(live: Live) -> None:
    created = await live.call("sp_create_maintenance", {
        "name": "Mail relay upgrade", "scheduled_for": "2031-05-01T22:00:00Z",
        "scheduled_until": "2031-05-01T23:00:00Z",
        "component_ids": ["cmpmail00001"], "deliver_notifications": False})
    mid = created.structured_content["id"]
    upcoming = await live.call("sp_list_maintenances", {"which": "upcoming"})
    assert mid in [m["id"] for m in upcoming.structured_content["maintenances"]]
    moved = await live.call("sp_update_maintenance", {"incident_id": mid, "scheduled_until": "2031-05-02T00:30:00Z",
                                                      "deliver_notifications": False})
    assert moved.structured_content["scheduled_until"].startswith("2031-05-02T00:30:00")
    read = await live.call("sp_get_incident", {"incident_id": mid})
    assert read.structured_content["scheduled_until"].startswith("2031-05-02T00:30:00")


async def test_metrics(live: Live, emu) -> None:
    metrics = await live.call("sp_list_metrics")
    assert [m["id"] for m in metrics.structured_content["metrics"]] == ["metapilat001", "meterrrate01", "metddcpu0001"]
    stamp = int(time.time()) - 300
    added = await live.call("sp_add_metric_data_point", {"metric_id": "meterrrate01", "value": 0.25,
                                                         "timestamp": stamp})
    assert added.structured_content == {"metric_id": "meterrrate01", "timestamp": stamp - stamp % 30, "value": 0.25}
    assert emu.metric_data["meterrrate01"][stamp - stamp % 30] == 0.25


async def test_subscribers(live: Live, emu) -> None:
    before = await live.call("sp_count_subscribers")
    assert before.structured_content["total"] == 5
    added = await live.call("sp_add_subscriber", {"email": "frank@example.com", "skip_confirmation_notification": True})
    sid = added.structured_content["id"]
    everyone = await live.call("sp_list_subscribers", {"state": "all", "q": "frank@", "limit": 10})
    assert [s["id"] for s in everyone.structured_content["subscribers"]] == [sid]
    gone = await live.call("sp_unsubscribe_subscriber", {"subscriber_id": "subbob000001",
                                                         "skip_unsubscription_notification": True})
    assert "bob@example.com" in text_of(gone)
    active = await live.call("sp_list_subscribers", {"type": "email"})
    assert "subbob000001" not in [s["id"] for s in active.structured_content["subscribers"]]
    assert emu.subscribers[PAGE]["subbob000001"]["_state"] == "unsubscribed"


async def test_users(live: Live) -> None:
    users = await live.call("sp_list_users", {"per_page": 2})
    assert [u["email"] for u in users.structured_content["users"]] == ["alice@example.com", "bob@example.com"]


async def test_schema_invalid_calls_are_refused_by_the_proxy(live: Live, emu) -> None:
    mark = len(emu.log)
    text = await live.error("sp_update_component_status", {"component_id": "cmpapi000001", "status": "sideways"})
    assert "argument 'status'" in text and "Fix the arguments" in text
    text = await live.error("sp_create_incident", {"name": "No choice made"})
    assert "'deliver_notifications' is required" in text
    text = await live.error("sp_list_components", {"per_page": 500})
    assert "argument 'per_page'" in text
    assert len(emu.log) == mark  # nothing reached the vendor


async def test_vendor_errors_are_tool_errors_with_the_fix(live: Live, emu) -> None:
    text = await live.error("sp_get_component", {"component_id": "cmpnope00001"})
    assert "no component 'cmpnope00001'" in text and "list_components" in text
    text = await live.error("sp_resolve_incident", {"incident_id": "mntdbupg0001", "deliver_notifications": False})
    assert "not valid for a scheduled maintenance" in text and "in_progress, verifying or completed" in text
    emu.api_keys.discard(KEY)  # the key is revoked at the vendor
    try:
        text = await live.error("sp_list_pages")
    finally:
        emu.api_keys.add(KEY)
    assert "HTTP 401" in text and "environment variable SP_KEY" in text and KEY not in text
    assert [e["status"] for e in emu.log[-3:]] == [404, 422, 401]


async def test_rate_limited_reads_are_retried(live: Live, emu) -> None:
    mark = len(emu.log)
    emu.fail_next(420, "Rate limit exceeded", headers={"Retry-After": "0"})
    emu.fail_next(429, "Rate limit exceeded", headers={"Retry-After": "0"})
    pages = await live.call("sp_list_pages")
    assert len(pages.structured_content["pages"]) == 2
    assert statuses_since(emu, mark) == [420, 429, 200]


async def test_every_tool_was_called_through_the_proxy(live: Live, request: pytest.FixtureRequest) -> None:
    if not whole_module_ran(request):
        pytest.skip("only part of the module ran")
    assert {f"sp_{name}" for name in TOOL_OPERATIONS} - set(live.called) == set()
