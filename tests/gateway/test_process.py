"""The process as a desktop client sees it: stdout hygiene, protocol eras, shutdown, bad configs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests._support.proxy import PY, stdio_upstream
from tests._support.wire import converse
from tests._support.wire import initialize_line as _init
from tests._support.wire import spawn as _spawn


def _lines(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        out.append(json.loads(line))  # every stdout line must be JSON
    return out


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2099-01-01"])
def test_every_handshake_version_and_only_jsonrpc_on_stdout(proxy, version):
    proxy.write({"one": stdio_upstream()})
    p = _spawn(proxy)
    messages = [_init(version), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
                json.dumps({"jsonrpc": "2.0", "id": 3, "method": "resources/list"}),
                "this is not json", json.dumps({"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})]
    replies = converse(p, messages, {1, 2, 3, 4})
    assert p.returncode == 0
    assert all(m.get("jsonrpc") == "2.0" for m in replies)
    by_id = {m["id"]: m for m in replies if "id" in m}
    expected = version if version != "2099-01-01" else "2025-11-25"
    assert by_id[1]["result"]["protocolVersion"] == expected
    assert by_id[1]["result"]["capabilities"]["tools"]["listChanged"] is True
    assert "tools" in by_id[2]["result"]
    assert by_id[4]["error"]["code"] == -32601


def test_modern_era_client_without_handshake(proxy):
    proxy.write({"one": stdio_upstream()})
    p = _spawn(proxy)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "modern", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    msgs = [{"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}}]
    replies = {m["id"]: m for m in converse(p, [json.dumps(m) for m in msgs], {1, 2}) if "id" in m}
    assert "result" in replies[1], replies
    assert "tools" in replies[2]["result"], replies


def _with_a_stubborn_child(proxy, tmp_path, *, initialize: bool = True) -> tuple[subprocess.Popen, int]:
    """The proxy with one upstream that ignores EOF and SIGTERM, and that child's pid; with `initialize`, once
    the handshake is done and the upstream has had time to connect."""
    pidfile = tmp_path / "child.pid"
    proxy.write({"stubborn": stdio_upstream("--stubborn", "--pidfile", str(pidfile))})
    p = _spawn(proxy)
    if initialize:
        p.stdin.write(_init("2025-06-18") + "\n")
        p.stdin.flush()
        json.loads(p.stdout.readline())
    deadline = time.monotonic() + 20
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if initialize:
        time.sleep(0.5)  # let the upstream finish connecting
    return p, int(pidfile.read_text())


def _gone_with_the_proxy(p: subprocess.Popen, child: int) -> None:
    p.wait(timeout=10)
    assert p.returncode == 0
    time.sleep(0.2)
    assert not _alive(child), "the upstream process outlived the proxy"


def test_sigterm_with_an_upstream_that_ignores_eof_and_sigterm(proxy, tmp_path):
    p, child = _with_a_stubborn_child(proxy, tmp_path)
    started = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _gone_with_the_proxy(p, child)
    elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"took {elapsed:.1f} s to exit"


def _alive(pid: int) -> bool:
    """True for a live process; a zombie (dead, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def test_stdin_eof_with_an_upstream_that_ignores_eof_and_sigterm(proxy, tmp_path):
    # The exit on EOF is quick (scripts/bench_gateway.py measures it), but never by leaving a child behind.
    p, child = _with_a_stubborn_child(proxy, tmp_path)
    p.stdin.close()
    _gone_with_the_proxy(p, child)


def test_sigterm_while_starting_leaves_no_child_started_early(proxy, tmp_path):
    # Children start while the proxy loads the SDK (upstreams/children.py): a signal at any moment of that
    # still takes them down with it.
    p, child = _with_a_stubborn_child(proxy, tmp_path, initialize=False)
    p.send_signal(signal.SIGTERM)
    _gone_with_the_proxy(p, child)


def test_the_child_started_early_is_the_one_that_serves(proxy, tmp_path):
    starts = tmp_path / "starts"
    proxy.write({"one": stdio_upstream("--startfile", str(starts))})
    replies = converse(_spawn(proxy), [
        _init("2025-11-25"), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "one_echo", "arguments": {"text": "hi"}}})], {1, 2, 3})
    answer = next(r for r in replies if r.get("id") == 3)
    assert answer["result"]["content"][0]["text"] == "hi"
    assert len(starts.read_text().splitlines()) == 1, "one child: started early and taken over, not twice"


def test_stdin_eof_is_a_clean_exit(proxy):
    proxy.write({"one": stdio_upstream()})
    p = _spawn(proxy)
    out, err = p.communicate(_init("2025-06-18") + "\n", timeout=20)
    assert p.returncode == 0
    assert len(_lines(out)) == 1


BAD_CONFIGS = [
    ("[upstreams.pd]\nkind = 'pagerduty'\napi_key = 'abcdef123456'\n", "upstreams.pd.api_key", "secret set"),
    ("[upstreams.og]\nkind = 'opsgenie'\nregion = 'mars'\napi_key = 'env:X'\n", "upstreams.og.region", "us, eu"),
    ("[upstreams.Bad_Key]\nkind = 'mcp'\ncommand = '/bin/true'\n", "upstreams.Bad_Key", "rename"),
    ("[upstreams.x]\nkind = 'mcp'\n", "upstreams.x", "exactly one of command"),
    ("[upstreams.x]\nkind = 'nope'\n", "upstreams.x.kind", "must be one of"),
    ("[audit]\ncollector = 'http://collector.example.com:4318'\n", "audit.collector", "https"),
    ("[policy]\nsorce = 'x'\n", "policy.sorce", "did you mean 'source'"),
    ("[upstreams.m]\nkind = 'mcp'\nurl = 'https://x.example/mcp'\nheaders = { Authorization = 'Bearer abc' }\n",
     "upstreams.m.headers.Authorization", "plain value"),
    ("this is = = not toml", "invalid TOML", "fix the syntax"),
]


@pytest.mark.parametrize("text,where,fix", BAD_CONFIGS)
def test_bad_config_exits_2_with_key_path_and_fix_and_nothing_on_stdout(proxy, text, where, fix):
    proxy.config.write_text(text)
    p = _spawn(proxy)
    out, err = p.communicate(_init("2025-06-18") + "\n", timeout=20)
    assert p.returncode == 2
    assert out == ""
    assert where in err and fix in err
    assert "abcdef123456" not in err and "Bearer abc" not in err


def test_missing_config_file_says_how_to_create_one(proxy):
    p = _spawn(proxy)
    out, err = p.communicate("", timeout=20)
    assert p.returncode == 2 and out == ""
    assert "no configuration file" in err and "--config" in err


def test_two_proxies_on_one_home_at_once(proxy):
    proxy.write({"one": stdio_upstream()})
    procs = [_spawn(proxy) for _ in range(2)]
    msgs = [_init("2025-06-18"), json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "one_echo", "arguments": {"text": "twin"}}})]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: converse(p, msgs, {1, 2}), procs))
    for p, replies in zip(procs, results, strict=True):
        assert p.returncode == 0
        by_id = {m["id"]: m for m in replies if "id" in m}
        assert by_id[2]["result"]["content"][0]["text"] == "twin"


def test_python_dash_m_and_help(tmp_path):
    out = subprocess.run([PY, "-m", "mcp_proxy", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "serve" in out.stdout
    version = subprocess.run([PY, "-m", "mcp_proxy", "--version"], capture_output=True, text=True, timeout=30)
    assert "mcp-access-proxy" in version.stdout


def test_serve_logs_to_stderr_and_a_log_file_at_the_chosen_level(proxy):
    proxy.write({"one": stdio_upstream()})
    log_file = proxy.home / "logs" / "mcp-access-proxy.log"
    for level in ("info", "warning"):
        p = subprocess.Popen([PY, "-m", "mcp_proxy", "--config", str(proxy.config), "--log-level", level],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=proxy.env(),
                             text=True)
        converse(p, [_init("2025-11-25"), json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})], {1, 2})
        stderr = p.stderr.read()
        start_line = f"serving; config {proxy.config}; upstreams one (mcp); UNGOVERNED"
        if level == "info":
            assert start_line in stderr and start_line in log_file.read_text()
            assert "DEBUG" not in log_file.read_text()
        else:
            assert start_line not in stderr
            assert log_file.read_text().count(start_line) == 1  # nothing at info level was added
