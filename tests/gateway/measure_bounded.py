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


async def measure(kind: str, megabytes: int, http: bool, limit: int | None, budget: float) -> None:
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
            outcome = "?"
            with open(env.stderr, "a") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode="legacy", read_timeout_seconds=budget + 30,
                                  client_info=types.Implementation(name="measure", version="1"), cache=None) as c:
                    if kind == "result":
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
                    elapsed = time.monotonic() - started
                    peak = peak_rss_mib(str(env.config))
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
    args = p.parse_args()
    if not Path("/proc/self/status").exists():
        sys.exit("needs Linux /proc for the peak memory")
    anyio.run(measure, args.kind, args.megabytes, args.http, args.limit, args.budget)


if __name__ == "__main__":
    main()
