"""The JSM backend against the emulator, in process: cloud id lookup, error classes, 429 pacing, paging to
the end and the 20,000 cap, an asynchronous write that never completes, and the config contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcp_proxy.config.load import parse_config
from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.errors import ConfigError
from mcp_proxy.sandbox.jsm import seed
from tests._support.jsm import Sandbox

pytestmark = pytest.mark.anyio


async def test_requests_go_to_the_cloud_id_path_with_basic_auth(jsm: Sandbox) -> None:
    out = await jsm.connector().call("get_alert", {"identifier": seed.ALERT_DB_ID})
    assert out.structured and out.structured["tinyId"] == "101"
    entry = jsm.requests("GET", "/v1/alerts/")[-1]
    assert entry["path"] == f"/jsm/ops/api/{seed.CLOUD_ID}/v1/alerts/{seed.ALERT_DB_ID}"
    assert entry["authorization"] == "Basic"


async def test_the_cloud_id_is_looked_up_once_from_the_site(jsm: Sandbox) -> None:
    connector = jsm.connector(cloud_id=None, site=seed.SITE, resources_url=f"{jsm.url}/_edge/tenant_info")
    await connector.call("count_alerts", {})
    await connector.call("list_teams", {})
    lookups = jsm.requests("GET", "/_edge/tenant_info")
    assert len(lookups) == 1 and lookups[0]["authorization"] == ""  # called without credentials
    assert all(seed.CLOUD_ID in e["path"] for e in jsm.requests(path_part="/v1/"))


async def test_a_wrong_cloud_id_says_what_to_check(jsm: Sandbox) -> None:
    with pytest.raises(ConnectorError) as exc:
        await jsm.connector(cloud_id="00000000-0000-4000-8000-000000000000").call("count_alerts", {})
    assert exc.value.error_type == "http_404" and "cloud_id" in exc.value.message


async def test_bearer_tokens_work_too(jsm: Sandbox) -> None:
    """The seam for OAuth (3LO): a bearer credential is sent as such (the emulator accepts it on the same root)."""
    out = await jsm.connector(seed.BEARER_TOKEN, scheme="bearer").call("count_alerts", {})
    assert out.structured == {"count": 5, "query": None}
    assert jsm.requests()[-1]["authorization"] == "Bearer"


async def test_error_classes(jsm: Sandbox) -> None:
    bad = jsm.connector("not-the-token")
    with pytest.raises(ConnectorError) as exc:
        await bad.call("list_alerts", {})
    assert exc.value.error_type == "http_401" and "not-the-token" not in exc.value.message
    assert "api-tokens" in exc.value.message
    good = jsm.connector()
    with pytest.raises(ConnectorError) as exc:
        await good.call("get_alert", {"identifier": "no-such-alert"})
    assert exc.value.error_type == "http_404" and "no-such-alert" in exc.value.message
    with pytest.raises(ConnectorError) as exc:
        await good.call("list_alerts", {"query": "colour:blue"})
    assert exc.value.error_type == "http_400" and "query" in exc.value.message
    jsm.emulator.missing_scopes = {"write"}
    with pytest.raises(ConnectorError) as exc:
        await good.call("acknowledge_alert", {"identifier": seed.ALERT_DISK_ID})
    assert exc.value.error_type == "scope_missing"
    jsm.emulator.missing_scopes = set()
    with pytest.raises(ConnectorError) as exc:
        await good.call("snooze_alert", {"identifier": seed.ALERT_DISK_ID, "endTime": "2001-01-01T00:00:00Z"})
    assert exc.value.error_type == "http_422" and "future" in exc.value.message


async def test_an_action_on_a_missing_alert_fails_by_its_request_status(jsm: Sandbox) -> None:
    with pytest.raises(ConnectorError) as exc:
        await jsm.connector().call("close_alert", {"identifier": "b418d193-0000-0000-0000-000000000000"})
    assert exc.value.error_type == "action_failed" and "does not exist" in exc.value.message


async def test_429_is_paced_by_retry_after(jsm: Sandbox) -> None:
    jsm.emulator.throttle(times=2, retry_after=0.3)
    started = time.monotonic()
    out = await jsm.connector().call("count_alerts", {})
    assert out.structured and out.structured["count"] == 5
    assert time.monotonic() - started >= 0.6
    assert [e["status"] for e in jsm.requests("GET", "/v1/alerts")] == [429, 429, 200]
    assert jsm.requests()[0]["response_headers"]["Retry-After"] == "0.3"


async def test_429_that_lasts_is_reported_as_rate_limited(jsm: Sandbox) -> None:
    jsm.emulator.throttle(times=None, retry_after=60)  # longer than the client may wait
    with pytest.raises(ConnectorError) as exc:
        await jsm.connector().call("count_alerts", {})
    assert exc.value.error_type == "rate_limited" and "60" in exc.value.message
    jsm.emulator.throttle(0)


@pytest.mark.parametrize("absolute", [False, True])
async def test_paging_to_the_end_follows_links_next(jsm: Sandbox, absolute: bool) -> None:
    jsm.emulator.absolute_links = absolute
    jsm.emulator.add_alerts(23)
    connector = jsm.connector()
    seen: list[str] = []
    offset = 0
    while True:
        out = await connector.call("list_alerts", {"query": "tag:bulk", "limit": 10, "offset": offset})
        assert out.structured
        seen += [a["id"] for a in out.structured["alerts"]]
        assert out.structured["count"] == 23
        if out.structured["next_offset"] is None:
            assert "This is the last page." in out.text
            break
        offset = out.structured["next_offset"]
    assert len(seen) == len(set(seen)) == 23


async def test_the_20000_result_cap(jsm: Sandbox) -> None:
    connector = jsm.connector()
    out = await connector.call("list_alerts", {"offset": 19990, "limit": 100})
    assert jsm.requests("GET", "/v1/alerts")[-1]["query"].endswith("offset=19990&size=9")
    assert out.structured and out.structured["next_offset"] is None
    with pytest.raises(ConnectorError) as exc:
        await connector.call("list_alerts", {"offset": 19999})
    assert exc.value.error_type == "result_cap" and "20000" in exc.value.message


async def test_the_emulator_refuses_to_page_past_the_cap(jsm: Sandbox) -> None:
    connector = jsm.connector()
    with pytest.raises(ConnectorError) as exc:
        await connector.client.json("GET", await connector.api("/v1/alerts"),  # type: ignore[attr-defined]
                                    params={"offset": 19950, "size": 50})
    assert exc.value.error_type == "http_422" and "20000" in exc.value.message


async def test_a_write_that_never_completes(jsm_factory) -> None:
    sandbox = jsm_factory(processing_polls=-1)
    connector = sandbox.connector(call_timeout=1.0)
    out = await connector.call("acknowledge_alert", {"identifier": seed.ALERT_DISK_ID, "note": "on it"})
    assert out.structured and out.structured["processed"] is False and out.structured["accepted"] is True
    rid = out.structured["requestId"]
    assert "Do not repeat it" in out.text and rid in out.text
    assert not sandbox.requests("POST", "/notes"), "no note for a write whose outcome is unknown"
    status = await connector.call("get_request_status", {"requestId": rid})
    assert status.structured == {"requestId": rid, "processed": False}
    assert sandbox.emulator.alerts[seed.ALERT_DISK_ID]["acknowledged"] is False
    polls = sandbox.requests("GET", f"/v1/alerts/requests/{rid}")
    assert len(polls) >= 2 and {p["status"] for p in polls} == {404}


async def test_tools_jsm_cannot_serve_are_not_listed() -> None:
    from mcp_proxy.config import UpstreamConfig
    from mcp_proxy.connectors.jsm import NOT_OFFERED
    from mcp_proxy.connectors.opsgenie import build

    async def never():  # pragma: no cover
        raise AssertionError

    og = {t.name: t for t in build(UpstreamConfig(key="og", kind="opsgenie"), never).tools()}
    jsm = {t.name: t for t in build(UpstreamConfig(key="og", kind="opsgenie", api="jsm"), never).tools()}
    assert set(og) - set(jsm) == set(NOT_OFFERED) and set(jsm) <= set(og)
    for name, tool in jsm.items():  # same kind of tool under the same name
        assert (tool.read_only, tool.destructive) == (og[name].read_only, og[name].destructive), name
        assert set(tool.input_schema["properties"]) <= set(og[name].input_schema["properties"]), name
        assert tool.input_schema.get("required") == og[name].input_schema.get("required"), name


def _config(table: str) -> dict:
    import tomllib

    return tomllib.loads("[user]\nemail = \"alice@example.com\"\n[upstreams.og]\nkind = \"opsgenie\"\n" + table)


def test_config_jsm_basic() -> None:
    cfg = parse_config(_config('api = "jsm"\nemail = "alice@example.com"\napi_token = "keyring:jsm"\n'
                               'site = "acme.atlassian.net"\n'), Path("c.toml")).upstreams["og"]
    assert (cfg.api, cfg.auth, cfg.email, cfg.site, cfg.cloud_id) == ("jsm", "basic", "alice@example.com",
                                                                       "acme.atlassian.net", None)
    assert str(cfg.api_token) == "keyring:jsm"


@pytest.mark.parametrize(("table", "says"), [
    ('api = "jsm"\nauth = "oauth"\nemail = "a@b.co"\napi_token = "env:T"\ncloud_id = "x1"\n',
     'api_token: not used with auth = "oauth"'),
    ('api = "jsm"\napi_token = "env:T"\ncloud_id = "x1"\n', "email: required"),
    ('api = "jsm"\nemail = "a@b.co"\ncloud_id = "x1"\n', "api_token: required"),
    ('api = "jsm"\nemail = "a@b.co"\napi_token = "env:T"\n', "set site"),
    ('api = "jsm"\nemail = "a@b.co"\napi_token = "env:T"\ncloud_id = "x1"\napi_key = "env:K"\n', "api_key: not used"),
    ('api = "jsm"\nemail = "a@b.co"\napi_token = "plain-secret"\ncloud_id = "x1"\n', "api_token"),
    ('api_key = "env:K"\nemail = "a@b.co"\n', 'only for api = "jsm"'),
    ('api = "pagerduty"\napi_key = "env:K"\n', "api"),
])
def test_config_jsm_refusals(table: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(_config(table), Path("c.toml"))
    assert says in str(exc.value)


def test_the_spec_checker_finds_problems(jsm_spec) -> None:
    root = f"/api/{seed.CLOUD_ID}/v1"
    assert jsm_spec.check_request("GET", f"{root}/alerts", "offset=0&size=20&limit=5", {}, None)  # Opsgenie's limit
    assert jsm_spec.check_request("GET", f"{root}/alerts", "size=101", {}, None)
    assert jsm_spec.check_request("POST", f"{root}/alerts/x/escalate", "", {}, {"escalation": {"id": "e"}})
    assert jsm_spec.check_request("POST", f"{root}/alerts/x/acknowledge", "", {}, {"note": "n"})
    assert not jsm_spec.check_request("POST", f"{root}/alerts/x/escalate", "", {}, {"escalationId": "e"})
    assert jsm_spec.check_response("GET", f"{root}/alerts/x", 200, {"data": {"id": "x"}})
    assert jsm_spec.check_response("GET", f"{root}/alerts/x", 404, {"message": "nope"})
    assert not jsm_spec.check_response("GET", f"{root}/alerts/x", 404, {"errors": [{"title": "t", "code": "c"}]})
