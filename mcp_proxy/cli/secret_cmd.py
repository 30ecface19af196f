"""`secret set NAME`, `secret delete NAME`: credentials in the OS keychain."""

from __future__ import annotations

import argparse
import getpass
import sys

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, CliContext, err


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("secret", help="store or delete a credential in the OS keychain")
    s = p.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    set_p = s.add_parser("set", help="store a secret (value read from stdin, or a hidden prompt on a terminal)")
    set_p.add_argument("name", help="the NAME in keyring:NAME")
    set_p.set_defaults(func=_set)
    del_p = s.add_parser("delete", help="delete a stored secret")
    del_p.add_argument("name")
    del_p.set_defaults(func=_delete)


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
