"""`secret set NAME`, `secret delete NAME`: credentials in the OS keychain."""

from __future__ import annotations

import argparse
import getpass
import sys

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, CliContext, err
from mcp_proxy.cli._args import add_action, add_group


def register(sub: argparse._SubParsersAction) -> None:
    cmds = add_group(sub, "secret", "store or delete a credential in the OS keychain")
    s = add_action(cmds, "set", "store a secret (value read from stdin, or a hidden prompt on a terminal)", _set)
    s.add_argument("name", help="the NAME in keyring:NAME")
    s = add_action(cmds, "delete", "delete a stored secret", _delete)
    s.add_argument("name")


def _set(args: argparse.Namespace, ctx: CliContext) -> int:
    if sys.stdin.isatty():
        value = getpass.getpass(f"Value for {args.name} (input hidden): ")
    else:
        value = sys.stdin.read().strip()
    if not value:
        err("mcp-access-proxy: no value given; nothing stored")
        return EXIT_FAILURE
    store = ctx.secret_store()
    store.set(args.name, value)
    err(f"stored {args.name} in the {store.backend} store; reference it as \"keyring:{args.name}\"")
    return EXIT_OK


def _delete(args: argparse.Namespace, ctx: CliContext) -> int:
    store = ctx.secret_store()
    if store.delete(args.name):
        err(f"deleted {args.name}")
        return EXIT_OK
    err(f"no secret named {args.name} in the {store.backend} store")
    return EXIT_FAILURE
