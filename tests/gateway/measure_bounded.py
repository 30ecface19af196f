"""Measure what a big upstream answer costs the real proxy: wall time and the proxy's peak memory.

    uv run --extra test python -m tests.gateway.measure_bounded result 80      # an 80 MB tools/call result
    uv run --extra test python -m tests.gateway.measure_bounded list 100       # a 100 MB tools/list
    ... --http                       # the result from the Streamable HTTP upstream instead of stdio
    ... --limit MIB                  # upstreams.big.max_message_bytes (default: the proxy's default)

The proxy's peak RSS is its VmHWM (Linux /proc), read just before the client closes it; the upstream
child is not counted.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import anyio

from tests._support.bounded import BIG, MIB, big_http
from tests._support.proxy import PY, ProxyEnv, text_of


async def raw_call(env: ProxyEnv, size: int, budget: float) -> tuple[str, float, float]:
    """The call through a second proxy process driven over plain pipes with a linear line reader: the SDK's
    own stdio client (which the desktop-client side of this script uses) is itself quadratic in a line's
    length, so timing through it would measure the client. (outcome, seconds, this proxy's peak MiB)"""
    import asyncio
    import json

    proc = await asyncio.create_subprocess_exec(PY, *env.argv(), stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                                                env=env.env(), limit=512 * MIB)
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict) -> None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")  # type: ignore[union-attr]

    send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                       "clientInfo": {"name": "measure", "version": "1"}}})
    await proc.stdout.readline()
    send({"method": "notifications/initialized"})
    send({"id": 2, "method": "tools/list"})
    await proc.stdout.readline()
    started = time.monotonic()
    send({"id": 3, "method": "tools/call", "params": {"name": "big_big", "arguments": {"bytes": size}}})
    line = await asyncio.wait_for(proc.stdout.readline(), budget + 30)
    elapsed = time.monotonic() - started
    hwm = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{proc.pid}/status").read_text())
    proc.stdin.close()
    await proc.wait()
    result = json.loads(line).get("result", {})
    text = "".join(c.get("text", "") for c in result.get("content", []))
    outcome = f"error: {text[:160]}" if result.get("isError") else f"ok, {len(text)} bytes"
    return outcome, elapsed, int(hwm.group(1)) / 1024 if hwm else float("nan")


async def measure(kind: str, megabytes: int, http: bool, limit: int | None, budget: float,
                  raw: bool = False) -> None:
    import mcp_types as types
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.shared.exceptions import MCPError

    size = megabytes * 1000 * 1000
    with tempfile.TemporaryDirectory() as tmp:
        env = ProxyEnv(Path(tmp))
        extra = {"max_message_bytes": limit * MIB} if limit else {}
        upstream_env = {"BIG_LIST_BYTES": str(size)} if kind == "list" else {}

        async def run(table: dict) -> None:
            # The call gets the whole budget; the list keeps the default connect_timeout (30 s), as a user would.
            env.write({"big": {**table, **extra, **({"call_timeout": budget} if kind == "result" else {})}})
            params = StdioServerParameters(command=PY, args=env.argv(), env=env.env())
            started = time.monotonic()
            outcome, raw_peak = "?", float("nan")
            with open(env.stderr, "a") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=budget + 30,
                                  client_info=types.Implementation(name="measure", version="1"), cache=None) as c:
                    if kind == "result" and raw:
                        started = time.monotonic()
                        outcome, elapsed, raw_peak = await raw_call(env, size, budget)
                    elif kind == "result":
                        started = time.monotonic()
                        try:
                            result = await c.call_tool("big_big", {"bytes": size})
                        except MCPError as exc:  # the proxy did not answer in time either
                            outcome = f"no answer: {exc.error.message}"
                        else:
                            text = text_of(result)
                            outcome = f"error: {text[:160]}" if result.is_error else f"ok, {len(text)} bytes"
                    else:
                        with anyio.move_on_after(budget):
                            while True:
                                log = env.stderr_text()
                                m = re.search(r"upstream big: (connected, \d+ tools|.*larger than[^;]*)", log)
                                if m:
                                    outcome = m.group(1)
                                    break
                                await anyio.sleep(0.05)
                        if outcome == "?":
                            attempts = env.stderr_text().count("upstream big: ")
                            outcome = f"nothing within {budget:g} s ({attempts} log lines about it)"
                    if not (kind == "result" and raw):
                        elapsed = time.monotonic() - started
                    peak = raw_peak if kind == "result" and raw else peak_rss_mib(str(env.config))
            print(f"{kind} {megabytes} MB via {'http' if http else 'stdio'}, limit {limit or 'default'}: "
                  f"{elapsed:.2f} s, proxy peak RSS {peak:.0f} MiB -> {outcome}")

        if http:
            with big_http(env=env.env(**upstream_env)) as url:
                await run({"kind": "mcp", "url": url})
        else:
            await run({"kind": "mcp", "command": PY, "args": [BIG], "env": upstream_env})


def peak_rss_mib(config: str) -> float:
    """VmHWM of the proxy process started with this config file."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"mcp_proxy" in argv and config.encode() in argv:
                hwm = re.search(r"VmHWM:\s+(\d+) kB", (entry / "status").read_text())
                return int(hwm.group(1)) / 1024 if hwm else float("nan")
        except OSError:
            continue
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=("result", "list"))
    p.add_argument("megabytes", type=int)
    p.add_argument("--http", action="store_true")
    p.add_argument("--limit", type=int, help="max_message_bytes in MiB")
    p.add_argument("--budget", type=float, default=90.0, help="seconds to wait")
    p.add_argument("--raw", action="store_true", help="time a result through a plain-pipe client (see raw_call)")
    args = p.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("needs Linux /proc for the peak memory")
    anyio.run(measure, args.kind, args.megabytes, args.http, args.limit, args.budget, args.raw)


if __name__ == "__main__":
    main()
