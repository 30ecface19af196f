#!/usr/bin/env python3
"""Benchmark: the proxy against a direct connection to the same upstream, in one run, interleaved.

    uv run --extra test python scripts/bench_gateway.py [--calls 1000] [--rounds 5] [--section all|start|gateway|audit]
        [--baseline CHECKOUT]

Prints each measure for "direct" (a client -> fake upstream over stdio) and "proxy"
(the client -> mcp-access-proxy -> the same upstream), and the ratio or difference.
Run by hand, not in CI. Targets (issue 18): cold start to the first tools/list <= 1.0x
direct with an empty cache and <= 0.5x with a warm one; exit <= 100 ms after stdin
closes; p50 overhead <= +0.3 ms and >= 0.95x direct's calls/s at 16 and 64 in flight
(stdio and Streamable HTTP upstreams);
proxy RSS <= 60 MiB with 4 upstreams. Start-up and exit are measured over raw pipes, as
a desktop client sees them; calls, lists and memory through the official SDK client.
`scripts/bench_tool_list.py` measures the size of the tool list.

The audit section (issue 6) runs three proxies side by side, interleaved: one whose audit
log is switched off (a no-op append patched in by this script, not a setting the proxy has),
one with `durability = "group"` and one with `durability = "fsync"`, and prints what the
audit adds to a call (p50, p99) and the calls/s each sustains. Target: <= +0.3 ms p50 with
group commit. The spool lives under the system temp dir: run it on a real disk (not tmpfs)
for meaningful fsync numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
FAKE = str(ROOT / "tests" / "gateway" / "fake_upstream.py")
sys.path.insert(0, str(ROOT))  # for tests._support (starting the fake upstream over HTTP)
RELAY = str(ROOT / "scripts" / "relay_floor.py")
PY = sys.executable


def _config(home: Path, upstreams: int, tools: int) -> Path:
    cfg = home / "config.toml"
    lines = ['log_level = "warning"', '[user]', 'email = "bench@example.com"']
    for i in range(upstreams):
        lines += [f"[upstreams.u{i}]", 'kind = "mcp"', f'command = "{PY}"', f'args = ["{FAKE}", "--tools", "{tools}"]']
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@asynccontextmanager
async def connect(argv: list[str], env: dict[str, str]) -> AsyncIterator[Client]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=PY, args=argv, env=env)
    with open(os.devnull, "w") as devnull:
        async with Client(stdio_client(params, errlog=devnull), mode="legacy", cache=None) as client:
            yield client


def targets(home: Path, upstreams: int = 1, tools: int = 0) -> dict[str, list[str]]:
    """The interpreter arguments of each way to reach the fake upstream (name_for: the tool names each sees)."""
    cfg = _config(home, upstreams, tools)
    return {
        "direct": [FAKE, "--tools", str(tools)],
        "relay": [RELAY, PY, FAKE, "--tools", str(tools)],
        "proxy": ["-m", "mcp_proxy", "--config", str(cfg)],
    }


async def http_rows(args: argparse.Namespace, home: Path, env: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """The same echo calls to a Streamable HTTP upstream (the fake upstream with --http): direct (the SDK
    client over HTTP) and through the proxy, interleaved; the proxy's CPU per call."""
    from mcp import Client

    from tests._support.proxy import free_port_http_upstream

    home.mkdir(parents=True, exist_ok=True)
    port, server = free_port_http_upstream()
    url = f"http://127.0.0.1:{port}/mcp"
    cfg = home / "config.toml"
    cfg.write_text(f'log_level = "warning"\n[user]\nemail = "bench@example.com"\n'
                   f'[upstreams.u0]\nkind = "mcp"\nurl = "{url}"\n')
    try:
        async with Client(url, mode="legacy", cache=None) as direct, \
                connect(["-m", "mcp_proxy", "--config", str(cfg)], env) as proxy:
            clients = {"direct": direct, "proxy": proxy}
            lat, cpu, rates = await interleaved(clients, {"proxy": child_pid(b"-m\0mcp_proxy\0")}, args.calls,
                                                args.rounds, (16,))
    finally:
        server.terminate()
        server.wait()
    d, p = pct(lat["direct"], 0.5) * 1000, pct(lat["proxy"], 0.5) * 1000
    rate = rates[16]
    return [("HTTP upstream: echo call p50", f"{d:.2f} ms", f"{p:.2f} ms", f"{p - d:+.2f} ms"),
            ("HTTP upstream: proxy CPU per call", "-", f"{cpu['proxy'] / len(lat['proxy']) * 1000:.3f} ms", ""),
            ("HTTP upstream: calls/s, 16 in flight", f"{rate['direct']:.0f}", f"{rate['proxy']:.0f}",
             f"{rate['proxy'] / rate['direct']:.2f}x")]


async def interleaved(clients: dict[str, Client], pids: dict[str, str | None], calls: int, rounds: int,
                      in_flights: tuple[int, ...]) -> tuple[dict[str, list[float]], dict[str, float],
                                                            dict[int, dict[str, float]]]:
    """After a warm-up: the latencies of `calls` sequential calls per kind, in 10 batches with the kinds taking
    turns; the CPU each kind with a pid spent on them; and per in-flight count the median calls/s of `rounds`
    rounds, the kinds taking turns in each. A drift of the machine falls on every kind alike."""
    for kind, c in clients.items():
        await c.list_tools()
        await latencies(c, kind, 50)
    lat: dict[str, list[float]] = {k: [] for k in clients}
    cpu = dict.fromkeys(clients, 0.0)
    for _ in range(10):
        for kind, c in clients.items():
            pid = pids.get(kind)
            start = cpu_seconds(pid) if pid else 0.0
            lat[kind] += await latencies(c, kind, calls // 10)
            cpu[kind] += cpu_seconds(pid) - start if pid else 0.0
    rates: dict[int, dict[str, float]] = {}
    for in_flight in in_flights:
        runs: dict[str, list[float]] = {k: [] for k in clients}
        for _ in range(rounds):
            for kind, c in clients.items():
                runs[kind].append(await throughput(c, kind, in_flight, calls))
        rates[in_flight] = {k: statistics.median(v) for k, v in runs.items()}
    return lat, cpu, rates


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "MCP_ACCESS_PROXY_HOME": str(home)}


async def cold_start(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    async with connect(argv, env) as client:
        t_init = time.perf_counter() - start
        await client.list_tools()
        t_list = time.perf_counter() - start
    return t_init, t_list


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
OPENING = [{"jsonrpc": "2.0", "method": "notifications/initialized"},
           {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]


def _read_answer(proc: subprocess.Popen[bytes], request_id: int) -> dict:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the server closed stdout before answering")
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


def raw_session(argv: list[str], env: dict[str, str], call: str | None) -> tuple[float, float]:
    """(start -> first tools/list answer, stdin closed -> exit) over raw pipes, as a desktop client sees them:
    spawn, initialize, list, make one call (so the server is fully up), close stdin, wait for the exit."""
    start = time.perf_counter()
    proc = subprocess.Popen([PY, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env)
    assert proc.stdin is not None
    for message in (INITIALIZE, *OPENING):
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        proc.stdin.flush()
    _read_answer(proc, 2)
    to_list = time.perf_counter() - start
    if call is not None:
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                     "params": {"name": call, "arguments": {"text": "x"}}}).encode() + b"\n")
        proc.stdin.flush()
        _read_answer(proc, 3)
        time.sleep(0.3)  # idle, as a client is between calls
    closed = time.perf_counter()
    proc.stdin.close()
    proc.wait()
    return to_list, time.perf_counter() - closed


def proxy_argv(checkout: str | None) -> list[str]:
    """How to run the proxy: this checkout's, or (a baseline) the one in another checkout of the repository."""
    if checkout is None:
        return ["-m", "mcp_proxy"]
    return ["-c", f"import sys; sys.path.insert(0, {checkout!r}); from mcp_proxy.__main__ import main; "
                  "sys.exit(main())"]


def start_rows(home: Path, rounds: int, baseline: str | None = None) -> list[tuple[str, str, str, str]]:
    """Cold start to the first tools/list with an empty cache (a new home each round) and a warm one (the
    same home again), and the exit after stdin closes: direct, the proxy (and the baseline's) interleaved,
    medians."""
    kinds: dict[str, list[str] | None] = {"direct": None, "proxy": proxy_argv(None)}
    if baseline is not None:
        kinds["baseline"] = proxy_argv(baseline)
    measures: dict[str, dict[str, list[float]]] = {m: {k: [] for k in kinds} for m in ("empty", "warm", "exit")}

    def session(kind: str, home: Path) -> tuple[float, float]:
        runner = kinds[kind]
        if runner is None:
            return raw_session([FAKE, "--tools", "0"], env_for(home), "echo")
        return raw_session([*runner, "--config", str(_config(home, 1, 0))], env_for(home), "u0_echo")

    warm_homes = {kind: home / f"warm-{kind}" for kind in kinds}
    for kind, warm_home in warm_homes.items():
        warm_home.mkdir()
        session(kind, warm_home)  # fills the warm home's caches
    for i in range(rounds):
        for kind in kinds:
            fresh = home / f"empty-{kind}-{i}"
            fresh.mkdir()
            measures["empty"][kind].append(session(kind, fresh)[0])
            to_list, to_exit = session(kind, warm_homes[kind])
            measures["warm"][kind].append(to_list)
            measures["exit"][kind].append(to_exit)
    rows = []
    for label, key in (("cold start to first tools/list, empty cache", "empty"),
                       ("cold start to first tools/list, warm cache", "warm"), ("exit after stdin closes", "exit")):
        med = {k: statistics.median(v) * 1000 for k, v in measures[key].items()}
        for kind, name in (("proxy", label), ("baseline", "  the baseline")):
            if kind in med:
                rows.append((name, "" if kind == "baseline" else f"{med['direct']:.0f} ms", f"{med[kind]:.0f} ms",
                             f"{med[kind] / med['direct']:.2f}x"))
    return rows


def name_for(kind: str, tool: str) -> str:
    return tool if kind in ("direct", "relay") else f"u0_{tool}"


async def latencies(client: Client, kind: str, n: int) -> list[float]:
    out = []
    name = name_for(kind, "echo")
    for _ in range(n):
        t = time.perf_counter()
        await client.call_tool(name, {"text": "x"})
        out.append(time.perf_counter() - t)
    return out


async def throughput(client: Client, kind: str, in_flight: int, total: int) -> float:
    name = name_for(kind, "echo")
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await client.call_tool(name, {"text": "x"})

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(in_flight):
            tg.start_soon(worker)
    return total / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def child_pid(marker: bytes) -> str | None:
    """The pid of a process this script started whose command line (NUL-separated) contains `marker`."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes()
            if marker in cmd and int((pid_dir / "stat").read_text().split(") ")[1].split()[1]) == os.getpid():
                return pid_dir.name
        except (OSError, ValueError, IndexError):
            continue
    return None


def cpu_seconds(pid: str) -> float:
    """User and system CPU time of a process so far."""
    fields = (Path("/proc") / pid / "stat").read_text().split(") ")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib_of_proxy() -> tuple[float, float] | None:
    """(resident, its own) of the running proxy: RSS, and its pages that no other process maps (USS: private
    clean and dirty, from smaps_rollup). USS is about what each further copy of the proxy adds (clients each
    start one); the rest, mostly the interpreter's and the extension modules' code, is mapped once for all of
    them. Here the upstreams run the same interpreter and venv, so they share those pages as copies would."""
    pid = child_pid(b"-m\0mcp_proxy\0")
    try:
        rollup = dict(line.split(":", 1) for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text()
                      .splitlines()[1:] if ":" in line)
    except (OSError, ValueError):
        return None

    def kib(key: str) -> int:
        return int(rollup.get(key, "0 kB").split()[0])

    return kib("Rss") / 1024, (kib("Private_Clean") + kib("Private_Dirty")) / 1024


# The no-audit baseline: the same proxy with AuditLog.append patched to do nothing.
NO_AUDIT = (
    "import sys\n"
    "from mcp_proxy.audit import auditlog\n"
    "async def _append(self, event, fields): return fields\n"
    "auditlog.AuditLog.append = _append\n"
    "auditlog.AuditLog.append_nowait = lambda self, event, fields: fields\n"
    "from mcp_proxy.__main__ import main\n"
    "sys.exit(main())\n"
)


def _audit_config(home: Path, durability: str, group_commit_ms: float) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    cfg = _config(home, 1, 0)
    if durability != "off":
        cfg.write_text(cfg.read_text() + f'[audit]\ndurability = "{durability}"\ngroup_commit_ms = {group_commit_ms}\n')
    return cfg


async def audit_overhead(args: argparse.Namespace, root: Path) -> list[tuple[str, str, str, str, str]]:
    kinds = ("off", "group", "fsync")
    homes = {k: root / f"audit-{k}" for k in kinds}
    argv = {k: (["-c", NO_AUDIT] if k == "off" else ["-m", "mcp_proxy"])
            + ["--config", str(_audit_config(homes[k], k, args.group_commit_ms))] for k in kinds}
    rows = []
    async with connect(argv["off"], env_for(homes["off"])) as off, \
            connect(argv["group"], env_for(homes["group"])) as group, \
            connect(argv["fsync"], env_for(homes["fsync"])) as fsync:
        clients = {"off": off, "group": group, "fsync": fsync}
        for c in clients.values():
            await c.list_tools()
            await latencies(c, "proxy", 50)  # warm-up
        # One call to each in turn, so that all three see the same background load (the differences
        # measured are a fraction of a millisecond; batches of calls would pick up load swings).
        lat: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.calls):
            for kind, c in clients.items():
                lat[kind] += await latencies(c, "proxy", 1)
        for q, label in ((0.5, "audit: echo call p50"), (0.99, "audit: echo call p99")):
            v = {k: pct(lat[k], q) * 1000 for k in kinds}
            rows.append((label, f"{v['off']:.2f} ms", f"{v['group']:.2f} ms ({v['group'] - v['off']:+.2f})",
                         f"{v['fsync']:.2f} ms ({v['fsync'] - v['off']:+.2f})", ""))
        for in_flight in (1, 16):
            rates: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for kind, c in clients.items():
                    rates[kind].append(await throughput(c, "proxy", in_flight, args.calls))
            v = {k: statistics.median(rates[k]) for k in kinds}
            rows.append((f"audit: calls/s, {in_flight} in flight", f"{v['off']:.0f}",
                         f"{v['group']:.0f} ({v['group'] / v['off']:.2f}x)",
                         f"{v['fsync']:.0f} ({v['fsync'] / v['off']:.2f}x)", ""))
    rows.append(("audit: append alone (in-process)", "-", *await _append_cost(root, args.calls), ""))
    return rows


async def _append_cost(root: Path, n: int) -> tuple[str, str]:
    """Microseconds per AuditLog.append of a typical tools/call record, without the MCP round trip."""
    import socket
    import uuid

    from mcp_proxy.audit import AuditContext, AuditLog
    from mcp_proxy.config import AuditConfig
    from mcp_proxy.paths import Paths

    out = []
    for durability in ("group", "fsync"):
        home = root / f"append-{durability}"
        paths = Paths(home, home / "data", home / "cache", home / "logs")
        ctx = AuditContext(proxy_version="bench", instance_id=uuid.uuid4().hex, host=socket.gethostname(),
                           user="bench@example.com", governed=True, client_name="bench", client_version="1")
        log = AuditLog.open(paths, AuditConfig(durability=durability), ctx, secret_values=lambda: ["s3cr3t-value"])
        fields = {"mcp.method.name": "tools/call", "gen_ai.tool.name": "u0_echo", "jsonrpc.request.id": "7",
                  "arguments": {"text": "x", "limit": 25}, "upstream": "u0", "upstream.tool": "echo",
                  "policy.decision.code": "approved", "decision": "allow", "reason": "approved", "outcome": "ok",
                  "error.type": None, "duration_ms": 1.234}
        await log.append("mcp.tool.call", fields)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await log.append("mcp.tool.call", fields)
            times.append(time.perf_counter() - t)
        log.close()
        out.append(f"p50 {pct(times, 0.5) * 1e6:.0f} us, p99 {pct(times, 0.99) * 1e6:.0f} us")
    return out[0], out[1]


def _print_rows(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'direct':>12}  {'proxy':>12}  {'proxy vs direct':>15}")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>12}  {r[2]:>12}  {r[3]:>15}")


def _print_audit(rows: list[tuple[str, str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'no audit':>12}  {'group commit':>28}  {'fsync per record':>28}")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>12}  {r[2]:>28}  {r[3]:>28}")


async def main(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-"))
    if args.section == "audit":
        _print_audit(await audit_overhead(args, home))
        return
    env = env_for(home)
    rows: list[tuple[str, str, str, str]] = []
    if args.section == "start":
        _print_rows(start_rows(home, args.rounds, args.baseline))
        return

    # Start-up and exit: raw pipes, interleaved rounds, medians.
    rows += start_rows(home, args.rounds, args.baseline)
    tgt = targets(home)
    warm_proxy = statistics.median([(await cold_start(tgt["proxy"], env))[1] for _ in range(args.rounds)])
    # The same upstream taking 3 s to start (its cached list is warm): the proxy's answer must not wait for it.
    slow_cfg = home / "slow-upstream.toml"  # the same upstream (so the same cached list), started late
    slow_cfg.write_text((home / "config.toml").read_text() + 'env = { FAKE_START_DELAY = "3" }\n')
    slow = [await cold_start(["-m", "mcp_proxy", "--config", str(slow_cfg)], env) for _ in range(args.rounds)]
    s_list = statistics.median(c[1] for c in slow)
    rows.append(("SDK client: first tools/list, upstream 3 s slow", "-", f"{s_list * 1000:.0f} ms",
                 f"{s_list / warm_proxy:.2f}x of it not slow"))

    # Latency, CPU and throughput on live connections, interleaved in batches. "relay" is the floor: a Python
    # process that relays lines unread (scripts/relay_floor.py), the cost of any process in the middle;
    # "before" is the proxy of --baseline, when given.
    kinds = dict(tgt)
    if args.baseline:
        kinds["before"] = [*proxy_argv(args.baseline), "--config", str(home / "config.toml")]
    async with AsyncExitStack() as stack:
        clients = {kind: await stack.enter_async_context(connect(argv, env)) for kind, argv in kinds.items()}
        pids = {"proxy": child_pid(b"-m\0mcp_proxy\0"),
                "before": child_pid(args.baseline.encode()) if args.baseline else None}
        lat, cpu, rates = await interleaved(clients, pids, args.calls, args.rounds, (16, 64))
        proxies = [k for k in ("proxy", "before") if k in clients]
        for q, label in ((0.5, "echo call p50"), (0.99, "echo call p99")):
            at = {k: pct(v, q) * 1000 for k, v in lat.items()}
            rows.append((label, f"{at['direct']:.2f} ms", f"{at['proxy']:.2f} ms",
                         ", ".join(f"{k} {at[k] - at['direct']:+.2f} ms" for k in (*proxies, "relay"))))
        rows.append(("proxy CPU per call (sequential)", "-", f"{cpu['proxy'] / len(lat['proxy']) * 1000:.3f} ms",
                     f"before {cpu['before'] / len(lat['before']) * 1000:.3f} ms" if "before" in clients else ""))
        for in_flight, rate in rates.items():
            rows.append((f"calls/s, {in_flight} in flight", f"{rate['direct']:.0f}", f"{rate['proxy']:.0f}",
                         ", ".join(f"{k} {rate[k] / rate['direct']:.2f}x" for k in (*proxies, "relay"))))

    rows += await http_rows(args, home / "http", env_for(home / "http"))

    # tools/list with 500 upstream tools.
    (home / "big").mkdir()
    big = targets(home / "big", tools=500)
    async with connect(big["direct"], env_for(home / "big")) as direct, \
            connect(big["proxy"], env_for(home / "big")) as proxy:
        clients = {"direct": direct, "proxy": proxy}
        times: dict[str, list[float]] = {k: [] for k in clients}
        for c in clients.values():
            await c.list_tools()
        for _ in range(20):
            for kind, c in clients.items():
                t = time.perf_counter()
                result = await c.list_tools()
                times[kind].append(time.perf_counter() - t)
                assert len(result.tools) >= 500
        d, p = statistics.median(times["direct"]) * 1000, statistics.median(times["proxy"]) * 1000
        rows.append(("tools/list, 500 tools", f"{d:.2f} ms", f"{p:.2f} ms", f"{p / d:.2f}x"))

    # RSS with four upstreams.
    four = home / "four"
    four.mkdir()
    cfg = _config(four, 4, 0)
    async with connect(["-m", "mcp_proxy", "--config", str(cfg)], env_for(four)) as proxy:
        await proxy.list_tools()
        await proxy.call_tool("u3_echo", {"text": "x"})
        memory = memory_mib_of_proxy()
    rows.append(("proxy RSS, 4 upstreams", "-", f"{memory[0]:.1f} MiB" if memory else "n/a", ""))
    rows.append(("  of it its own (USS), not shared", "-", f"{memory[1]:.1f} MiB" if memory else "n/a", ""))

    _print_rows(rows)
    if args.section == "all":
        _print_audit(await audit_overhead(args, home))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of the cold-start and throughput measures (median)")
    parser.add_argument("--section", choices=("all", "start", "gateway", "audit"), default="all")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="[start, gateway] also run the proxy of another checkout (e.g. a git worktree of an older "
                             "commit) in the same interleaved rounds")
    parser.add_argument("--group-commit-ms", type=float, default=5.0,
                        help="[audit] group_commit_ms for the audit runs")
    anyio.run(main, parser.parse_args())
