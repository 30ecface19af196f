"""Both protocol eras toward upstreams, through the real process: the proxy probes `server/discover`, falls
back to `initialize` without a long delay, remembers the verdict in the tool cache (the next start does not
probe), and gets over a remembered verdict that no longer fits (an upgraded server)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio

ERA = str(Path(__file__).with_name("era_upstream.py"))


def era_upstream(log: Path, mode: str) -> dict:
    return {"kind": "mcp", "command": sys.executable, "args": [ERA],
            "env": {"ERA_UPSTREAM_MODE": mode, "ERA_UPSTREAM_LOG": str(log)}}


def logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def _tools(client, want: str = "e_echo", budget: float = 15.0) -> set[str]:
    with anyio.fail_after(budget):
        while True:
            names = {t.name for t in (await client.list_tools()).tools}
            if want in names:
                return names
            await anyio.sleep(0.1)


async def test_a_modern_only_upstream_is_spoken_to_in_the_stateless_era(proxy, tmp_path):
    log = tmp_path / "up.jsonl"
    proxy.write({"e": era_upstream(log, "modern")})
    async with proxy.client() as client:
        await _tools(client)
        result = await client.call_tool("e_echo", {"text": "hi"})
        assert not result.is_error and text_of(result) == "hi"
    seen = logged(log)
    assert [r["method"] for r in seen if r["method"] in ("server/discover", "initialize")][:1] == ["server/discover"]
    assert {r["era"] for r in seen if r["method"] == "tools/call"} == {"modern"}


async def test_a_legacy_server_that_ignores_discover_costs_one_short_probe_then_none(proxy, tmp_path):
    log = tmp_path / "up.jsonl"
    proxy.write({"e": era_upstream(log, "silent")})
    started = time.monotonic()
    async with proxy.client() as client:
        await _tools(client)
        first_start = time.monotonic() - started
        assert text_of(await client.call_tool("e_echo", {"text": "hi"})) == "hi"
    methods = [r["method"] for r in logged(log)]
    assert methods.count("server/discover") == 1 and "initialize" in methods
    assert first_start < 12.0, f"the fallback took {first_start:.1f} s"
    print(f"\nsilent legacy upstream: tools listed {first_start:.2f} s after the client started (probe included)")
    log.unlink()
    started = time.monotonic()
    async with proxy.client() as client:
        await _tools(client)
        assert text_of(await client.call_tool("e_echo", {"text": "again"})) == "again"  # connected by now
        second_start = time.monotonic() - started
    methods = [r["method"] for r in logged(log)]
    assert "server/discover" not in methods and "initialize" in methods  # the remembered verdict
    print(f"silent legacy upstream, second start (remembered): {second_start:.2f} s")


async def test_the_second_start_adopts_the_remembered_modern_verdict(proxy, tmp_path):
    log = tmp_path / "up.jsonl"
    proxy.write({"e": era_upstream(log, "dual")})
    discovers = []
    for _ in range(2):
        async with proxy.client() as client:
            await _tools(client)
            assert text_of(await client.call_tool("e_echo", {"text": "x"})) == "x"
        assert {r["era"] for r in logged(log) if r["method"] == "tools/call"} == {"modern"}
        discovers.append(sum(r["method"] == "server/discover" for r in logged(log)))
        log.unlink()
    assert discovers[0] >= 1 and discovers[1] == 0, f"server/discover per start: {discovers}"


async def test_an_upgraded_upstream_with_a_stale_legacy_verdict_still_works(proxy, tmp_path):
    log = tmp_path / "up.jsonl"
    proxy.write({"e": era_upstream(log, "silent")})
    async with proxy.client() as client:
        await _tools(client)
    proxy.write({"e": era_upstream(log, "modern")})  # same command and arguments: same cache entry and verdict
    log.unlink()
    async with proxy.client() as client:
        await _tools(client)
        result = await client.call_tool("e_echo", {"text": "after the upgrade"})
        assert not result.is_error and text_of(result) == "after the upgrade"
    assert {r["era"] for r in logged(log) if r["method"] == "tools/call"} == {"modern"}


async def test_protocol_legacy_pins_the_handshake_era(proxy, tmp_path):
    log = tmp_path / "up.jsonl"
    proxy.write({"e": {**era_upstream(log, "dual"), "protocol": "legacy"}})
    async with proxy.client() as client:
        await _tools(client)
        assert text_of(await client.call_tool("e_echo", {"text": "x"})) == "x"
    methods = [r["method"] for r in logged(log)]
    assert "server/discover" not in methods and "initialize" in methods
