"""Driving the real `mcp-access-proxy` process over stdio: configs, its environment and an MCP client, and the
fake upstream (tests/gateway/fake_upstream.py) over stdio or Streamable HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

FAKE = str(Path(__file__).parent.parent / "gateway" / "fake_upstream.py")
PY = sys.executable


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + " }"
    raise TypeError(v)


def render_config(upstreams: dict[str, dict[str, Any]], extra: str = "", email: str = "alice@example.com") -> str:
    # `extra` comes first so that top-level keys stay top-level; tables in it are fine anywhere.
    lines = [extra, "[user]", f'email = "{email}"', "[secrets]", 'store = "file"']
    for key, table in upstreams.items():
        lines.append(f"[upstreams.{key}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def stdio_upstream(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "mcp", "command": PY, "args": [FAKE, *flags], **extra}


class ProxyEnv:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.config = tmp_path / "config.toml"
        self.stderr = tmp_path / "proxy-stderr.log"

    def write(self, upstreams: dict[str, dict[str, Any]], extra: str = "", **kw: Any) -> Path:
        self.config.write_text(render_config(upstreams, extra, **kw), encoding="utf-8")
        return self.config

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
        env.update({"MCP_ACCESS_PROXY_HOME": str(self.home), "PYTHONUNBUFFERED": "1", **extra})
        return env

    def argv(self) -> list[str]:
        return ["-m", "mcp_proxy", "--config", str(self.config), "--log-level", "debug"]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """A one-off command of the proxy (login, logout, whoami, ...) on this config, in this home."""
        return subprocess.run([PY, "-m", "mcp_proxy", "--config", str(self.config), *args], env=env or self.env(),
                              capture_output=True, text=True, timeout=timeout)

    @asynccontextmanager
    async def client(self, *, env: dict[str, str] | None = None, elicitation_callback: Any = None,
                     message_handler: Any = None, client_name: str = "pytest-client", mode: str = "legacy"):
        """An SDK client of the real proxy process. `mode="auto"` probes `server/discover` first, as a current
        client does, and so speaks the stateless 2026-07-28 era; `"legacy"` speaks the handshake era."""
        import mcp_types as types
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=PY, args=self.argv(), env=env or self.env())
        with open(self.stderr, "a", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode=mode, read_timeout_seconds=30,
                              elicitation_callback=elicitation_callback, message_handler=message_handler,
                              client_info=types.Implementation(name=client_name, version="1.0"),
                              cache=None) as client:
                yield client

    def stderr_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8") if self.stderr.exists() else ""


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def free_port_http_upstream(*flags: str):
    """Start the fake upstream as a Streamable HTTP server on a free loopback port; wait until it listens."""
    import socket
    import subprocess
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([PY, FAKE, "--http", str(port), *flags], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return port, process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the HTTP upstream did not start")
