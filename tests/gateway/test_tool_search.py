"""`tool_search = true`: the client sees only the proxy's tools; search, describe and call reach the approved
catalog, and a call through `proxy_call_tool` passes the same pipeline, and is recorded, as a direct call."""

from __future__ import annotations

import json

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio

OWN_TOOLS = {"proxy_search_tools", "proxy_describe_tool", "proxy_call_tool", "proxy_unavailable_tools",
             "proxy_request_access"}


def _tool_records(proxy) -> list[dict]:
    return [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]


def _comparable(record: dict) -> dict:
    """A record without what differs from call to call."""
    varying = {"id", "time", "timestamp", "event_id", "seq", "prev_hash", "hash", "duration_ms", "gen_ai.tool.call.id",
               "jsonrpc.request.id", "trace_id", "span_id", "parent_span_id", "observed_time"}
    return {k: v for k, v in record.items() if k not in varying}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("where", ["top", "server"])
async def test_search_describe_and_call_run_through_the_same_pipeline(proxy, tmp_path, mode, where):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.slow": {"state": "disabled"},
    })))
    setting = "tool_search = true\n" if where == "top" else "[server]\ntool_search = true\n"
    proxy.write({"f": stdio_upstream()}, extra=(setting + policy_config(policy)) if where == "top"
                else (policy_config(policy) + setting))
    async with proxy.client(mode=mode) as client:
        assert {t.name for t in (await client.list_tools()).tools} == OWN_TOOLS

        found = await client.call_tool("proxy_search_tools", {"query": "echo"})
        assert not found.is_error and [t["name"] for t in found.structured_content["tools"]] == ["f_echo"]
        every = await client.call_tool("proxy_search_tools", {})
        names = {t["name"] for t in every.structured_content["tools"]}
        assert "f_echo" in names and "f_slow" not in names and "f_add" not in names
        assert not (await client.call_tool("proxy_search_tools", {"query": "slow"})).structured_content["tools"]

        described = await client.call_tool("proxy_describe_tool", {"name": "f_echo"})
        assert not described.is_error and described.structured_content["name"] == "f_echo"
        assert described.structured_content["inputSchema"]["properties"]["text"]["type"] == "string"
        hidden = await client.call_tool("proxy_describe_tool", {"name": "f_slow"})
        assert hidden.is_error and "proxy_unavailable_tools" in text_of(hidden)

        ran = await client.call_tool("proxy_call_tool", {"name": "f_echo", "arguments": {"text": "hi"}})
        assert not ran.is_error and text_of(ran) == "hi"
        invalid = await client.call_tool("proxy_call_tool", {"name": "f_echo", "arguments": {"text": 5}})
        assert invalid.is_error and "argument 'text'" in text_of(invalid)
        through = await client.call_tool("proxy_call_tool", {"name": "f_slow", "arguments": {"seconds": 0}})
        direct = await client.call_tool("f_slow", {"seconds": 0})
        assert through.is_error and "disabled" in text_of(through)
        assert text_of(through) == text_of(direct), "refused alike"

    records = _tool_records(proxy)
    real = [(r["event_name"], r["gen_ai.tool.name"], r.get("outcome")) for r in records
            if r.get("upstream") != "proxy"]
    assert real == [("mcp.tool.started", "f_echo", None), ("mcp.tool.call", "f_echo", "ok"),
                    ("mcp.tool.call", "f_echo", "error"),
                    ("mcp.tool.denied", "f_slow", None), ("mcp.tool.denied", "f_slow", None)]
    started = next(r for r in records if r["event_name"] == "mcp.tool.started")
    assert started["gen_ai.tool.call.arguments"] == {"text": "hi"} and started["upstream"] == "f"
    through_denied, direct_denied = [r for r in records if r["event_name"] == "mcp.tool.denied"]
    assert _comparable(through_denied) == _comparable(direct_denied), "recorded exactly like a direct call"
    # The envelope's own records name their target and never carry its arguments.
    envelopes = [r for r in records if r.get("upstream.tool") == "proxy_call_tool"]
    assert [(r["proxy.call.tool"], r["outcome"], r["gen_ai.tool.call.arguments"]) for r in envelopes] == [
        ("f_echo", "ok", {"name": "f_echo"}), ("f_echo", "error", {"name": "f_echo"}),
        ("f_slow", "tool_error", {"name": "f_slow"})]
    calls = {r["gen_ai.tool.call.id"] for r in records if r.get("upstream") != "proxy"}
    assert {r["proxy.call.id"] for r in envelopes} <= calls


async def test_without_tool_search_the_catalog_is_listed_and_no_search_tools(proxy, tmp_path):
    proxy.write({"f": stdio_upstream()})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "f_echo" in names and "proxy_call_tool" not in names
        refused = await client.call_tool("proxy_call_tool", {"name": "f_echo", "arguments": {"text": "x"}})
        assert refused.is_error


async def test_proxy_call_tool_refuses_bad_requests_and_its_own_tools(proxy):
    proxy.write({"f": stdio_upstream()}, extra="tool_search = true\n")
    async with proxy.client() as client:
        missing = await client.call_tool("proxy_call_tool", {"arguments": {}})
        assert missing.is_error and "`name` is required" in text_of(missing)
        own = await client.call_tool("proxy_call_tool", {"name": "proxy_call_tool", "arguments": {}})
        assert own.is_error and "call it directly" in text_of(own)
        unknown = await client.call_tool("proxy_call_tool", {"name": "f_nope"})
        assert unknown.is_error
    denied = [r for r in _tool_records(proxy) if r["event_name"] == "mcp.tool.denied"]
    assert [(r["gen_ai.tool.name"], r["policy.decision.code"]) for r in denied] == [("f_nope", "unknown_tool")]


@pytest.mark.parametrize("setting", ["", "tool_search = false\n", "max_tools = 80\n"])
async def test_more_tools_than_the_client_takes_switch_to_the_search_mode_unless_configured(proxy, setting):
    # Cursor takes 80 tools over all its servers: 110 approved tools would lose some at random.
    proxy.write({"f": stdio_upstream("--tools", "103")}, extra=setting)
    async with proxy.client(client_name="cursor-vscode") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        if setting:  # said otherwise in the config: the list as configured, cut or not
            assert len(names) == (82 if "max_tools" in setting else 112)  # max_tools counts the upstreams' tools
            return
        assert names == OWN_TOOLS
        found = await client.call_tool("proxy_search_tools", {"query": "bulk_0077"})
        assert [t["name"] for t in found.structured_content["tools"]][0] == "f_bulk_0077"
        ran = await client.call_tool("proxy_call_tool", {"name": "f_echo", "arguments": {"text": "hi"}})
        assert not ran.is_error and text_of(ran) == "hi"
    assert "exceed Cursor's limit of 80: this session uses the search mode" in proxy.stderr_text()
