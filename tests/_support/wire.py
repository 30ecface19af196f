"""Talking to the real proxy process line by line, as a desktop client does over stdio."""

from __future__ import annotations

import json
import subprocess

from tests._support.proxy import PY, ProxyEnv


def initialize_line(version: str, rid: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-host", "version": "0"}}})


def spawn(proxy: ProxyEnv, *extra_args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([PY, *proxy.argv(), *extra_args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env or proxy.env(), text=True)


def converse(p: subprocess.Popen, messages: list[str], expect_ids: set, timeout: float = 30) -> list[dict]:
    """Send lines like a host (stdin stays open), read replies until every expected id is answered, then EOF."""
    import threading

    replies: list[dict] = []
    done = threading.Event()

    def read() -> None:
        for line in p.stdout:
            replies.append(json.loads(line))  # every stdout line must be JSON
            if expect_ids <= {m.get("id") for m in replies}:
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    p.stdin.write("\n".join(messages) + "\n")
    p.stdin.flush()
    assert done.wait(timeout), f"no reply to {expect_ids - {m.get('id') for m in replies}}"
    p.stdin.close()
    p.wait(timeout)
    return replies
