"""One bad upstream affects only its own tools and calls."""

from __future__ import annotations

import anyio
import pytest

from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio


async def test_crash_mid_call_then_reconnect(proxy):
    proxy.write({"flaky": stdio_upstream(), "good": stdio_upstream()})
    async with proxy.client() as client:
        await client.list_tools()
        crashed = await client.call_tool("flaky_crash", {})
        assert crashed.is_error
        assert "closed the connection during the call" in text_of(crashed)
        assert text_of(await client.call_tool("good_echo", {"text": "ok"})) == "ok"
        # The proxy reconnects in the background; the upstream's tools work again.
        with anyio.fail_after(15):
            while True:
                result = await client.call_tool("flaky_echo", {"text": "back"})
                if not result.is_error:
                    break
                await anyio.sleep(0.2)
        assert text_of(result) == "back"


async def test_upstream_that_never_answers(proxy):
    proxy.write({"dead": stdio_upstream("--hang", connect_timeout=1, call_timeout=2), "good": stdio_upstream()})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "good_echo" in names and not any(n.startswith("dead_") for n in names)
        assert text_of(await client.call_tool("good_add", {"a": 1, "b": 1})) == "2"
        # Its tools are unknown, so a call names the problem instead of hanging.
        result = await client.call_tool("dead_echo", {"text": "x"})
        assert result.is_error
    assert "no answer within 1 s" in proxy.stderr_text()


async def test_call_that_times_out(proxy):
    proxy.write({"slowpoke": stdio_upstream(call_timeout=1)})
    async with proxy.client() as client:
        await client.list_tools()
        result = await client.call_tool("slowpoke_slow", {"seconds": 30})
        assert result.is_error and "did not answer within 1 s" in text_of(result)
        assert text_of(await client.call_tool("slowpoke_echo", {"text": "alive"})) == "alive"


async def test_off_spec_tools_cost_only_themselves(proxy):
    proxy.write({"odd": stdio_upstream("--invalid-schema")})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "odd_echo" in names
        assert not any("broken" in n or "bad" in n for n in names)
        assert text_of(await client.call_tool("odd_echo", {"text": "fine"})) == "fine"
    assert "skipping tool 'broken'" in proxy.stderr_text()


async def test_missing_command_is_reported_and_isolated(proxy, tmp_path):
    missing = str(tmp_path / "no-such-server")
    proxy.write({"gone": {"kind": "mcp", "command": missing, "connect_timeout": 120}, "good": stdio_upstream()})
    async with proxy.client() as client:
        assert "good_echo" in {t.name for t in (await client.list_tools()).tools}
        started = anyio.current_time()
        result = await client.call_tool("gone_echo", {"text": "x"})
        assert result.is_error and "The upstream 'gone' is not available" in text_of(result)
        assert "was not found" in text_of(result)
        assert anyio.current_time() - started < 60, "the call does not sit out connect_timeout (120 s)"
    assert "was not found" in proxy.stderr_text()


async def test_cached_tool_list_answers_before_upstream_starts(proxy):
    proxy.write({"one": stdio_upstream()})
    async with proxy.client() as client:
        await client.list_tools()  # fills the on-disk cache
    assert (proxy.home / "cache" / "tools" / "one.json").exists()
    # Same upstream, now taking a minute to start: the list comes from the cache.
    proxy.write({"one": stdio_upstream(connect_timeout=120, env={"FAKE_START_DELAY": "60"})})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"one_echo", "one_add"} <= names


async def test_torn_cache_file_is_ignored(proxy):
    cache = proxy.home / "cache" / "tools"
    cache.mkdir(parents=True)
    (cache / "one.json").write_text('{"format": 1, "fingerprint": "x", "tools": [{"na')
    proxy.write({"one": stdio_upstream()})
    async with proxy.client() as client:
        assert "one_echo" in {t.name for t in (await client.list_tools()).tools}


async def test_every_page_of_an_upstream_tool_list_is_read(proxy):
    proxy.write({"one": stdio_upstream("--tools", "10", "--page-size", "3")})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {f"one_bulk_{i:04d}" for i in range(10)} <= names and "one_echo" in names


async def test_a_live_list_that_differs_from_the_cache_updates_the_client(proxy):
    from tests._support.policy_process import ListChanged

    proxy.write({"one": stdio_upstream(env={"FAKE_TOOLS": "1"})})
    async with proxy.client() as client:
        await client.list_tools()
    # The same upstream now has more tools and starts slowly: the first answer is the cached list, then it changes.
    proxy.write({"one": stdio_upstream(env={"FAKE_TOOLS": "3", "FAKE_START_DELAY": "1.5"})})
    changes = ListChanged()
    async with proxy.client(message_handler=changes) as client:
        first = {t.name for t in (await client.list_tools()).tools}
        assert "one_bulk_0000" in first and "one_bulk_0002" not in first
        await changes.wait(20)
        assert "one_bulk_0002" in {t.name for t in (await client.list_tools()).tools}
