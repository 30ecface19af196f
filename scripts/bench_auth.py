#!/usr/bin/env python3
"""Benchmark: what per-user OAuth costs, against the sandbox (OAuth server, PagerDuty emulator, stand-in browser).

    uv run --extra test python scripts/bench_auth.py [--rounds 200]

Prints: the broker's access_token() with a valid token (the per-request cost), a due refresh (file lock,
token endpoint, file store write), a full sign-in (authorize, loopback redirect, code exchange, GET
/users/me, store), and the proxy's cold start to the first tools/list with a signed-in OAuth upstream
versus an API-key one. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ms(values: list[float]) -> str:
    p95 = sorted(values)[int(len(values) * 0.95) - 1]
    return f"p50 {statistics.median(values) * 1000:.3f} ms, p95 {p95 * 1000:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    from mcp_proxy.auth.broker import TokenBroker
    from mcp_proxy.config import SecretStore
    from mcp_proxy.config.load import parse_config
    from mcp_proxy.paths import resolve_paths
    from mcp_proxy.sandbox.asgi_thread import free_port, serve_in_thread
    from mcp_proxy.sandbox.browser import browser_command
    from mcp_proxy.sandbox.oauth_server import OAuthClient, OAuthServer, create_app
    from mcp_proxy.sandbox.pagerduty import create_app as pagerduty_app

    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    server = OAuthServer()
    server.add_client(OAuthClient("bench", (redirect,)))
    oauth = serve_in_thread(create_app(server))
    pd = serve_in_thread(pagerduty_app(bearer_validator=server.bearer_validator))
    home = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    table = {"kind": "pagerduty", "auth": "oauth", "client_id": "bench", "redirect_uri": redirect,
             "authorize_url": f"{oauth.url}/oauth/authorize", "token_url": f"{oauth.url}/oauth/token",
             "base_url": pd.url}
    config = parse_config({"user": {"email": "alice@example.com"}, "secrets": {"store": "file"},
                           "upstreams": {"pd": table}})
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(home)})
    store = SecretStore("file", paths.data_dir / "secrets.json")
    now = [time.time()]
    broker = TokenBroker.for_upstream(config.upstreams["pd"], paths, store, clock=lambda: now[0])

    sign_ins = []
    for _ in range(5):
        started = time.perf_counter()
        session = broker.begin_sign_in_blocking(lifetime=30)
        subprocess.run([sys.executable, "-m", "mcp_proxy.sandbox.browser", session.url], check=True)
        session.wait_blocking(20)
        session.close()
        sign_ins.append(time.perf_counter() - started)
    print(f"sign-in (listener, stand-in browser process, exchange, /users/me, store): {ms(sign_ins)}")

    async def cached() -> list[float]:
        await broker.access_token()
        out = []
        for _ in range(args.rounds * 50):
            t = time.perf_counter()
            await broker.access_token()
            out.append(time.perf_counter() - t)
        return out

    print(f"access_token() with a valid token: {ms(anyio.run(cached))}")

    async def refreshes() -> list[float]:
        out = []
        for _ in range(args.rounds):
            now[0] += 3500  # due
            t = time.perf_counter()
            await broker.access_token()
            out.append(time.perf_counter() - t)
        return out

    print(f"refresh when due (lock, re-read, token endpoint, store): {ms(anyio.run(refreshes))}")

    def cold_start(cfg_text: str, env: dict[str, str]) -> float:
        from mcp_proxy.sandbox.asgi_thread import free_port as _unused  # noqa: F401 - keep imports warm

        cfg = home / "bench.toml"
        cfg.write_text(cfg_text)

        async def once() -> float:
            from mcp import Client
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_proxy", "--config", str(cfg)],
                                           env=env)
            t = time.perf_counter()
            with open(os.devnull, "w") as devnull:
                async with Client(stdio_client(params, errlog=devnull), mode="legacy") as client:
                    await client.list_tools()
                    return time.perf_counter() - t

        return statistics.median(anyio.run(once) for _ in range(5))

    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    env.update({"MCP_ACCESS_PROXY_HOME": str(home), "BROWSER": browser_command(), "PD_KEY": "pd_sandbox_account_key"})
    base = '[user]\nemail = "alice@example.com"\n[secrets]\nstore = "file"\n[upstreams.pd]\nkind = "pagerduty"\n' \
           f'base_url = "{pd.url}"\n'
    oauth_cfg = base + "".join(f'{k} = "{v}"\n' for k, v in table.items() if k not in ("kind", "base_url"))
    key_cfg = base + 'api_key = "env:PD_KEY"\n'
    print(f"cold start to first tools/list: api_key {cold_start(key_cfg, env) * 1000:.0f} ms, "
          f"oauth (signed in) {cold_start(oauth_cfg, env) * 1000:.0f} ms (median of 5)")
    oauth.stop()
    pd.stop()


if __name__ == "__main__":
    main()
