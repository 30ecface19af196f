#!/usr/bin/env python3
"""Benchmark: the admin console with an inventory of 5,000 tools from 200 users (issue 17: the pending list
rendered in under 1 s).

    uv run --extra test python scripts/bench_admin.py [--tools 5000] [--users 200] [--rounds 3]

Prints: reading the inventory (OTLP JSON file), the server's JSON build of the state (`/api/state`), and,
in headless Chromium (Debian's /usr/bin/chromium), the time from navigation start to the pending list
rendered (the first 200 rows of the list, pending first, in the DOM; more are added as the list is scrolled).
Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_proxy.admin.inventory import read_inventory
from mcp_proxy.admin.review import Review
from mcp_proxy.admin.server import Console, Publisher
from tests._support.admin import CHROMIUM, Chromium, big_inventory, policy_dict


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tools", type=int, default=5000)
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = big_inventory(Path(tmp) / "otlp.json", tools=args.tools, users=args.users)
        t0 = time.perf_counter()
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


if __name__ == "__main__":
    main()
