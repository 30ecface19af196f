"""Command-line interface: parsing, dispatch, exit codes, human output.

Each group of commands lives in its own `*_cmd.py` module with a
`register(subparsers)` function; handlers take `(args, ctx)` and return an
exit code. Logic the server needs lives in the parts, not here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from mcp_proxy import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from mcp_proxy.config import Config, SecretStore
    from mcp_proxy.paths import Paths
    from mcp_proxy.stdio_guard import WireFds

# Command modules, in help order.
COMMAND_MODULES = (
    "serve_cmd",
    "demo_cmd",
    "auth_cmd",
    "secret_cmd",
    "tools_cmd",
    "policy_cmd",
    "admin_cmd",
    "audit_cmd",
    "doctor_cmd",
    "install_cmd",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2  # the config file is missing or invalid
EXIT_USAGE = 64


@dataclass
class CliContext:
    args: argparse.Namespace
    wire: WireFds | None = None
    _paths: Any = field(default=None, repr=False)
    _config: Any = field(default=None, repr=False)

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            from mcp_proxy.paths import resolve_paths

            self._paths = resolve_paths()
        return self._paths

    @property
    def config_path(self) -> Path:
        from mcp_proxy.config import find_config_file

        return find_config_file(self.paths, getattr(self.args, "config", None))

    def config(self) -> Config:
        """The validated config; raises ConfigError (exit 2 in `run`)."""
        if self._config is None:
            from mcp_proxy.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def user(self) -> str | None:
        """Who the policy and the audit see: the email a vendor confirmed at the last sign-in (as `serve` uses
        it), else `[user] email`."""
        config = self.config()
        from mcp_proxy.auth.broker import TokenBroker

        for cfg in config.upstreams.values():
            if cfg.enabled and cfg.auth == "oauth" and cfg.kind != "mcp" and cfg.oauth is not None:
                info = TokenBroker.for_upstream(cfg, self.paths, self.secret_store()).token_info()
                if info is not None and info.identity_email:
                    return info.identity_email
        return config.user_email

    def secret_store(self) -> SecretStore:
        from mcp_proxy.config import SecretStore

        try:
            backend = self.config().secrets_store
        except Exception:  # noqa: BLE001 - no usable config: default to the keychain
            backend = "keyring"
        return SecretStore(backend, self.paths.data_dir / "secrets.json")


def err(message: str) -> None:
    """A message for the human on stderr."""
    print(message, file=sys.stderr)


def quiet_logging(args: argparse.Namespace) -> None:
    """Logging for a command a person runs in a terminal: warnings and up (or --log-level) on stderr, no file."""
    from mcp_proxy.logsetup import setup_logging

    setup_logging(args.log_level or "warning", None, to_file=False)


class _NotServe(Exception):
    """The arguments are not a plain `serve`: the parser of every command must read them."""


class _ServeOnlyParser(argparse.ArgumentParser):
    """Knows only `serve`, and gives up instead of printing an error: a mistake is then reported by the parser of
    every command, with its usage."""

    def error(self, message: str) -> NoReturn:
        raise _NotServe(message)


def build_parser(commands: tuple[str, ...] = COMMAND_MODULES,
                 parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    from mcp_proxy.cli._args import global_options

    parser = parser_class(
        prog="mcp-access-proxy",
        parents=[global_options(top_level=True)],
        description=(
            "A governed MCP gateway on your laptop: one stdio MCP server that merges the tools of your "
            "configured upstreams (PagerDuty, Opsgenie, Statuspage, UptimeObserver, any MCP server), shows only "
            "what your organisation's policy approves, signs you in with OAuth where the vendor allows it, "
            "and keeps an audit log of every call. With no command it runs `serve`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"mcp-access-proxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"mcp_proxy.cli.{name}").register(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.command is None:  # no command: `serve`
        args = parser.parse_args([*argv, "serve"])
    return args


def _parse_serve(argv: list[str]) -> argparse.Namespace | None:
    """`serve`'s arguments read by a parser of `serve` alone, or None when they are anything else. Building the
    parser of every command imports every command's module, about 35 ms, and a client waits for `serve`'s
    first answers (and its upstreams' children) behind it."""
    try:
        return _parse(build_parser(("serve_cmd",), _ServeOnlyParser), argv)
    except _NotServe:
        return None


def run(argv: list[str], wire: WireFds | None = None) -> int:
    # `wire` is given when __main__ has already told `serve` from the other commands and claimed stdio for it.
    args = _parse_serve(argv) if wire is not None else None
    if args is None:
        args = _parse(build_parser(), argv)
    if not getattr(args, "func", None):  # pragma: no cover - every command sets func
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    ctx = CliContext(args=args, wire=wire)
    from mcp_proxy.config import ConfigError, SecretError

    try:
        return int(args.func(args, ctx) or 0)
    except ConfigError as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_CONFIG
    except SecretError as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        err("mcp-access-proxy: interrupted")
        return 130
