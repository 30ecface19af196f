"""Failures a model or user must be able to act on: bad keys, the wrong key type, missing
things, validation, rate limits — and never a key in a message."""

from __future__ import annotations

import pytest

from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.connectors.opsgenie.client import CONFIG_KEY_REFUSAL
from mcp_proxy.sandbox.opsgenie import seed
from tests._support.opsgenie import CONFIG_KEY, INTEGRATION_KEY

pytestmark = pytest.mark.anyio

WRONG_KEY = "5a4b3c2d-1e0f-4a9b-8c7d-wrongwrong00"


async def _error(connector, name, args) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        await connector.call(name, args)
    return info.value


async def test_unknown_key_says_which_secret_to_set(og):
    err = await _error(og.connector(WRONG_KEY), "list_alerts", {})
    assert err.error_type == "http_401"
    assert "mcp-access-proxy secret set opsgenie" in err.message and "upstreams.og.api_key" in err.message
    assert WRONG_KEY not in err.message
    env = og.connector(WRONG_KEY, api_key=SecretRef("env", "OG_KEY", "upstreams.og.api_key"))
    err = await _error(env, "get_team", {"identifier": "SRE", "identifierType": "name"})
    assert "environment variable OG_KEY" in err.message


async def test_a_key_echoed_by_the_server_is_scrubbed(og):
    og.emulator.echo_key_in_errors = True
    err = await _error(og.connector(WRONG_KEY), "list_alerts", {})
    assert WRONG_KEY not in err.message and "<redacted>" in err.message
    assert WRONG_KEY in og.emulator.log[-1]["response"]["message"]  # the emulator did echo it


async def test_config_key_reads_but_cannot_act_on_alerts(og):
    con = og.connector(CONFIG_KEY)
    out = await con.call("get_alert", {"identifier": seed.ALERT_DB_ID})
    assert out.structured["id"] == seed.ALERT_DB_ID
    for name, args in (("create_alert", {"message": "m"}),
                       ("acknowledge_alert", {"identifier": seed.ALERT_DB_ID}),
                       ("close_alert", {"identifier": seed.ALERT_DB_ID}),
                       ("add_alert_note", {"identifier": seed.ALERT_DB_ID, "note": "n"})):
        err = await _error(con, name, args)
        assert err.error_type == "config_key_refused"
        assert CONFIG_KEY_REFUSAL in err.message and "Teams → Integrations → API" in err.message
        assert CONFIG_KEY not in err.message
    assert og.emulator.alerts[seed.ALERT_DB_ID]["status"] == "open" and not og.emulator.requests
    statuses = [e["status"] for e in og.requests("POST")]
    assert statuses == [403, 403, 403, 403]


async def test_missing_things_say_how_to_find_valid_ids(og):
    con = og.connector()
    err = await _error(con, "get_alert", {"identifier": "999", "identifierType": "tiny"})
    assert err.error_type == "http_404" and "tiny '999'" in err.message and "list_alerts" in err.message
    err = await _error(con, "who_is_on_call", {"identifier": "Nope", "identifierType": "name"})
    assert "schedule with name 'Nope'" in err.message and "list_schedules" in err.message
    err = await _error(con, "get_team", {"identifier": "0000"})
    assert "team" in err.message and "list_teams" in err.message
    err = await _error(con, "get_user", {"identifier": "nobody@example.com"})
    assert "user" in err.message and "list_users" in err.message
    err = await _error(con, "get_schedule", {"identifier": "Night shift", "identifierType": "name"})
    assert "schedule with name 'Night shift'" in err.message
    err = await _error(con, "list_alert_notes", {"identifier": "missing-alias", "identifierType": "alias"})
    assert "alias 'missing-alias'" in err.message


async def test_validation_errors_carry_each_field(og):
    con = og.connector()
    err = await _error(con, "create_alert", {"message": "x" * 131, "priority": "P3"})
    assert err.error_type == "http_422"
    assert "Request body is not processable" in err.message and "message: Message can not be longer" in err.message
    err = await _error(con, "snooze_alert", {"identifier": seed.ALERT_DB_ID, "endTime": "2020-01-01T00:00:00Z"})
    assert "endTime: endTime should be in the future" in err.message
    err = await _error(con, "list_alerts", {"query": "status:maybe"})
    assert "query:" in err.message and "open or closed" in err.message


async def test_rate_limited_reads_are_retried(og):
    og.emulator.throttle(times=2, period=0.01)
    out = await og.connector().call("list_teams", {})
    assert len(out.structured["teams"]) == 2
    assert [e["status"] for e in og.emulator.log] == [429, 429, 200]
    assert og.emulator.log[0]["response_headers"]["X-RateLimit-State"] == "THROTTLED"


async def test_a_rejected_write_is_retried_once_it_surely_did_not_run(og):
    og.emulator.throttle(times=1, period=0.01)
    out = await og.connector().call("add_alert_note", {"identifier": seed.ALERT_DB_ID, "note": "retry me"})
    assert out.structured["isSuccess"]
    assert [n["note"] for n in og.emulator.notes[seed.ALERT_DB_ID]].count("retry me") == 1


async def test_lasting_rate_limit_is_reported(og):
    og.emulator.throttle(times=None, period=0.01)
    err = await _error(og.connector(max_retries=1), "list_users", {})
    assert err.error_type == "rate_limited" and "rate limiting" in err.message
    assert len(og.emulator.log) == 2
    og.emulator.throttle(times=None, period=600)  # asks for longer than we are willing to wait: no retry
    err = await _error(og.connector(), "list_users", {})
    assert "600 s" in err.message and len(og.emulator.log) == 3


async def test_no_key_in_any_error_message(og):
    messages = []
    for key in (WRONG_KEY, CONFIG_KEY, INTEGRATION_KEY):
        con = og.connector(key)
        for name, args in (("list_alerts", {"query": "status:bad"}), ("create_alert", {"message": "m"}),
                           ("get_alert", {"identifier": "nope"}), ("get_team", {"identifier": "nope"})):
            try:
                await con.call(name, args)
            except ConnectorError as exc:
                messages.append(exc.message)
    assert len(messages) >= 10
    assert not [m for m in messages for k in (WRONG_KEY, CONFIG_KEY, INTEGRATION_KEY) if k in m]


async def test_unreachable_server_names_the_base_url(og):
    con = og.connector(base_url="http://127.0.0.1:9", max_retries=0)
    err = await _error(con, "list_teams", {})
    assert err.error_type == "connect_error" and "127.0.0.1:9" in err.message
