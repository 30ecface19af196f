"""Helpers for the command modules' `register` functions: the global options, a command, a command with
actions, and one action.

The global options (`--config`, `--log-level`) are accepted before or after any command or action, with the
same meaning (DESIGN.md's interface contract): every parser gets them through `parents=`. Below the top level
their default is SUPPRESS, so a value given before the command is not reset by the command's parser, which
otherwise writes its own defaults over the namespace.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_proxy.config.model import LOG_LEVELS  # the config's `log_level` choices: one list for both

if TYPE_CHECKING:
    from mcp_proxy.cli import CliContext

Handler = Callable[[argparse.Namespace, "CliContext"], int]

def global_options(*, top_level: bool) -> argparse.ArgumentParser:
    """A parent parser holding the global options: defaults of None at the top level (so `args.config` and
    `args.log_level` always exist), SUPPRESS in commands and actions."""
    default = None if top_level else argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", metavar="PATH", default=default,
                   help="config file (default: $MCP_ACCESS_PROXY_CONFIG, else config.toml in the user config dir "
                        "or $MCP_ACCESS_PROXY_HOME)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default=default,
                   help="log level (overrides log_level in the config)")
    return p


_IN_COMMANDS = global_options(top_level=False)


def add_command(sub: argparse._SubParsersAction, name: str, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
    """The command (or action) `name` with the global options; `kwargs` go to `add_parser` (e.g. description)."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, parents=[_IN_COMMANDS], **kwargs)
    return p


def add_group(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    """The command `name`, whose required ACTION (in `args.<name>_command`) is one of the parsers added to
    what this returns."""
    p = add_command(sub, name, help_text)
    return p.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)


def add_action(cmds: argparse._SubParsersAction, name: str, help_text: str, func: Handler, *,
               json: bool = False) -> argparse.ArgumentParser:
    """The action `name`, run by `func`; with `json`, it takes `--json` for machine-readable output. Returns
    its parser for the action's own arguments."""
    s = add_command(cmds, name, help_text)
    if json:
        s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=func)
    return s
