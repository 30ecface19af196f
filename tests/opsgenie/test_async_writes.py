"""Opsgenie's asynchronous writes: 202 + requestId, then the real outcome from the request status."""

from __future__ import annotations

import pytest

from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.connectors.opsgenie import poll_budget
from mcp_proxy.sandbox.opsgenie import seed

pytestmark = pytest.mark.anyio


def test_polling_is_bounded_well_inside_the_call_timeout():
    assert poll_budget(50.0) == 5.0
    for timeout in (0.5, 2.0, 4.0, 10.0, 50.0, 300.0):
        assert 0 < poll_budget(timeout) <= min(5.0, timeout / 2)


async def test_slow_processing_is_waited_for(og_factory):
    og = og_factory(processing_polls=3)
    out = await og.connector().call("close_alert", {"identifier": "cert-expiry-api", "identifierType": "alias"})
    assert out.structured["processed"] and out.structured["alertId"] == seed.ALERT_CERT_ID
    assert og.emulator.alerts[seed.ALERT_CERT_ID]["status"] == "closed"
    assert [e["status"] for e in og.requests("GET", "/requests/")] == [404, 404, 404, 200]


async def test_a_request_that_never_completes_is_reported_as_pending(og_factory):
    og = og_factory(processing_polls=-1)
    con = og.connector(call_timeout=2.0)
    out = await con.call("acknowledge_alert", {"identifier": seed.ALERT_DB_ID})
    rid = og.requests("POST")[0]["response"]["requestId"]
    assert not out.is_error
    assert out.structured == {"requestId": rid, "processed": False, "accepted": True}
    assert rid in out.text and "not been processed yet" in out.text and "get_request_status" in out.text
    assert "Do not repeat" in out.text
    polls = og.requests("GET", "/requests/")
    assert len(polls) >= 2 and all(p["status"] == 404 for p in polls)
    later = await con.call("get_request_status", {"requestId": rid})
    assert later.structured["processed"] is False


async def test_an_action_on_a_missing_alert_is_an_error(og):
    con = og.connector()
    with pytest.raises(ConnectorError) as info:
        await con.call("acknowledge_alert", {"identifier": "no-such-alias", "identifierType": "alias"})
    err = info.value
    assert err.error_type == "action_failed"
    assert "Alert does not exist" in err.message and "list_alerts" in err.message
    rid = og.requests("POST")[0]["response"]["requestId"]
    assert og.requests("POST")[0]["status"] == 202 and rid in err.message


async def test_failed_escalation_and_assignment_are_errors(og):
    con = og.connector()
    with pytest.raises(ConnectorError, match="Escalation does not exist"):
        await con.call("escalate_alert", {"identifier": seed.ALERT_DB_ID, "escalation": {"name": "Ghost"}})
    with pytest.raises(ConnectorError, match="User does not exist"):
        await con.call("assign_alert", {"identifier": seed.ALERT_DB_ID, "owner": {"username": "x@example.com"}})
    assert og.emulator.alerts[seed.ALERT_DB_ID]["owner"] == ""


async def test_escalation_by_id_succeeds(og):
    out = await og.connector().call("escalate_alert", {"identifier": seed.ALERT_DB_ID,
                                                       "escalation": {"id": seed.ESCALATION_ID}})
    assert out.structured["status"] == "Escalated alert to next"


async def test_a_failing_status_check_does_not_read_as_a_failed_write(og):
    og.emulator.throttle(times=None, period=600, only="/requests/")
    out = await og.connector().call("add_alert_note", {"identifier": seed.ALERT_DB_ID, "note": "once"})
    assert not out.is_error and out.structured["processed"] is False
    assert "rate limiting" in out.structured["statusError"] and "Do not repeat" in out.text
    assert [n["note"] for n in og.emulator.notes[seed.ALERT_DB_ID]].count("once") == 1


async def test_rate_limited_from_the_start_and_an_empty_account(og_factory):
    limited = og_factory(rate_limit=True)
    with pytest.raises(ConnectorError) as info:
        await limited.connector(max_retries=0).call("list_alerts", {})
    assert info.value.error_type == "rate_limited"
    empty = og_factory(seed=False)
    out = await empty.connector().call("list_alerts", {"query": "status:open"})
    assert out.structured["alerts"] == [] and out.structured["next_offset"] is None
