"""Helpers for the command modules' `register` functions: a command with actions, and one action."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp_proxy.cli import CliContext

Handler = Callable[[argparse.Namespace, "CliContext"], int]


def add_group(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    """The command `name`, whose required ACTION (in `args.<name>_command`) is one of the parsers added to
    what this returns."""
    p = sub.add_parser(name, help=help_text)
    return p.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_action(cmds: argparse._SubParsersAction, name: str, help_text: str, func: Handler, *,
               json: bool = False) -> argparse.ArgumentParser:
    """The action `name`, run by `func`; with `json`, it takes `--json` for machine-readable output. Returns
    its parser for the action's own arguments."""
    s: argparse.ArgumentParser = cmds.add_parser(name, help=help_text)
    if json:
        s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=func)
    return s
