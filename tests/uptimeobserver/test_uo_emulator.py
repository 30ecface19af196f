"""The UptimeObserver emulator on its own: key checks on every request, the tool list, state, errors."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import jsonschema
import pytest
from mcp.shared.exceptions import MCPError

from mcp_proxy.sandbox.uptimeobserver import REFUSALS, Emulator
from tests._support.uptimeobserver import JWT, KEY, NO_PREFIX, OTHER_KEY, TOOLS

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def session(url: str, headers: dict[str, str]):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as client):
        yield client


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing"),
    ({"X-API-Key": KEY, "Authorization": f"Bearer {KEY}"}, "both"),
    ({"Authorization": f"Basic {KEY}"}, "scheme"),
    ({"Authorization": f"Bearer {JWT}"}, "jwt"),
    ({"X-API-Key": JWT}, "jwt"),
    ({"X-API-Key": NO_PREFIX}, "prefix"),
    ({"Authorization": f"Bearer {NO_PREFIX}"}, "prefix"),
    ({"X-API-Key": "uo_never_issued_0000000000000000"}, "unknown"),
])
async def test_refused_credentials_are_401_with_the_reason(uo, headers, reason) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(uo.url, json=INIT, headers={**ACCEPT, **headers})
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized", "message": REFUSALS[reason]}
    entry = uo.emulator.log[-1]
    assert (entry["auth"], entry["status"], entry["rpc"]) == (reason, 401, "initialize")
    assert KEY not in repr(uo.emulator.log) and JWT not in repr(uo.emulator.log)


async def test_one_header_twice_is_refused_like_two_headers(uo) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(uo.url, json=INIT, headers=[("Accept", ACCEPT["Accept"]), ("X-API-Key", KEY),
                                                       ("X-API-Key", OTHER_KEY)])
    assert r.status_code == 401 and "one header only" in r.json()["message"]


@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
async def test_either_header_opens_a_session_with_a_closed_tool_list(uo, style) -> None:
    headers = {"X-API-Key": KEY} if style == "x-api-key" else {"Authorization": f"Bearer {KEY}"}
    async with session(uo.url, headers) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["additionalProperties"] is False and len(tool.description) > 40, name
        writes = name in ("pause_monitor", "resume_monitor")
        assert tool.annotations.read_only_hint is (not writes) and tool.annotations.idempotent_hint is True, name
    assert tools["get_monitor"].input_schema["required"] == ["monitor_id"]
    assert tools["list_monitors"].input_schema["properties"]["status"]["enum"] == ["up", "down", "paused"]
    assert {e["auth"] for e in uo.emulator.log} == {"ok"}
    assert {tuple(e["key_headers"]) for e in uo.emulator.log} == {(style if style == "x-api-key" else "authorization",)}


async def test_state_is_shared_and_changes_show_in_later_reads(uo) -> None:
    async with session(uo.url, {"X-API-Key": KEY}) as client:
        summary = await client.call_tool("get_status_summary", {})
        assert summary.structured_content["monitors"] == {"total": 5, "up": 3, "down": 1, "paused": 1}
        paused = await client.call_tool("pause_monitor", {"monitor_id": "mon_web01"})
        assert paused.structured_content["status"] == "paused" and "paused" in paused.content[0].text
        again = await client.call_tool("pause_monitor", {"monitor_id": "mon_web01"})
        assert "already was" in again.content[0].text
    async with session(uo.url, {"Authorization": f"Bearer {OTHER_KEY}"}) as client:  # another session sees it
        listed = await client.call_tool("list_monitors", {"status": "paused"})
        assert [m["id"] for m in listed.structured_content["monitors"]] == ["mon_web01", "mon_dns01"]
        await client.call_tool("pause_monitor", {"monitor_id": "mon_db01"})
        resumed = await client.call_tool("resume_monitor", {"monitor_id": "mon_db01"})
        assert resumed.structured_content["status"] == "down"  # its incident is still ongoing
        new = uo.emulator.monitor_down("mon_kw01", "Keyword 'Pay now' not found")
        ongoing = await client.call_tool("list_incidents", {"status": "ongoing"})
        assert [i["id"] for i in ongoing.structured_content["incidents"]] == [new, "inc_0001"]
        uo.emulator.monitor_up("mon_kw01")
        detail = await client.call_tool("get_monitor", {"monitor_id": "mon_kw01"})
        assert detail.structured_content["status"] == "up" and detail.structured_content["ongoing_incident"] is None
        db = await client.call_tool("get_monitor", {"monitor_id": "mon_db01"})
        assert db.structured_content["ongoing_incident"]["id"] == "inc_0001"
        assert "Connection refused" in db.content[0].text


async def test_bad_arguments_and_unknown_ids_are_tool_errors(uo) -> None:
    async with session(uo.url, {"X-API-Key": KEY}) as client:
        missing = await client.call_tool("get_monitor", {"monitor_id": "mon_nothere"})
        assert missing.is_error and "list_monitors" in missing.content[0].text
        for args, part in (({"limit": 0}, "limit"), ({"status": "sideways"}, "status"), ({"colour": 1}, "colour")):
            bad = await client.call_tool("list_monitors", args)
            assert bad.is_error and part in bad.content[0].text, args
    assert [name for name, _ in uo.emulator.calls] == ["get_monitor"]  # refused calls change nothing


async def test_a_revoked_key_is_refused_at_once_in_an_open_session(uo) -> None:
    async with session(uo.url, {"X-API-Key": KEY}) as client:
        assert not (await client.call_tool("get_status_summary", {})).is_error
        uo.revoke(KEY)
        with pytest.raises(MCPError):
            await client.call_tool("get_status_summary", {})
    refused = [e for e in uo.emulator.log if e["auth"] == "revoked"]
    assert refused and refused[0]["rpc"] == "tools/call" and refused[0]["status"] == 401
    with pytest.raises(KeyError):
        uo.revoke("uo_not_a_key")


def test_emulator_without_seed_is_empty() -> None:
    assert Emulator(seed=False).monitors == {}
