"""Statuspage pagination (bare arrays; page + per_page, incidents page + limit, subscribers 0-based
page + limit) walked to the end by following the results' `next`, and trimming for size."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from mcp_proxy.connectors.base import ConnectorError
from mcp_proxy.sandbox.statuspage import ORG, PAGE
from mcp_proxy.sandbox.statuspage.handlers import _component_rows
from tests._support.statuspage import Sandbox

pytestmark = pytest.mark.anyio


async def walk(connector, tool: str, key: str, args: dict[str, Any], size_name: str) -> tuple[list[str], list[dict]]:
    """Follow `next` until it is None; returns the ids seen (in order) and each structured result."""
    seen: list[str] = []
    results = []
    call = dict(args)
    for _ in range(50):
        out = await connector.call(tool, call)
        results.append(out.structured)
        seen += [item["id"] for item in out.structured[key]]
        nxt = out.structured["next"]
        if nxt is None:
            return seen, results
        assert "call " + tool in out.text and f"page={nxt['page']}" in out.text
        call = {**args, "page": nxt["page"], size_name: nxt[size_name]}
    raise AssertionError("pagination did not end")


async def test_components_to_the_end(sp: Sandbox) -> None:
    ids, results = await walk(sp.connector(), "list_components", "components", {"per_page": 3}, "per_page")
    assert ids == [c["id"] for c in _component_rows(sp.emulator, PAGE)]  # 8 rows: pages of 3, 3, 2
    assert [r["more_may_exist"] for r in results] == [True, True, False]
    assert [e["query"] for e in sp.requests("GET", "/components")] == [
        "page=1&per_page=3", "page=2&per_page=3", "page=3&per_page=3"]
    assert "This is the last page." in (await sp.connector().call("list_components", {"page": 3, "per_page": 3})).text


async def test_an_exactly_full_last_page_costs_one_empty_page(sp: Sandbox) -> None:
    ids, results = await walk(sp.connector(), "list_users", "users", {"per_page": 1}, "per_page")
    assert ids == ["usralice0001", "usrbob000001", "usrcarol0001"]
    assert len(results) == 4 and results[-1]["users"] == [] and results[-1]["more_may_exist"] is False
    assert sp.requests("GET", "/users")[-1]["path"] == f"/organizations/{ORG}/users"


async def test_incidents_use_page_and_limit(sp: Sandbox) -> None:
    ids, _ = await walk(sp.connector(), "list_incidents", "incidents", {"limit": 2}, "limit")
    assert sorted(ids) == sorted(sp.emulator.incidents[PAGE]) and len(ids) == 5
    assert sp.requests("GET", "/incidents")[1]["query"] == "page=2&limit=2"


async def test_subscribers_are_zero_based(sp: Sandbox) -> None:
    ids, results = await walk(sp.connector(), "list_subscribers", "subscribers", {"limit": 2, "state": "all"},
                              "limit")
    assert sorted(ids) == sorted(sp.emulator.subscribers[PAGE]) and len(ids) == 7
    assert [r["page"] for r in results] == [0, 1, 2, 3]
    assert sp.requests("GET", "/subscribers")[0]["query"] == "state=all&page=0&limit=2"


async def test_page_size_default_comes_from_the_config(sp: Sandbox) -> None:
    c = sp.connector(page_size=4)
    await c.call("list_metrics", {})
    await c.call("list_subscribers", {})
    assert sp.requests("GET", "/metrics")[-1]["query"] == "page=1&per_page=4"
    assert sp.requests("GET", "/subscribers")[-1]["query"] == "page=0&limit=4"
    assert next(t for t in c.tools() if t.name == "list_metrics").input_schema["properties"]["per_page"][
        "default"] == 4


async def test_out_of_range_paging_is_refused_before_sending(sp: Sandbox) -> None:
    c = sp.connector()
    for args in ({"per_page": 500}, {"per_page": 0}, {"page": 0}, {"page": "2"}):
        with pytest.raises(ConnectorError) as caught:
            await c.call("list_components", args)
        assert caught.value.error_type == "bad_argument"
    with pytest.raises(ConnectorError, match="from 0 to"):
        await c.call("list_subscribers", {"page": -1})
    assert not sp.emulator.log


async def test_trimmed_results_say_so_and_the_next_pointer_skips_nothing(sp: Sandbox) -> None:
    for i in range(12):  # enough incidents with long updates to overflow a small result
        sp.emulator.add_incident(PAGE, f"incbulk{i:05d}", f"Bulk incident {i}", "realtime", _t(i),
                                 updates=[(f"updbulk{i:05d}", "resolved", "x" * 250, _t(i))], components={},
                                 impact="none")
    c = sp.connector(max_result_chars=2500)
    first = await c.call("list_incidents", {"limit": 10})
    assert first.structured["truncated"] is True and first.structured["omitted"] > 0
    assert "were left out to keep the result under 2500 characters" in first.text
    assert "left out for size" in first.text and first.structured["next"]["limit"] < 10
    ids, results = await walk(c, "list_incidents", "incidents", {"limit": 10}, "limit")
    assert set(ids) == set(sp.emulator.incidents[PAGE])  # nothing skipped (some may repeat)
    assert results[0].get("truncated") and len(results) > 2
    limits = [int(e["query"].split("limit=")[1].split("&")[0]) for e in sp.requests("GET", "/incidents")[1:]]
    assert min(limits) < 10  # the walk asked for smaller pages to reach what was left out


async def test_a_large_object_is_cut_with_a_note(sp: Sandbox) -> None:
    out = await sp.connector(max_result_chars=300).call("get_incident", {"incident_id": "inclogin0001"})
    assert "more characters in structuredContent" in out.text
    assert len(out.structured["incident_updates"]) == 3  # the structured copy stays whole


def _t(i: int):
    from datetime import datetime, timedelta

    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)
