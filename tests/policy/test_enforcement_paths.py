"""The policy holds on both entry paths of a call: the fast path (a plain tools/call after the handshake)
and the SDK path (a call that asks for progress). A check dropped from either path fails here."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import stdio_upstream
from tests._support.wire import initialize_line as _init
from tests._support.wire import spawn as _spawn

INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


def _call(rid: int, name: str, arguments: dict, progress: str | None = None) -> str:
    params: dict = {"name": name, "arguments": arguments}
    if progress is not None:
        params["_meta"] = {"progressToken": progress}
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})


def _session(p: subprocess.Popen, handshake: list[str], calls: list[str], timeout: float = 30) -> list[dict]:
    """The handshake first, answered (so the fast path is open), then the calls; every reply."""
    assert p.stdin is not None and p.stdout is not None
    lines: queue.Queue[dict] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(json.loads(line)) for line in p.stdout], daemon=True).start()

    def send_and_wait(messages: list[str]) -> list[dict]:
        p.stdin.write("\n".join(messages) + "\n")
        p.stdin.flush()
        wanted = {json.loads(m)["id"] for m in messages if "id" in json.loads(m)}
        got: list[dict] = []
        while wanted - {m.get("id") for m in got}:
            got.append(lines.get(timeout=timeout))
        return got

    replies = send_and_wait([*handshake, json.dumps({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})])
    replies += send_and_wait(calls)
    p.stdin.close()
    p.wait(timeout)
    return replies


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_a_tool_the_policy_refuses_is_refused_on_both_paths_and_recorded(proxy, tmp_path, version):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.progress": {"state": "disabled"},
    })))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    p = _spawn(proxy)
    replies = _session(p, [_init(version), INITIALIZED], [
        _call(2, "f_progress", {"steps": 1}),  # fast path
        _call(3, "f_progress", {"steps": 1}, progress="t-3"),  # SDK path
        _call(4, "f_add", {"a": 1, "b": 2}),  # pending (not in the policy), fast path
        _call(5, "f_add", {"a": 1, "b": 2}, progress="t-5"),  # pending, SDK path
        _call(6, "f_echo", {"text": "hi"}, progress="t-6"),  # approved, SDK path
        _call(7, "f_echo", {"text": 5}, progress="t-7"),  # approved, invalid arguments, SDK path
    ])
    assert p.returncode == 0
    by_id = {m["id"]: m["result"] for m in replies if "id" in m}
    for rid in (2, 3, 4, 5, 7):
        assert by_id[rid]["isError"] is True, rid
    assert by_id[2] == by_id[3], "the two paths answer a disabled tool alike"
    assert by_id[4] == by_id[5], "the two paths answer a pending tool alike"
    assert "disabled" in by_id[2]["content"][0]["text"] and "pending" in by_id[4]["content"][0]["text"]
    assert by_id[6]["content"] == [{"type": "text", "text": "hi"}]
    assert not [m for m in replies if m.get("method") == "notifications/progress"], "nothing ran upstream"
    records = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]
    denied = sorted(r["jsonrpc.request.id"] for r in records if r["event_name"] == "mcp.tool.denied")
    assert denied == ["2", "3", "4", "5"]
    calls = {r["jsonrpc.request.id"]: r for r in records if r["event_name"] == "mcp.tool.call"}
    assert calls["6"]["outcome"] == "ok" and calls["7"]["error.type"] == "invalid_arguments"
