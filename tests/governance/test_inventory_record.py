"""The inventory: each proxy's `tools.discovered` record carries the upstream's tools, so the collector
holds what users' proxies have seen (the administrator's console reads it)."""

from __future__ import annotations

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.proxy import stdio_upstream

pytestmark = pytest.mark.anyio


async def test_tools_discovered_carries_each_tools_name_hash_title_and_annotations(proxy):
    proxy.write({"f": stdio_upstream()})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
    [record] = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "tools.discovered"]
    tools = {t["name"]: t for t in record["tools"]}
    assert record["tool_count"] == len(tools) and {t["exposed"] for t in tools.values()} <= names
    echo = tools["echo"]
    assert echo["exposed"] == "f_echo" and len(echo["sha256"]) == 64 and echo["annotations"] == {"readOnlyHint": True}
