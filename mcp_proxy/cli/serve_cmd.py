"""`serve` (the default command): the stdio MCP server."""

from __future__ import annotations

import argparse

from mcp_proxy.cli import CliContext
from mcp_proxy.cli._args import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "serve", "run the stdio MCP server (the default when no command is given)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    if ctx.wire is None:  # started through run() in-process rather than the console script
        from mcp_proxy.stdio_guard import claim_stdio

        ctx.wire = claim_stdio()
    config = ctx.config()  # a bad config exits 2 with the message on stderr, before any protocol
    from mcp_proxy.server.run import serve

    return serve(config, ctx.paths, ctx.wire, args.log_level or config.log_level)
