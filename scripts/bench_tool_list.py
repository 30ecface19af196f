#!/usr/bin/env python3
"""Benchmark: what the demo's `tools/list` costs in the model's context, per upstream and in total.

    uv run --extra test python scripts/bench_tool_list.py [--json] [--search]

The demo's configuration (mcp_proxy/sandbox/demo/world.py): PagerDuty (`pd`), Opsgenie (`og`), Statuspage
(`sp`) as built-in connectors and the UptimeObserver sandbox (`uo`) as an MCP server, every tool shown (as
the demo's policy shows all but three), plus the proxy's own tools. Built without a network or a running
proxy: the connectors' tool lists are static, UptimeObserver's is the sandbox's. A tool is measured as the
client receives it: exposed name, compact JSON of the MCP `Tool` (`exclude_none`). Tokens are estimated as
bytes / 4 (a rough rule for English and JSON with common tokenizers; not a tokenizer's count).

`--search` also measures the list a client sees with `tool_search = true`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The demo's upstreams as `demo` configures them (URLs do not matter: nothing is called).
DEMO_UPSTREAMS: dict[str, dict[str, Any]] = {
    "pd": {"kind": "pagerduty", "auth": "oauth", "client_id": "mcp-access-proxy-demo",
           "redirect_uri": "http://127.0.0.1:9/callback", "authorize_url": "http://127.0.0.1:9/oauth/authorize",
           "token_url": "http://127.0.0.1:9/oauth/token", "base_url": "http://127.0.0.1:9"},
    "og": {"kind": "opsgenie", "api_key": "keyring:opsgenie", "base_url": "http://127.0.0.1:9"},
    "sp": {"kind": "statuspage", "api_key": "keyring:statuspage", "base_url": "http://127.0.0.1:9/v1",
           "page_id": "acmepage0001", "organization_id": "acmeorg00001"},
}


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def tool_lists() -> dict[str, list[dict[str, Any]]]:
    """Each demo upstream's raw tool list, as its upstream hands it to the catalog."""
    from mcp_proxy.config.load import parse_config
    from mcp_proxy.connectors.base import Credential
    from mcp_proxy.sandbox.uptimeobserver import TOOLS as UPTIMEOBSERVER_TOOLS
    from mcp_proxy.upstreams.rest import load_connector, tool_dict

    async def no_credentials() -> Credential:
        raise AssertionError("nothing is called")

    config = parse_config({"user": {"email": "alice@example.com"}, "secrets": {"store": "file"},
                           "upstreams": DEMO_UPSTREAMS})
    lists: dict[str, list[dict[str, Any]]] = {}
    for key, cfg in config.upstreams.items():
        connector = load_connector(cfg, no_credentials, "alice@example.com")
        lists[key] = [tool_dict(t) for t in connector.tools()]
    lists["uo"] = [dict(t) for t in UPTIMEOBSERVER_TOOLS]
    return lists


def demo_shows(key: str, tool: dict[str, Any]) -> bool:
    """The demo's policy: read-only tools approved automatically, and the writes it approves."""
    from mcp_proxy.sandbox.demo.world import APPROVED_WRITES

    return (tool.get("annotations") or {}).get("readOnlyHint") is True or f"{key}.{tool['name']}" in APPROVED_WRITES


Row = tuple[str, int, int, int, int]  # upstream, tools, bytes, tools the demo shows, their bytes


def measure() -> tuple[list[Row], int, int]:
    """A row per upstream (and the proxy's own tools), the bytes of the whole `tools/list` result with every
    tool, and with the tools the demo's policy shows."""
    import mcp_types as types

    from mcp_proxy.catalog.catalog import Catalog
    from mcp_proxy.policy.access_tools import access_tool_definitions

    lists = tool_lists()
    catalog = Catalog({"pd": "pagerduty", "og": "opsgenie", "sp": "statuspage", "uo": "mcp"})
    for key, tools in lists.items():
        catalog.set_tools(key, tools)
    rows: list[Row] = []
    every: list[Any] = []
    shown: list[Any] = []
    for key, raw in lists.items():
        listed = {t["name"]: demo_shows(key, t) for t in raw}
        dumped = [(e.tool.model_dump(mode="json", by_alias=True, exclude_none=True), listed[e.name])
                  for e in catalog.entries() if e.upstream == key]
        every += [d for d, _ in dumped]
        shown += [d for d, show in dumped if show]
        rows.append((key, len(dumped), sum(len(compact(d)) for d, _ in dumped),
                     sum(1 for _, show in dumped if show), sum(len(compact(d)) for d, show in dumped if show)))
    own = [types.Tool.model_validate(d).model_dump(mode="json", by_alias=True, exclude_none=True)
           for d in access_tool_definitions()]
    own_bytes = sum(len(compact(d)) for d in own)
    rows.append(("proxy", len(own), own_bytes, len(own), own_bytes))
    return rows, len(compact({"tools": own + every})), len(compact({"tools": own + shown}))


def search_mode_bytes() -> tuple[int, int]:
    import mcp_types as types

    from mcp_proxy.policy.access_tools import access_tool_definitions

    own = [types.Tool.model_validate(d).model_dump(mode="json", by_alias=True, exclude_none=True)
           for d in access_tool_definitions(search=True)]
    return len(own), len(compact({"tools": own}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--search", action="store_true", help="also measure the list with tool_search = true")
    args = parser.parse_args()
    rows, total, total_shown = measure()
    search = search_mode_bytes() if args.search else None
    count, count_shown = sum(r[1] for r in rows), sum(r[3] for r in rows)
    if args.json:
        out: dict[str, Any] = {
            "upstreams": {k: {"tools": n, "bytes": b, "shown_tools": ns, "shown_bytes": bs}
                          for k, n, b, ns, bs in rows},
            "total": {"tools": count, "bytes": total, "tokens_est": total // 4},
            "demo_shown": {"tools": count_shown, "bytes": total_shown, "tokens_est": total_shown // 4}}
        if search:
            out["tool_search"] = {"tools": search[0], "bytes": search[1], "tokens_est": search[1] // 4}
        print(json.dumps(out, indent=2))
        return
    print(f"{'':<8} {'every tool':>26}   {'the demo policy shows':>26}")
    print(f"{'upstream':<8} {'tools':>5} {'bytes':>9} {'≈tokens':>9}   {'tools':>5} {'bytes':>9} {'≈tokens':>9}")
    for key, n, size, n_shown, size_shown in rows:
        print(f"{key:<8} {n:>5} {size:>9,} {size // 4:>9,}   {n_shown:>5} {size_shown:>9,} {size_shown // 4:>9,}")
    print(f"{'total':<8} {count:>5} {total:>9,} {total // 4:>9,}   {count_shown:>5} {total_shown:>9,} "
          f"{total_shown // 4:>9,}")
    if search:
        print(f"{'search':<8} {'':>5} {'':>9} {'':>9}   {search[0]:>5} {search[1]:>9,} {search[1] // 4:>9,}"
              "   (tool_search = true)")
    print("bytes: compact JSON of each tool as listed; total: the whole result. tokens ≈ bytes / 4 (an estimate)")

if __name__ == "__main__":
    main()
