#!/usr/bin/env python3
"""Benchmark: the admin console with an inventory of 5,000 tools from 200 users (issue 17: the pending list
rendered in under 1 s).

    uv run --extra test python scripts/bench_admin.py [--tools 5000] [--users 200] [--rounds 3]
    uv run --extra test python scripts/bench_admin.py --read-mb 25,50,100

Prints: reading the inventory (OTLP JSON file), the server's JSON build of the state (`/api/state`), and,
in headless Chromium (Debian's /usr/bin/chromium), the time from navigation start to the pending list
rendered (the first 200 rows of the list, pending first, in the DOM; more are added as the list is scrolled).

`--read-mb` measures only the console's start on big inventories: for each size, an OTLP file of about that
many MB (5,000 tools, 2 users per MB; the defaults make 101 MB) read and the review warmed, wall and CPU
time, so a reader that is not linear in the file shows as a falling MB/s. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_proxy.admin.inventory import acyclic_bulk, read_inventory
from mcp_proxy.admin.review import Review
from mcp_proxy.admin.server import Console, Publisher
from tests._support.admin import CHROMIUM, Chromium, big_inventory, policy_dict


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tools", type=int, default=5000)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--read-mb", metavar="MB,...", help="only time reading inventories of about these sizes")
    args = p.parse_args()
    if args.read_mb:
        read_sizes([float(mb) for mb in args.read_mb.split(",")], tools=args.tools)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = big_inventory(Path(tmp) / "otlp.json", tools=args.tools, users=args.users)
        t0 = time.perf_counter()
        with acyclic_bulk(keep=True):  # as `admin` reads its inventory
            inventory = read_inventory([path])
        read_s = time.perf_counter() - t0
        print(f"inventory: {len(inventory.tools)} tools, {inventory.records} records, "
              f"{path.stat().st_size / 1e6:.1f} MB, read in {read_s * 1000:.0f} ms")
        review = Review(policy_dict({}), inventory)
        builds = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            review.state()
            builds.append(time.perf_counter() - t0)
        print(f"server JSON build (/api/state): median {statistics.median(builds) * 1000:.0f} ms")
        if CHROMIUM is None:
            print("chromium not installed: no page timings (apt-get install chromium)")
            return
        pending = []
        for _ in range(args.rounds):
            console = Console(review, Publisher()).start()
            browser = Chromium()
            try:
                browser.goto(console.url)
                browser.wait_for("document.body.dataset.rendered === '1'", timeout=60)
                nav = browser.eval("performance.getEntriesByType('navigation')[0].startTime")
                timings = browser.eval("window.__adminTimings")
                rows = browser.eval("document.querySelectorAll('#rows tr').length")
                pending.append(timings["pending"] - nav)
            finally:
                browser.close()
                console.close()
        print(f"page: navigation start -> pending list rendered ({rows - 1} rows in the DOM, the rest on scroll): "
              f"median {statistics.median(pending):.0f} ms (runs {', '.join(f'{x:.0f}' for x in pending)})")


def read_sizes(sizes: list[float], *, tools: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            path = big_inventory(Path(tmp) / f"otlp-{mb:g}.json", tools=tools, users=max(4, round(mb * 2)))
            size = path.stat().st_size / 1e6
            wall, cpu = time.perf_counter(), time.process_time()
            with acyclic_bulk(keep=True):  # as `admin` reads its inventory
                inventory = read_inventory([path])
            read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
            Review(policy_dict({}), inventory).warm()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{size:6.1f} MB: read {read_wall:5.2f} s wall, {read_cpu:5.2f} s CPU ({size / read_cpu:5.1f} MB/s "
                  f"CPU); read + review warmed (the console's start) {wall:5.2f} s wall, {cpu:5.2f} s CPU; "
                  f"{inventory.records} records, {len(inventory.tools)} tools")
            path.unlink()
            del inventory
            gc.unfreeze()
            gc.collect()


if __name__ == "__main__":
    main()
