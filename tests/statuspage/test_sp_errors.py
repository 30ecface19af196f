"""Errors the model sees: auth, permissions, unknown ids, invalid input, missing defaults, rate
limits and retries, transport faults; and that no API key ever shows in a message."""

from __future__ import annotations

import pytest

from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.sandbox.asgi_thread import free_port
from mcp_proxy.sandbox.statuspage import PAGE
from tests._support.statuspage import KEY, Sandbox

pytestmark = pytest.mark.anyio


async def fails(connector, tool: str, args: dict) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        await connector.call(tool, args)
    assert KEY not in caught.value.message
    return caught.value


async def test_401_says_how_to_store_a_valid_key(sp: Sandbox) -> None:
    error = await fails(sp.connector("sp_wrong_key_123456"), "list_components", {})
    assert error.error_type == "http_401"
    assert error.message.startswith("the Statuspage API key was refused (HTTP 401: Could not authenticate)")
    assert "`mcp-access-proxy secret set statuspage`" in error.message and "upstreams.sp.api_key" in error.message
    assert "sp_wrong_key_123456" not in error.message
    env = sp.connector("sp_wrong_key_123456", api_key=SecretRef("env", "SP_KEY", "upstreams.sp.api_key"))
    error = await fails(env, "list_pages", {})
    assert "environment variable SP_KEY" in error.message
    assert sp.emulator.log[-1]["status"] == 401 and len(sp.requests()) == 2  # 401 is not retried


async def test_bearer_credentials_are_refused_before_sending(sp: Sandbox) -> None:
    error = await fails(sp.connector(scheme="bearer"), "list_pages", {})
    assert error.error_type == "no_credentials" and "needs an API key" in error.message
    assert not sp.emulator.log


async def test_403_names_the_missing_access(sp: Sandbox) -> None:
    sp.emulator.forbidden_pages.add(PAGE)
    error = await fails(sp.connector(), "list_subscribers", {})
    assert error.error_type == "http_403"
    assert f"no access to page '{PAGE}'" in error.message and "team member" in error.message
    sp.emulator.fail_next(403, "You are not authorized to access this resource.")
    error = await fails(sp.connector(), "list_users", {})
    assert "organisation admin" in error.message and "manage this organisation's users" in error.message


@pytest.mark.parametrize(("tool", "args", "expected"), [
    ("get_component", {"component_id": "cmpnope00001"}, "no component 'cmpnope00001' on page 'acmepage0001'"),
    ("get_incident", {"incident_id": "incnope00001"}, "list_incidents (or list_maintenances) shows the valid ids"),
    ("get_component_group", {"group_id": "grpnope00001"}, "list_component_groups shows"),
    ("unsubscribe_subscriber", {"subscriber_id": "subnope00001"}, "list_subscribers (state 'all'"),
    ("add_metric_data_point", {"metric_id": "metnope00001", "value": 1}, "no metric 'metnope00001'"),
    ("get_page", {"page_id": "pagenope0001"}, "no page 'pagenope0001' (HTTP 404"),
    ("list_components", {"page_id": "pagenope0001"}, "list_pages shows the pages this key can see"),
    ("list_users", {"organization_id": "orgnope00001"}, "no organisation 'orgnope00001'"),
])
async def test_404_says_which_id_and_where_to_find_valid_ones(sp: Sandbox, tool: str, args: dict,
                                                              expected: str) -> None:
    error = await fails(sp.connector(), tool, args)
    assert error.error_type == "http_404" and expected in error.message, error.message


async def test_422_carries_the_vendor_message_and_the_fix(sp: Sandbox) -> None:
    c = sp.connector()
    error = await fails(c, "resolve_incident", {"incident_id": "mntdbupg0001", "deliver_notifications": False})
    assert error.error_type == "http_422"
    assert "Status 'resolved' is not valid for a scheduled maintenance" in error.message
    assert "scheduled, in_progress, verifying or completed for a maintenance" in error.message
    error = await fails(c, "add_subscriber", {"email": "alice@example.com"})
    assert "alice@example.com is already subscribed" in error.message and "already subscribed cannot" in error.message
    error = await fails(c, "create_incident", {"name": "x", "components": {"cmpnope00001": "major_outage"},
                                               "deliver_notifications": False})
    assert "Component cmpnope00001 does not belong to this page" in error.message
    assert "list_components" in error.message
    sp.emulator.fail_next(400, "Bad request")
    error = await fails(c, "update_component_status", {"component_id": "cmpapi000001", "status": "operational"})
    assert error.error_type == "http_400" and "status must be operational" in error.message
    assert not any(e.get("kind") == "incident_update" and e.get("incident_id") == "mntdbupg0001"
                   for e in sp.emulator.outbox)


async def test_405_for_data_on_a_provider_metric(sp: Sandbox) -> None:
    error = await fails(sp.connector(), "add_metric_data_point", {"metric_id": "metddcpu0001", "value": 50})
    assert error.error_type == "http_405" and "custom ('Self') metric provider" in error.message


async def test_missing_page_and_organisation(sp: Sandbox) -> None:
    c = sp.connector(page_id=None, organization_id=None)
    error = await fails(c, "list_incidents", {})
    assert error.error_type == "missing_page_id"
    assert "pass page_id" in error.message and "upstreams.sp.page_id" in error.message
    assert "list_pages" in error.message
    error = await fails(c, "list_users", {})
    assert error.error_type == "missing_organization_id" and "upstreams.sp.organization_id" in error.message
    assert not sp.emulator.log
    out = await c.call("list_incidents", {"page_id": PAGE})  # a per-call page works without a default
    assert out.structured["incidents"]
    error = await fails(c, "get_incident", {"page_id": PAGE, "incident_id": "../../pages"})
    assert error.error_type == "bad_argument"


async def test_no_key_in_any_message_even_when_the_vendor_echoes_it(sp: Sandbox) -> None:
    sp.allow("-> 500: status not declared")
    sp.allow("-> 409: status not declared")
    c = sp.connector()
    messages = []
    for status in (400, 401, 403, 404, 409, 422, 500):
        sp.emulator.fail_next(status, f"key {KEY} is not good here")
        with pytest.raises(ConnectorError) as caught:
            await c.call("update_component_status", {"component_id": "cmpapi000001", "status": "operational"})
        messages.append(caught.value.message)
    assert all(KEY not in m and "<redacted>" in m for m in messages), messages
    assert "may or may not have been applied" in messages[-1]
    assert all(KEY not in repr(e["headers"]) for e in sp.emulator.log)  # the log keeps no Authorization


@pytest.mark.parametrize("status", [420, 429])
async def test_rate_limited_reads_are_retried_after_retry_after(sp: Sandbox, status: int) -> None:
    sp.emulator.fail_next(status, "Rate limit exceeded", headers={"Retry-After": "0"}, times=2)
    out = await sp.connector().call("list_components", {})
    assert out.structured["components"]
    assert [e["status"] for e in sp.emulator.log] == [status, status, 200]
    assert sp.emulator.log[0]["response_headers"] == {"Retry-After": "0"}


@pytest.mark.parametrize("status", [420, 429])
async def test_a_write_refused_by_the_limit_is_retried_once_and_applied_once(sp: Sandbox, status: int) -> None:
    before = len(sp.emulator.incidents[PAGE])
    sp.emulator.fail_next(status, "Rate limit exceeded", headers={"Retry-After": "0"})
    out = await sp.connector().call("create_incident", {"name": "Retried", "deliver_notifications": False})
    assert [e["status"] for e in sp.requests("POST")] == [status, 201]
    assert len(sp.emulator.incidents[PAGE]) == before + 1 and out.structured["name"] == "Retried"


async def test_a_write_that_may_have_run_is_not_repeated(sp: Sandbox) -> None:
    sp.allow("-> 503: status not declared")
    sp.emulator.fail_next(503, "Service unavailable")
    error = await fails(sp.connector(), "update_incident", {"incident_id": "incdblag0001", "status": "monitoring",
                                                            "body": "x", "deliver_notifications": False})
    assert error.error_type == "http_503" and "check with the matching get_ or list_ tool" in error.message
    assert len(sp.requests("PATCH")) == 1
    sp.emulator.fail_next(503, "Service unavailable")  # a read is simply retried
    out = await sp.connector().call("get_incident", {"incident_id": "incdblag0001"})
    assert out.structured["id"] == "incdblag0001"


async def test_a_long_retry_after_ends_the_call_with_advice(sp: Sandbox) -> None:
    sp.emulator.fail_next(420, "Rate limit exceeded", headers={"Retry-After": "120"})
    error = await fails(sp.connector(), "list_pages", {})
    assert error.error_type == "rate_limited" and "asks to wait 120 s" in error.message
    assert len(sp.emulator.log) == 1


@pytest.mark.parametrize("status", [420, 429])
async def test_the_emulator_window_limits_and_the_connector_recovers(sp_factory, status: int) -> None:
    sp = sp_factory(rate_limit=True)
    sp.emulator.rate_window, sp.emulator.rate_limit_status = 1.0, status
    c = sp.connector()
    await c.call("list_pages", {})
    await c.call("get_page", {})
    statuses = [e["status"] for e in sp.emulator.log]
    assert statuses == [200, status, 200]
    assert sp.emulator.log[1]["response_headers"]["Retry-After"] == "1"


async def test_default_pacing_stays_within_one_request_per_second(sp_factory) -> None:
    sp = sp_factory(rate_limit=True)
    # One request per 0.95 s: an unpaced client trips it at once; one paced to 1/s never does
    # (a window of exactly 1 s would make arrival jitter decide).
    sp.emulator.rate_window = 0.95
    c = sp.connector(rate_limit_per_second=None)
    for _ in range(3):
        await c.call("list_pages", {})
    assert [e["status"] for e in sp.emulator.log] == [200, 200, 200]


async def test_unreachable_vendor(sp: Sandbox) -> None:
    c = sp.connector(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    error = await fails(c, "list_pages", {})
    assert error.error_type == "connect_error" and "could not be reached" in error.message
