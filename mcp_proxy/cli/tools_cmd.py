"""`tools [--all] [--json] [--refresh]`: the merged catalog and this user's approval state."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mcp_proxy.cli import EXIT_OK, CliContext, err
from mcp_proxy.cli._args import add_command

if TYPE_CHECKING:
    from mcp_proxy.policy.engine import PolicyEngine


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "tools", "list the merged catalog: exposed names, upstream tools, hashes, your access")
    p.add_argument("--all", action="store_true", help="include tools that are not available to you")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--refresh", action="store_true", help="connect to MCP upstreams first and refresh the cache")
    p.set_defaults(func=_tools)


def _policy(ctx: CliContext) -> PolicyEngine:
    from mcp_proxy.server.run import open_policy

    policy = open_policy(ctx.config(), ctx.paths, ctx.secret_store(), lambda *_: None)
    policy.load_cached()
    return policy


def _tools(args: argparse.Namespace, ctx: CliContext) -> int:
    import anyio

    from mcp_proxy.catalog.offline import load_catalog_entries, refresh_catalog

    config = ctx.config()
    if args.refresh:
        results = anyio.run(refresh_catalog, config, ctx.paths, ctx.secret_store())
        for key, line in sorted(results.items()):
            err(f"{key}: {line}")
    entries, unknown = load_catalog_entries(config, ctx.paths)
    policy = _policy(ctx)
    user = ctx.user()
    rows: list[dict[str, Any]] = []
    for e in entries:
        decision = policy.decide(e.facts, user)
        if not args.all and not decision.allowed:
            continue
        rows.append({
            "exposed_name": e.exposed, "key": e.facts.key, "upstream": e.upstream, "tool": e.name,
            "title": e.facts.title, "sha256": e.facts.definition_hash, "class": e.facts.classification,
            "annotations": e.facts.annotations, "builtin": e.facts.builtin, "available": decision.allowed,
            "state": decision.state,
            "reason": decision.code,
        })
    if args.json:
        json.dump({"tools": rows, "unknown_upstreams": unknown, "governed": config.governed,
                   "policy_revision": policy.revision}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    width = max([len(r["exposed_name"]) for r in rows] + [12])
    for r in rows:
        mark = "yes" if r["available"] else "no "
        print(f"{r['exposed_name']:<{width}}  {mark}  {r['reason']:<18} {r['class']:<11} {r['key']}  "
              f"{r['sha256'][:12]}")
    if not rows:
        print("no tools" + ("" if args.all else " available to you (try --all)"))
    for key in unknown:
        err(f"{key}: tools not known yet; start the proxy once or run `mcp-access-proxy tools --refresh`")
    if not config.governed:
        err("ungoverned: no [policy] in the config, so every tool is available")
    return EXIT_OK
