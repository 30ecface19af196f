"""Pagination in Opsgenie's styles, result trimming, and the region's base URL."""

from __future__ import annotations

import httpx
import pytest

from mcp_proxy.connectors.opsgenie import base_url_for
from mcp_proxy.sandbox.opsgenie import seed
from tests._support.opsgenie import upstream_config

pytestmark = pytest.mark.anyio


async def test_alerts_page_to_the_end_by_offset(og):
    con = og.connector()
    seen, offsets, offset = [], [], 0
    while offset is not None:
        offsets.append(offset)
        out = await con.call("list_alerts", {"limit": 2, "offset": offset, "sort": "tinyId", "order": "asc"})
        seen += [a["tinyId"] for a in out.structured["alerts"]]
        offset = out.structured["next_offset"]
        if offset is not None:
            assert f"offset={offset}" in out.text
    assert seen == ["100", "101", "102", "103", "104"] and offsets == [0, 2, 4]
    last = og.requests("GET", "/v2/alerts")[-1]
    assert "next" not in last["response"]["paging"] and "X-Paging-Next" not in last["response_headers"]
    assert last["response_headers"]["X-Paging-First"].startswith(og.url)


async def test_notes_page_with_opaque_offsets_both_ways(og):
    con = og.connector()
    args = {"identifier": seed.ALERT_DB_ID, "limit": 2}
    pages, token = [], None
    while True:
        out = await con.call("list_alert_notes", {**args, **({"offset": token} if token else {})})
        pages.append([n["note"] for n in out.structured["notes"]])
        token = out.structured["next_offset"]
        if token is None:
            break
        assert isinstance(token, str) and f'offset="{token}"' in out.text
    assert pages == [["Watching for an hour", "Lag at 5 s"], ["Lag going down", "Replica restarted"],
                     ["Looking into it"]]
    middle = og.emulator.notes[seed.ALERT_DB_ID][2]["offset"]  # "Lag going down"
    back = await con.call("list_alert_notes", {**args, "offset": middle, "direction": "prev"})
    assert [n["note"] for n in back.structured["notes"]] == ["Watching for an hour", "Lag at 5 s"]
    assert back.structured["direction"] == "prev"


async def test_logs_page_to_the_end(og):
    con = og.connector()
    total, token = [], None
    for _ in range(10):
        out = await con.call("list_alert_logs", {"identifier": seed.ALERT_DB_ID, "limit": 4, "order": "asc",
                                                 **({"offset": token} if token else {})})
        total += out.structured["logs"]
        token = out.structured["next_offset"]
        if token is None:
            break
    assert len(total) == 6 and total[0]["log"].startswith("Alert created")


async def test_users_page_with_total_count(og):
    con = og.connector()
    names, offset = [], 0
    while offset is not None:
        out = await con.call("list_users", {"limit": 2, "offset": offset, "sortField": "username"})
        assert out.structured["totalCount"] == 5
        names += [u["username"] for u in out.structured["users"]]
        offset = out.structured["next_offset"]
    assert names == sorted(u["username"] for u in seed.USERS)


async def test_oversized_results_are_trimmed_with_a_note(og):
    con = og.connector(max_result_chars=1500)
    out = await con.call("list_alerts", {"limit": 5})
    assert out.structured["truncated"] and out.structured["omitted"] >= 1
    assert len(out.structured["alerts"]) + out.structured["omitted"] == 5
    assert "were left out to keep the result under 1500 characters" in out.text
    one = await og.connector(max_result_chars=500).call("get_alert", {"identifier": seed.ALERT_DB_ID})
    assert "(cut:" in one.text and one.structured["id"] == seed.ALERT_DB_ID


async def test_paging_through_trimmed_pages_skips_nothing(og):
    con = og.connector(max_result_chars=900)
    seen, offset, calls = [], 0, 0
    while offset is not None and calls < 10:
        out = await con.call("list_alerts", {"limit": 5, "offset": offset, "sort": "tinyId", "order": "asc"})
        calls += 1
        seen += [a["tinyId"] for a in out.structured["alerts"]]
        offset = out.structured["next_offset"]
    assert seen == ["100", "101", "102", "103", "104"] and calls > 1
    notes, token, calls = [], None, 0
    small = og.connector(max_result_chars=500)
    while calls < 10:
        out = await small.call("list_alert_notes", {"identifier": seed.ALERT_DB_ID, "limit": 5,
                                                    **({"offset": token} if token else {})})
        calls += 1
        notes += [n["note"] for n in out.structured["notes"]]
        token = out.structured["next_offset"]
        if token is None:
            break
    assert len(notes) == 5 and len(set(notes)) == 5 and calls > 1
    users, offset = [], 0
    tiny = og.connector(max_result_chars=700)
    while offset is not None:
        out = await tiny.call("list_users", {"limit": 5, "offset": offset})
        users += [u["id"] for u in out.structured["users"]]
        offset = out.structured["next_offset"]
    assert sorted(users) == sorted(u["id"] for u in seed.USERS)


def test_base_url_by_region_and_override():
    assert base_url_for(upstream_config(None)) == "https://api.opsgenie.com"
    assert base_url_for(upstream_config(None, region="eu")) == "https://api.eu.opsgenie.com"
    assert base_url_for(upstream_config("https://gw.example.com/og/", region="eu")) == "https://gw.example.com/og"
    with pytest.raises(ValueError, match="region"):
        base_url_for(upstream_config(None, region="ap"))


class _ToLoopback(httpx.AsyncBaseTransport):
    """Records the URL the connector chose, and delivers the request to the local emulator instead."""

    def __init__(self, target: str) -> None:
        self.target = httpx.URL(target)
        self.seen: list[str] = []
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        request.headers["host"] = f"{self.target.host}:{self.target.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_eu_region_talks_to_the_eu_host(og):
    transport = _ToLoopback(og.url)
    con = og.connector(base_url=None, region="eu", transport=transport)
    out = await con.call("who_is_on_call", {"identifier": seed.SCHEDULE_ID})
    assert out.structured["_parent"]["id"] == seed.SCHEDULE_ID
    assert transport.seen[0].startswith("https://api.eu.opsgenie.com/v2/schedules/")
    await con.aclose()
