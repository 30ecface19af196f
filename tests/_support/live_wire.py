"""One long-lived proxy process driven with raw bytes on stdin, as a hostile or careless client would send them:
every stdout line is collected (and must be JSON), with the time it arrived, so a test can ask what was answered
to which id, and how fast."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests._support.proxy import PY, ProxyEnv

INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientInfo": {"name": "modern", "version": "1"},
               "io.modelcontextprotocol/clientCapabilities": {}}


def line(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def request(rid: Any, method: str, params: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        body["params"] = params
    return line(body)


def tool_call(rid: Any, name: str, arguments: Any, modern: bool = False) -> bytes:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if modern:
        params["_meta"] = MODERN_META
    return request(rid, "tools/call", params)


def nested(depth: int) -> str:
    """A JSON text nested `depth` arrays deep: about 2 KB for a thousand levels."""
    return "[" * depth + "]" * depth


class LiveProxy:
    def __init__(self, proxy: ProxyEnv, stderr_path: Path | None = None) -> None:
        self._errlog = open(stderr_path or proxy.stderr, "ab")  # noqa: SIM115 - closed in close()
        self.p = subprocess.Popen([PY, *proxy.argv()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._errlog, env=proxy.env())
        self.replies: list[tuple[float, dict[str, Any]]] = []
        self.bad_lines: list[bytes] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            with self._cond:
                try:
                    self.replies.append((time.monotonic(), json.loads(raw)))
                except ValueError:
                    self.bad_lines.append(raw)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, data: bytes) -> float:
        """Write `data` (whole lines) and return the time just before it was written."""
        assert self.p.stdin is not None
        at = time.monotonic()
        self.p.stdin.write(data)
        self.p.stdin.flush()
        return at

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def answers(self, rid: Any) -> list[dict[str, Any]]:
        with self._cond:
            return [m for _, m in self.replies if "id" in m and m["id"] == rid and type(m["id"]) is type(rid)
                    and "method" not in m]

    def answered_at(self, rid: Any) -> float | None:
        with self._cond:
            for at, m in self.replies:
                if m.get("id") == rid and "method" not in m:
                    return at
        return None

    def answer(self, rid: Any, timeout: float = 30) -> dict[str, Any]:
        assert self.wait_for(lambda: bool(self.answers(rid)), timeout), f"no answer to {rid!r}: {self.replies[-5:]}"
        return self.answers(rid)[0]

    def null_id_answers(self) -> list[dict[str, Any]]:
        with self._cond:
            return [m for _, m in self.replies if "id" in m and m["id"] is None]

    def alive(self) -> bool:
        return self.p.poll() is None

    def handshake(self, version: str = "2025-11-25") -> None:
        self.send(request(0, "initialize", {"protocolVersion": version, "capabilities": {},
                                            "clientInfo": {"name": "hostile", "version": "0"}}) + INITIALIZED)
        self.answer(0)

    def close(self) -> int:
        if self.p.stdin is not None and not self.p.stdin.closed:
            with contextlib.suppress(OSError):
                self.p.stdin.close()
        try:
            code = self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            code = self.p.wait(5)
        self._errlog.close()
        return code
