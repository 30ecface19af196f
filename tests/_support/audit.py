"""The audit tests' helpers: spools in tmp and in-process writers on them (`Spool`, `call`, `dead_writer`),
reading a spool back, waiting for a condition, and the real proxy process over raw JSON-RPC (`RawProxy`)
with the fake tools upstream (tests/audit/fake_tools.py)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from mcp_proxy.audit import AuditContext, AuditLog
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.reader import iter_lines
from mcp_proxy.config import AuditConfig
from mcp_proxy.paths import Paths
from tests._support.proxy import PY, ProxyEnv, toml_value

FAKE_TOOLS = str(Path(__file__).parent.parent / "audit" / "fake_tools.py")


def fake_upstream(**extra: Any) -> dict[str, Any]:
    return {"kind": "mcp", "command": PY, "args": [FAKE_TOOLS], **extra}


def audit_toml(**keys: Any) -> str:
    lines = ["[audit]"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def home_paths(home: Path) -> Paths:
    return Paths(home, home / "data", home / "cache", home / "logs")


def spool_records(paths: Paths) -> list[dict[str, Any]]:
    out = []
    for seg in Layout(paths).segments():
        out += [json.loads(line.raw) for line in iter_lines(seg.path)]
    return out


def spool_bytes(paths: Paths) -> bytes:
    return b"".join(seg.path.read_bytes() for seg in Layout(paths).segments())


async def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


def wait_sync(predicate: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@dataclass
class Spool:
    """In-process writers on one spool, with a clock the test controls."""

    paths: Paths
    logs: list[AuditLog] = field(default_factory=list)
    now: float = 1_800_000_000.0

    def clock(self) -> float:
        return self.now

    def config(self, **kw: Any) -> AuditConfig:
        return AuditConfig(**kw)

    def open(self, cfg: AuditConfig | None = None, instance: str = "inst1", secrets: list[str] | None = None,
             **ctx: Any) -> AuditLog:
        context = AuditContext(proxy_version="0.1.0", instance_id=instance, host="laptop", user="alice@example.com",
                               governed=ctx.pop("governed", True), **ctx)
        log = AuditLog.open(self.paths, cfg or AuditConfig(), context,
                            secret_values=(lambda: secrets) if secrets is not None else None)
        self.logs.append(log)
        return log

    def records(self) -> list[dict[str, Any]]:
        return spool_records(self.paths)

    def close(self) -> None:
        for log in self.logs:
            log.close()


def call(log: AuditLog, n: int, event: str = "mcp.tool.call", **fields: Any) -> list[dict[str, Any]]:
    base = {"mcp.method.name": "tools/call", "gen_ai.tool.name": "fake_echo", "upstream": "fake",
            "upstream.tool": "echo", "outcome": "ok", "duration_ms": 1.0}
    return [log.append_nowait(event, {**base, "arguments": {"text": f"call {i}"}, **fields}) for i in range(n)]


def dead_writer(spool: Spool, instance: str, n: int, tail: bytes) -> tuple[list[dict[str, Any]], Any]:
    """A writer that made `n` records, exited, and left `tail` at the end of its one segment (a torn or
    damaged line). Returns the records and the segment."""
    log = spool.open(instance=instance)
    written = call(log, n)
    log.close()
    (seg,) = Layout(spool.paths).segments()
    with open(seg.path, "ab") as fh:
        fh.write(tail)
    return written, seg


# -- the real proxy over raw JSON-RPC (for kill -9: we need the pid) ------------------------------
class RawProxy:
    """The proxy process driven with raw JSON-RPC lines on stdin/stdout."""

    def __init__(self, env: ProxyEnv, extra_env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen([PY, *env.argv()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(env.stderr, "a"),  # noqa: SIM115 (the process owns it)
                                  env=env.env(**(extra_env or {})), text=True)
        self._replies: dict[int, dict] = {}
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self._id = 0

    def _read(self) -> None:
        for line in self.p.stdout:
            msg = json.loads(line)
            if "id" in msg:
                with self._cv:
                    self._replies[msg["id"]] = msg
                    self._cv.notify_all()

    def request(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self._id += 1
        rid = self._id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        with self._cv:
            assert self._cv.wait_for(lambda: rid in self._replies, timeout), f"no reply to {method}"
            return self._replies.pop(rid)

    def send(self, msg: dict) -> None:
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()

    def start(self) -> RawProxy:
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "raw-client", "version": "2.0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.request("tools/list")
        return self

    def call(self, name: str, arguments: dict) -> dict:
        return self.request("tools/call", {"name": name, "arguments": arguments})

    def kill9(self) -> None:
        os.kill(self.p.pid, 9)
        self.p.wait(10)

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(15)
