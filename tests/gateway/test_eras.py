"""Both protocol eras toward the client get the same tools, answers and refusals: a current client, which
probes `server/discover` and so speaks the stateless 2026-07-28 era, and a handshake-era client."""

from __future__ import annotations

import json

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_list_call_tool_error_and_denial_answer_alike_on_both_eras(proxy, tmp_path, mode):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": {"state": "approved", "class": "read",
                                                              "sha256": ECHO_HASH}})))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    async with proxy.client(mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "f_echo" in names and "f_add" not in names
        echo = await client.call_tool("f_echo", {"text": "hi"})
        assert not echo.is_error and text_of(echo) == "hi"
        assert echo.structured_content == {"text": "hi", "server": "fake"}
        invalid = await client.call_tool("f_echo", {"text": 5})
        assert invalid.is_error and "argument 'text'" in text_of(invalid)
        denied = await client.call_tool("f_add", {"a": 1, "b": 2})
        assert denied.is_error and "pending review" in text_of(denied)
        own = await client.call_tool("proxy_unavailable_tools", {})
        assert not own.is_error and "f_add" in text_of(own)
    events = [(r["event_name"], r.get("outcome")) for r in spool_records(home_paths(proxy.home))
              if r["event_name"].startswith("mcp.tool")]
    assert events == [("mcp.tool.started", None), ("mcp.tool.call", "ok"), ("mcp.tool.call", "error"),
                      ("mcp.tool.denied", None), ("mcp.tool.call", "ok")]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_and_list_freshness_on_both_eras(proxy, mode):
    proxy.write({"f": stdio_upstream()})
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with proxy.client(mode=mode) as client:
        listed = await client.list_tools()
        names = [t.name for t in listed.tools]
        assert names == [t.name for t in (await client.list_tools()).tools], "a deterministic order"
        if mode == "auto":  # the stateless era says how long the list stays fresh, and for whom
            assert listed.ttl_ms == 60_000 and listed.cache_scope == "private"
        result = await client.call_tool("f_progress", {"steps": 3}, progress_callback=progress)
        assert text_of(result) == "done"
    assert [s[0] for s in seen] == [1, 2, 3]
