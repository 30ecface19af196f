"""An upstream's answers are bounded: one over `max_message_bytes` fails that call or that tool list with a
clear error, and nothing else; a remote upstream's results up to the limit pass; a remote call that times out
ends its stream; a child's stderr reaches the log labelled and capped."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time

import anyio
import pytest

from mcp_proxy.upstreams.stdio_transport import LineFramer, Oversized, request_id_of
from tests._support.bounded import MIB, big_http, big_stdio, eventually
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio

LIMIT = "larger than 1 MiB (max_message_bytes)"


@pytest.mark.parametrize("id_last", [False, True], ids=["id-first", "id-last"])
async def test_an_oversized_result_fails_that_call_only(proxy, id_last):
    proxy.write({"big": big_stdio(max_message_bytes=MIB, env={"BIG_ID_LAST": "1"} if id_last else {})})
    async with proxy.client() as client:
        await client.list_tools()
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                echoes: list[str] = []

                async def echo() -> None:
                    echoes.append(text_of(await client.call_tool("big_echo", {"text": "alongside"})))

                tg.start_soon(echo)
                result = await client.call_tool("big_big", {"bytes": 3 * MIB})
        assert result.is_error
        assert LIMIT in text_of(result) and "big" in text_of(result)
        assert echoes == ["alongside"]
        # The same session goes on: the next calls work at once, without a reconnect.
        assert text_of(await client.call_tool("big_echo", {"text": "after"})) == "after"
        small = await client.call_tool("big_big", {"bytes": MIB // 2})
        assert not small.is_error and len(text_of(small)) == MIB // 2
    assert "retrying" not in proxy.stderr_text()


async def test_an_oversized_tool_list_fails_clearly_and_is_not_retried_at_once(proxy, tmp_path):
    lists = tmp_path / "lists.log"
    padded = {"BIG_LIST_BYTES": str(2 * MIB), "BIG_LIST_LOG": str(lists)}
    proxy.write({"big": big_stdio(max_message_bytes=MIB, env=padded), "ok": big_stdio(env=padded)})
    async with proxy.client() as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not any(n.startswith("big_") for n in names)
        assert await eventually(lambda: LIMIT in proxy.stderr_text(), 10)
        # "ok" has the same padded list but the default limit (32 MiB): it connects.
        assert text_of(await client.call_tool("ok_echo", {"text": "fine"})) == "fine"
        result = await client.call_tool("big_echo", {"text": "x"})
        assert result.is_error
        await anyio.sleep(3)
    # One list from each upstream: the oversized one waits before it asks again (plain backoff would ask at
    # about 0.5, 1.5 and 3.5 s).
    assert lists.read_text().count("list") == 2
    line = next(x for x in proxy.stderr_text().splitlines() if LIMIT in x)
    assert "upstream big" in line and "tools/list" in line


def test_doctor_names_an_oversized_tool_list(proxy, tmp_path):
    proxy.write({"big": big_stdio(max_message_bytes=MIB, env={"BIG_LIST_BYTES": str(2 * MIB)})})
    proc = subprocess.run([sys.executable, "-m", "mcp_proxy", "--config", str(proxy.config), "doctor"],
                          capture_output=True, text=True, env=proxy.env(), timeout=120)
    line = next(x for x in proc.stdout.splitlines() if "upstream big" in x)
    assert "FAIL" in line and LIMIT in line, proc.stdout


async def test_a_stderr_flood_is_capped_and_labelled(proxy):
    proxy.write({"noisy": big_stdio()})
    async with proxy.client() as client:
        await client.list_tools()
        started = time.monotonic()
        with anyio.fail_after(20):
            result = await client.call_tool("noisy_flood", {"lines": 200_000})
        assert text_of(result) == "flooded"
        assert time.monotonic() - started < 15
        assert text_of(await client.call_tool("noisy_echo", {"text": "still"})) == "still"
    log = proxy.stderr_text()
    flood = [x for x in log.splitlines() if "flood line" in x]
    assert flood, "the child's stderr reaches the log"
    assert all("upstream noisy" in x for x in flood)
    assert len(flood) < 1000, f"{len(flood)} lines of the flood were logged"
    assert "flood line 199999" in log, "the last lines are kept"
    assert "lines of stderr" in log and "dropped" in log


async def test_a_2_mib_remote_result_passes(proxy):
    with big_http() as url:
        proxy.write({"far": {"kind": "mcp", "url": url}})
        async with proxy.client() as client:
            await client.list_tools()
            result = await client.call_tool("far_big", {"bytes": 2 * MIB})
            assert not result.is_error, text_of(result)[:300]
            assert len(text_of(result)) == 2 * MIB
            assert text_of(await client.call_tool("far_echo", {"text": "same session"})) == "same session"
    assert "retrying" not in proxy.stderr_text()


async def test_an_oversized_remote_result_fails_that_call_only(proxy):
    with big_http() as url:
        proxy.write({"far": {"kind": "mcp", "url": url, "max_message_bytes": MIB}})
        async with proxy.client() as client:
            await client.list_tools()
            result = await client.call_tool("far_big", {"bytes": 2 * MIB})
            assert result.is_error and LIMIT in text_of(result)
            assert text_of(await client.call_tool("far_echo", {"text": "same session"})) == "same session"
    assert "retrying" not in proxy.stderr_text()


async def test_a_timed_out_remote_call_closes_its_stream(proxy, tmp_path):
    marker = tmp_path / "hang-closed"
    with big_http(env=proxy.env(BIG_HANG_MARKER=str(marker))) as url:
        proxy.write({"far": {"kind": "mcp", "url": url, "call_timeout": 1}})
        async with proxy.client() as client:
            await client.list_tools()
            result = await client.call_tool("far_hang", {})
            assert result.is_error and "did not answer within 1 s" in text_of(result)
            # The server sees the response stream end while the proxy (and its session) lives on.
            assert await eventually(marker.exists, 5), "the proxy still reads the abandoned call's stream"
            assert text_of(await client.call_tool("far_echo", {"text": "on"})) == "on"


def test_the_framer_gives_every_line_or_its_ends():
    rng = random.Random(7)
    for limit, keep in ((1, 0), (5, 8), (100, 16), (1000, 4096)):
        data = b"".join(rng.choice([b"a" * rng.randint(0, 300), b"b" * rng.randint(0, 30), b"\n"]) for _ in range(80))
        framer, got, i = LineFramer(limit, keep), [], 0
        while i < len(data):
            step = rng.randint(1, 500)
            got += framer.feed(data[i:i + step])
            i += step
        got += framer.flush()
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        assert got == [Oversized(len(x), x[:keep], x[max(0, len(x) - keep):] if keep else b"") if len(x) > limit
                       else x for x in lines]


@pytest.mark.parametrize(("message", "expected"), [
    ({"jsonrpc": "2.0", "id": 7, "result": {"t": "x" * 200}}, 7),
    ({"result": {"t": "x" * 200, "id": 3}, "jsonrpc": "2.0", "id": 'a"b'}, 'a"b'),
    ({"result": {"t": "x" * 200}, "id": 9, "jsonrpc": "2.0"}, 9),
    ({"jsonrpc": "2.0", "result": {"id": 5, "t": "x" * 200}, "id": 6}, 6),
    ({"jsonrpc": "2.0", "method": "notifications/message", "params": {"t": "x" * 200, "id": 4}}, None),
])
def test_the_id_of_an_oversized_message(message, expected):
    (line,) = LineFramer(50, 40).feed(json.dumps(message).encode() + b"\n")
    assert isinstance(line, Oversized) and request_id_of(line) == expected
