"""The UptimeObserver preset through the real proxy process, against the emulator.

The key goes in exactly one header; keys without the `uo_` prefix and JWTs never leave the laptop; a
key the vendor refuses (revoked mid-session, or already at start) becomes the vendor's advice in the
call error, the upstream's status and log line, and doctor; the key never reaches stderr or a file.
"""

from __future__ import annotations

import subprocess
import time

import anyio
import pytest

from mcp_proxy.config import SecretStore, load_config
from mcp_proxy.paths import resolve_paths
from mcp_proxy.upstreams.health import check_upstreams
from tests._support.proxy import PY, text_of
from tests._support.uptimeobserver import JWT, KEY, NO_PREFIX, TOOLS, files_containing, uo_upstream

pytestmark = pytest.mark.anyio

VENDOR_ADVICE = ("revoked", "mistyped", "one header only", "'uo_' prefix", "JWTs are not accepted",
                 "environment variable UO_TEST_KEY")


async def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


async def doctor_upstream(proxy, monkeypatch, key: str) -> tuple[bool, str]:
    """doctor's check of the `uo` upstream (mcp_proxy.upstreams.health), in-process."""
    monkeypatch.setenv("UO_TEST_KEY", key)
    config = load_config(proxy.config)
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(proxy.home)})
    check = (await check_upstreams(config, paths, SecretStore("file", paths.data_dir / "secrets.json"), 10.0))["uo"]
    return check.ok, check.detail


def assert_no_key_anywhere(proxy, key: str, *texts: str) -> None:
    assert key not in proxy.stderr_text()
    assert files_containing(proxy.home, key) == []
    assert all(key not in t for t in texts)


@pytest.mark.parametrize(("style", "header"), [("x-api-key", "x-api-key"), ("bearer", "authorization")])
async def test_tools_and_calls_with_the_key_in_exactly_one_header(proxy, uo, style, header) -> None:
    proxy.write({"uo": uo_upstream(uo, api_key_header=style)})
    async with proxy.client(env=proxy.env(UO_TEST_KEY=KEY)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools if t.name.startswith("uo_")}
        assert set(tools) == {f"uo_{name}" for name in TOOLS}
        assert tools["uo_list_monitors"].annotations.read_only_hint is True
        assert tools["uo_pause_monitor"].annotations.read_only_hint is False
        assert tools["uo_get_monitor"].input_schema["required"] == ["monitor_id"]

        summary = await client.call_tool("uo_get_status_summary", {})
        assert not summary.is_error and summary.structured_content["monitors"]["down"] == 1
        assert "1 down" in text_of(summary)
        paused = await client.call_tool("uo_pause_monitor", {"monitor_id": "mon_api01"})
        assert paused.structured_content == {**uo.emulator.monitors["mon_api01"], "status": "paused"}
        listed = await client.call_tool("uo_list_monitors", {"status": "paused"})
        assert {m["id"] for m in listed.structured_content["monitors"]} == {"mon_api01", "mon_dns01"}
        incidents = await client.call_tool("uo_list_incidents", {"monitor_id": "mon_db01"})
        assert [i["id"] for i in incidents.structured_content["incidents"]] == ["inc_0001"]
        # The vendor's own tool errors pass through as they are.
        missing = await client.call_tool("uo_get_monitor", {"monitor_id": "mon_gone"})
        assert missing.is_error and "list_monitors" in text_of(missing)
        # Arguments that do not fit the schema are refused by the proxy, naming the argument, before forwarding.
        bad = await client.call_tool("uo_get_monitor", {"monitor_id": 7})
        assert bad.is_error and "monitor_id" in text_of(bad)
    assert ("get_monitor", {"monitor_id": 7}) not in uo.emulator.calls
    assert [name for name, _ in uo.emulator.calls] == [
        "get_status_summary", "pause_monitor", "list_monitors", "list_incidents", "get_monitor"]
    assert uo.emulator.log and {e["auth"] for e in uo.emulator.log} == {"ok"}
    assert {tuple(e["key_headers"]) for e in uo.emulator.log} == {(header,)}  # exactly one, every request
    assert_no_key_anywhere(proxy, KEY)


@pytest.mark.parametrize(("key", "advice"), [
    (NO_PREFIX, "UptimeObserver MCP keys start with 'uo_'"),
    (JWT, "looks like a web-app login token (JWT)"),
])
async def test_keys_of_the_wrong_shape_are_refused_before_any_request(proxy, uo, monkeypatch, key, advice) -> None:
    proxy.write({"uo": uo_upstream(uo)})
    async with proxy.client(env=proxy.env(UO_TEST_KEY=key)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not any(n.startswith("uo_") for n in names)
        await wait_for(lambda: advice in proxy.stderr_text(), "the advice in the log")
    assert "upstreams.uo.api_key" in proxy.stderr_text() and "Integrations > MCP" in proxy.stderr_text()
    ok, detail = await doctor_upstream(proxy, monkeypatch, key)
    assert not ok and advice in detail
    assert uo.emulator.log == []  # the key never left the laptop
    assert_no_key_anywhere(proxy, key, detail)


async def test_a_revoked_key_becomes_the_vendors_advice(proxy, uo, monkeypatch) -> None:
    proxy.write({"uo": uo_upstream(uo, connect_timeout=60)})
    env = proxy.env(UO_TEST_KEY=KEY)
    async with proxy.client(env=env) as client:
        assert not (await client.call_tool("uo_get_status_summary", {})).is_error
        uo.revoke(KEY)
        refused = await client.call_tool("uo_list_monitors", {})
        assert refused.is_error
        for part in VENDOR_ADVICE:
            assert part in text_of(refused), part
        assert "HTTP 401" in text_of(refused)
        # Later calls fail at once with the same advice (a reconnect cannot fix a revoked key).
        started = time.monotonic()
        again = await client.call_tool("uo_get_monitor", {"monitor_id": "mon_api01"})
        assert again.is_error and "revoked, rotated or mistyped" in text_of(again)
        assert time.monotonic() - started < 30  # far less than connect_timeout (60 s): no waiting for a reconnect
        await wait_for(lambda: "UptimeObserver refused the key (HTTP 401)" in proxy.stderr_text(), "the log line")
    assert [name for name, _ in uo.emulator.calls] == ["get_status_summary"]

    ok, detail = await doctor_upstream(proxy, monkeypatch, KEY)
    assert not ok and all(part in detail for part in VENDOR_ADVICE)

    # A fresh start with the revoked key: the cached tool list is offered, and a call gets the advice at once.
    async with proxy.client(env=env) as client:
        assert "uo_list_monitors" in {t.name for t in (await client.list_tools()).tools}
        started = time.monotonic()
        result = await client.call_tool("uo_list_monitors", {})
        assert result.is_error and all(part in text_of(result) for part in VENDOR_ADVICE)
        assert time.monotonic() - started < 30

    doctor = subprocess.run([PY, "-m", "mcp_proxy", "--config", str(proxy.config), "doctor", "--timeout", "10"],
                            env=env, capture_output=True, text=True, timeout=120)
    line = next(ln for ln in doctor.stdout.splitlines() if "upstream uo" in ln)
    assert doctor.returncode == 1 and line.startswith("[FAIL]") and "revoked, rotated or mistyped" in line
    assert_no_key_anywhere(proxy, KEY, doctor.stdout, doctor.stderr)


async def test_a_new_key_works_after_the_old_one_was_revoked(proxy, uo) -> None:
    """Rotation: the key was revoked, the user stores a new one and restarts the client."""
    from tests._support.uptimeobserver import OTHER_KEY

    proxy.write({"uo": uo_upstream(uo)})
    uo.revoke(KEY)
    async with proxy.client(env=proxy.env(UO_TEST_KEY=KEY)) as client:
        await wait_for(lambda: "UptimeObserver refused the key" in proxy.stderr_text(), "the refusal")
        assert not any(t.name.startswith("uo_") for t in (await client.list_tools()).tools)
    async with proxy.client(env=proxy.env(UO_TEST_KEY=OTHER_KEY)) as client:
        result = await client.call_tool("uo_get_status_summary", {})
        assert not result.is_error and result.structured_content["monitors"]["total"] == 5
    assert_no_key_anywhere(proxy, KEY)
    assert_no_key_anywhere(proxy, OTHER_KEY)
