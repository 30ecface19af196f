"""Classic pagination to the end, the 10000-record window, trimming with a note, and the region's host."""

from __future__ import annotations

import httpx
import pytest

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.pagerduty import base_url_for, build
from tests._support.pagerduty import ACCOUNT_KEY, Sandbox, provider

pytestmark = pytest.mark.anyio


async def test_pages_to_the_end(pd: Sandbox) -> None:
    c = pd.connector()
    seen, offset, pages = [], 0, 0
    while offset is not None:
        out = await c.call("list_incidents", {"date_range": "all", "limit": 3, "offset": offset})
        seen += [(i["created_at"], i["incident_number"]) for i in out.structured["incidents"]]
        offset = out.structured["next_offset"]
        pages += 1
        if offset is not None:
            assert f"offset={offset}" in out.text
    assert pages == 3 and seen == sorted(seen, reverse=True) and len(set(seen)) == 8
    assert "This is the last page." in out.text and out.structured["more"] is False


async def test_window_past_10000_is_refused_with_the_rule(pd: Sandbox) -> None:
    c = pd.connector()
    with pytest.raises(Exception, match="stops at 10000 records") as caught:
        await c.call("list_incidents", {"offset": 9950, "limit": 100})
    assert "Narrow the search" in str(caught.value)
    assert pd.emulator.log == []
    assert (await c.call("list_users", {"offset": 9900, "limit": 100})).structured["users"] == []
    async with httpx.AsyncClient(base_url=pd.url) as raw:  # the emulator enforces it as PagerDuty does
        answer = await raw.get("/users", params={"offset": 9950, "limit": 100},
                               headers={"Authorization": f"Token token={ACCOUNT_KEY}",
                                        "Accept": "application/vnd.pagerduty+json;version=2"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 2001


async def test_total_is_null_unless_asked(pd: Sandbox) -> None:
    out = await pd.connector().call("list_users", {"limit": 2})
    assert "total" not in out.structured and pd.requests()[-1]["response"]["total"] is None
    assert out.structured["more"] is True and out.structured["next_offset"] == 2


async def test_trimmed_page_says_so_and_skips_nothing(pd: Sandbox) -> None:
    c = pd.connector(max_result_chars=1500)
    out = await c.call("list_incidents", {"date_range": "all", "limit": 8})
    shown = out.structured["incidents"]
    assert out.structured["truncated"] is True and 0 < len(shown) < 8
    assert f"{out.structured['omitted']} of 8 incidents were left out" in out.text
    assert out.structured["next_offset"] == len(shown) and out.structured["more"] is True
    seen = [i["id"] for i in shown]
    offset = out.structured["next_offset"]
    while offset is not None:
        page = await c.call("list_incidents", {"date_range": "all", "limit": 8, "offset": offset})
        seen += [i["id"] for i in page.structured["incidents"]]
        offset = page.structured["next_offset"]
    assert len(seen) == len(set(seen)) == 8


async def test_big_object_is_cut_with_a_note(pd: Sandbox) -> None:
    out = await pd.connector(max_result_chars=300).call("get_incident", {"id": "1001"})
    assert "more characters in structuredContent" in out.text and out.structured["id"] == "Q0CHECKOUT1001"


@pytest.mark.parametrize(("region", "host"), [("us", "api.pagerduty.com"), ("eu", "api.eu.pagerduty.com")])
async def test_region_picks_the_host(region: str, host: str) -> None:
    hosts = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append((request.url.scheme, request.url.host, request.url.path))
        return httpx.Response(200, json={"teams": [], "limit": 25, "offset": 0, "more": False, "total": None})

    config = UpstreamConfig(key="pd", kind="pagerduty", region=region)
    assert base_url_for(config) == f"https://{host}"
    connector = build(config, provider(ACCOUNT_KEY), transport=httpx.MockTransport(handler))
    try:
        await connector.call("list_teams", {})
    finally:
        await connector.aclose()
    assert hosts == [("https", host, "/teams")]


def test_base_url_overrides_region_and_bad_region_is_named() -> None:
    assert base_url_for(UpstreamConfig(key="pd", kind="pagerduty", region="eu",
                                       base_url="https://gw.example.com/pd/")) == "https://gw.example.com/pd"
    with pytest.raises(ValueError, match=r"upstreams\.pd\.region must be 'us' or 'eu'"):
        base_url_for(UpstreamConfig(key="pd", kind="pagerduty", region="ap"))


async def test_eu_is_the_same_api_at_another_base_url(pd: Sandbox) -> None:
    """The emulator serves any host; its `self` links follow the host the request came to."""
    eu = pd.url.replace("127.0.0.1", "localhost")
    c = pd.connector(base_url=eu, region="eu")
    team = (await c.call("list_teams", {})).structured["teams"]
    assert team and pd.requests()[-1]["response"]["teams"][0]["self"].startswith(eu)
