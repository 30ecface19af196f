"""The gateway through the real process: merged list, forwarding, relays, isolation of bad upstreams."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest

from tests._support.proxy import free_port_http_upstream, stdio_upstream, text_of

pytestmark = pytest.mark.anyio


async def test_merged_list_and_forwarding(proxy):
    proxy.write({"one": stdio_upstream("--name", "one"), "two": stdio_upstream("--name", "two")})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"one_echo", "two_echo", "one_add", "two_add"} <= names
        result = await client.call_tool("two_echo", {"text": "hello"})
        assert not result.is_error
        assert result.structured_content == {"text": "hello", "server": "two"}
        assert text_of(await client.call_tool("one_add", {"a": 2, "b": 3})) == "5"


async def test_invalid_arguments_name_the_argument(proxy):
    proxy.write({"one": stdio_upstream()})
    async with proxy.client() as client:
        await client.list_tools()
        result = await client.call_tool("one_add", {"a": "x", "b": 1})
        assert result.is_error
        assert "'a'" in text_of(result) and "integer" in text_of(result)
        missing = await client.call_tool("one_add", {"a": 1})
        assert missing.is_error and "'b' is required" in text_of(missing)


async def test_unknown_tool_is_an_error_result(proxy):
    proxy.write({"one": stdio_upstream()})
    async with proxy.client() as client:
        result = await client.call_tool("one_nope", {})
        assert result.is_error and "no tool named 'one_nope'" in text_of(result)


async def test_progress_is_relayed(proxy):
    proxy.write({"one": stdio_upstream()})
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with proxy.client() as client:
        await client.list_tools()
        result = await client.session.call_tool("one_progress", {"steps": 3}, progress_callback=on_progress)
        assert text_of(result) == "done"
    assert [p for p, _, _ in seen] == [1, 2, 3]
    assert seen[-1][2] == "step 3"


async def test_elicitation_is_relayed_to_the_client(proxy):
    # The fake elicits with a server-initiated request, which exists on the handshake era only: pinned there.
    # The 2026-07-28 form (InputRequiredResult) is tests/governance/test_upstream_input.py.
    proxy.write({"one": stdio_upstream(protocol="legacy")})

    async def answer(context, params):
        assert params.message == "[one, while running one_ask] favourite colour?"  # labelled with its upstream
        return types.ElicitResult(action="accept", content={"answer": "green"})

    async with proxy.client(elicitation_callback=answer) as client:
        await client.list_tools()
        result = await client.call_tool("one_ask", {"question": "favourite colour?"})
        assert text_of(result) == "accept:green"


async def test_upstream_list_changed_reaches_the_client(proxy):
    # The fake announces with notifications/tools/list_changed, which the 2026-07-28 era carries only on
    # subscriptions/listen (which the fake does not serve): pinned to the handshake era.
    proxy.write({"one": stdio_upstream(protocol="legacy")})
    notices: list[float] = []

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            notices.append(anyio.current_time())

    async with proxy.client(message_handler=on_message) as client:
        assert "one_grown" not in {t.name for t in (await client.list_tools()).tools}
        await anyio.sleep(0.5)  # let the start-up notice (if any) arrive first
        before = len(notices)
        await client.call_tool("one_grow", {})
        with anyio.fail_after(10):
            while len(notices) == before:
                await anyio.sleep(0.05)
        assert "one_grown" in {t.name for t in (await client.list_tools()).tools}


async def test_streamable_http_upstream_with_api_key_from_env(proxy):
    port, server = free_port_http_upstream("--api-key", "uo_test_key_123")
    try:
        proxy.write({"web": {"kind": "mcp", "url": f"http://127.0.0.1:{port}/mcp",
                             "headers": {"X-API-Key": "env:WEB_KEY"}}})
        async with proxy.client(env=proxy.env(WEB_KEY="uo_test_key_123")) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "web_echo" in tools
            assert text_of(await client.call_tool("web_echo", {"text": "over http"})) == "over http"
    finally:
        server.terminate()
        server.wait(5)
    assert "uo_test_key_123" not in proxy.stderr_text()


async def test_wrong_http_key_affects_only_that_upstream(proxy):
    port, server = free_port_http_upstream("--api-key", "right-key")
    try:
        proxy.write({"web": {"kind": "mcp", "url": f"http://127.0.0.1:{port}/mcp", "connect_timeout": 5,
                             "headers": {"X-API-Key": "env:WEB_KEY"}},
                     "local": stdio_upstream()})
        async with proxy.client(env=proxy.env(WEB_KEY="wrong-key")) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "local_echo" in tools and "web_echo" not in tools
            assert text_of(await client.call_tool("local_echo", {"text": "still fine"})) == "still fine"
    finally:
        server.terminate()
        server.wait(5)
    log = proxy.stderr_text()
    assert "HTTP 401" in log and "wrong-key" not in log


async def test_max_tools_keeps_read_only_tools_first(proxy):
    proxy.write({"one": stdio_upstream()}, extra="max_tools = 2")
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools if t.name.startswith("one_")}
        assert names == {"one_echo", "one_add"}  # the two read-only tools
    assert "exposing 2 of 7" in proxy.stderr_text()


async def test_tool_budget_warning_for_cursor(proxy):
    proxy.write({"one": stdio_upstream("--tools", "45")})
    async with proxy.client(client_name="cursor-vscode") as client:
        assert len((await client.list_tools()).tools) > 40
    assert "Cursor" in proxy.stderr_text() and "max_tools" in proxy.stderr_text()


async def test_sse_upstream(proxy):
    port, server = free_port_http_upstream("--sse")
    try:
        proxy.write({"old": {"kind": "mcp", "url": f"http://127.0.0.1:{port}/sse"}})
        async with proxy.client() as client:
            assert "old_echo" in {t.name for t in (await client.list_tools()).tools}
            assert text_of(await client.call_tool("old_echo", {"text": "via sse"})) == "via sse"
    finally:
        server.terminate()
        server.wait(5)


async def test_client_cancellation_reaches_the_upstream(proxy, tmp_path):
    marker = tmp_path / "cancelled"
    proxy.write({"one": stdio_upstream(env={"FAKE_CANCEL_MARKER": str(marker)})})
    async with proxy.client() as client:
        await client.list_tools()
        from mcp.shared.exceptions import MCPError

        with pytest.raises(MCPError):
            await client.session.call_tool("one_slow", {"seconds": 30}, read_timeout_seconds=1.0)
        with anyio.fail_after(10):
            while not marker.exists():
                await anyio.sleep(0.05)
        # The proxy is still fine afterwards.
        assert text_of(await client.call_tool("one_echo", {"text": "after"})) == "after"
