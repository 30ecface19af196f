"""Conformance against an implementation we did not write: the official TypeScript MCP client
(`@modelcontextprotocol/client`, pinned in tests/conformance/ts/package-lock.json; `.ci/run` installs it
with `npm ci`) drives the real proxy in both protocol eras: list, call, progress, cancellation, a denied
call and invalid arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import PY, stdio_upstream

HERE = Path(__file__).parent / "ts"
NODE = shutil.which("node")


def _skip_reason() -> str | None:
    if NODE is None:
        return "node is not installed; the TypeScript client cannot run (CI installs it)"
    if not (HERE / "node_modules" / "@modelcontextprotocol" / "client").is_dir():
        return "the TypeScript client is not installed: run `npm ci --prefix tests/conformance/ts`"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.mark.parametrize("mode, era", [("auto", "modern"), ("legacy", "legacy")])
def test_the_typescript_client_in_both_eras(proxy, tmp_path, mode, era):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.progress": {"state": "approved", "class": "read"},
        "f.slow": {"state": "approved", "class": "read"},
    })))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    assert NODE is not None
    done = subprocess.run([NODE, str(HERE / "client.mjs"), mode, PY, *proxy.argv()], env=proxy.env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["era"] == era
    assert {"f_echo", "f_progress", "f_slow", "proxy_request_access"} <= set(seen["tools"])
    assert "f_add" not in seen["tools"]
    assert seen["echo"]["content"] == [{"type": "text", "text": "hi"}] and not seen["echo"].get("isError")
    # The proxy sends every progress notification before the result (tests/gateway/test_progress_order.py);
    # this client hands them to the callback asynchronously and drops those still queued when the result
    # is handled, so it may see fewer than all three.
    assert seen["progress"]["content"][0]["text"] == "done"
    assert seen["steps"] and seen["steps"] == [1, 2, 3][: len(seen["steps"])]
    assert seen["denied"]["isError"] and "pending review" in seen["denied"]["content"][0]["text"]
    assert seen["invalid"]["isError"] and "argument 'text'" in seen["invalid"]["content"][0]["text"]
    assert seen["cancelled"] is True
    assert seen["after_cancel"]["content"][0]["text"] == "still here"
    outcomes = [(r["event_name"], r.get("outcome")) for r in spool_records(home_paths(proxy.home))
                if r["event_name"] in ("mcp.tool.call", "mcp.tool.denied")]
    assert ("mcp.tool.call", "cancelled") in outcomes and ("mcp.tool.denied", None) in outcomes
