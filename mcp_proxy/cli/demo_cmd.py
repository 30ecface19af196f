"""`demo`: the built-in sandbox walk-through (no account, no network)."""

from __future__ import annotations

import argparse

from mcp_proxy.cli import CliContext
from mcp_proxy.cli._args import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", "walk one scripted client session through the proxy on a local sandbox "
                                    "(vendor stand-ins, OAuth, policy server, collector); no account, no network")
    p.add_argument("--keep", action="store_true",
                   help="leave the sandbox running afterwards and print a client config entry to try it")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.sandbox.demo import run_demo

    return run_demo(keep=args.keep)
