"""`install CLIENT [--dry-run] [--uninstall]`: write this proxy into a desktop client's config.

The logic (paths, shapes, splicing, backups) is in `mcp_proxy.clients`; this
module parses arguments and tells the human what happened and what to do next.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, err
from mcp_proxy.cli._args import add_command
from mcp_proxy.paths import CONFIG_ENV, HOME_ENV

if TYPE_CHECKING:
    from mcp_proxy.clients.entry import Launcher
    from mcp_proxy.clients.install import Plan
    from mcp_proxy.clients.table import ClientSpec

# No dots: Claude builds "mcp__<server>__<tool>" and the Anthropic API accepts only [a-zA-Z0-9_-] in tool names.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def register(sub: argparse._SubParsersAction) -> None:
    from mcp_proxy.clients.table import CLIENT_CONFIG_DIR_ENV, CLIENTS, DEFAULT_SERVER_NAME

    p = add_command(
        sub, "install", "write this proxy into a desktop client's MCP config (absolute paths, with a backup)",
        description=(
            "Add (or update) an entry that starts mcp-access-proxy to the user-level MCP config of CLIENT, with the "
            "absolute path of this installation's launcher, because apps started from the Dock or Start menu do not "
            "see your shell's PATH. Other servers in the file are never touched; a timestamped backup is kept. "
            f"Set {CLIENT_CONFIG_DIR_ENV}=DIR to use DIR/<client>/<file> instead of the real locations."
        ),
    )
    p.add_argument("client", choices=sorted(CLIENTS), metavar="CLIENT", help=" | ".join(CLIENTS))
    p.add_argument("--dry-run", action="store_true", help="print the change as a unified diff and write nothing")
    p.add_argument("--uninstall", action="store_true", help="remove our entry (only ours) instead")
    p.add_argument("--name", default=DEFAULT_SERVER_NAME,
                   help=f"the server name in the client (default {DEFAULT_SERVER_NAME}; keep it short: Cursor limits "
                        "server name + tool name to 60 characters)")
    p.add_argument("--config-file", metavar="PATH", help="the client config file to edit (default: the client's "
                   "user-level file for this OS; e.g. a project's .cursor/mcp.json, .vscode/mcp.json or .mcp.json)")
    p.add_argument("--proxy-config", metavar="PATH", help="the proxy's TOML config the client should start it with "
                   f"(default: --config or ${CONFIG_ENV} when set, else the proxy's default location)")
    p.set_defaults(func=_install)


def _proxy_config(args: argparse.Namespace) -> Path | None:
    value = args.proxy_config or getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    return Path(value).expanduser().absolute() if value else None


def _carried_env() -> dict[str, str]:
    """Settings from this shell the client must pass on, because GUI apps do not inherit them."""
    home = os.environ.get(HOME_ENV)
    return {HOME_ENV: str(Path(home).expanduser().absolute())} if home else {}


def _install(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.clients import ClientConfigError, apply, build_entry, find_launcher, plan_install, plan_uninstall
    from mcp_proxy.clients.table import CLIENTS

    spec = CLIENTS[args.client]
    if not _NAME_RE.match(args.name):
        err(f"mcp-access-proxy: --name {args.name!r} is not usable as a server name; use 1-64 letters, digits, "
            f"'-' or '_', e.g. --name ops")
        return EXIT_USAGE
    path = Path(args.config_file).expanduser().absolute() if args.config_file else spec.config_path()
    launcher = find_launcher()
    proxy_config = _proxy_config(args)
    env = _carried_env()

    try:
        if args.uninstall:
            plan = plan_uninstall(spec, path, args.name)
        else:
            plan = plan_install(spec, path, args.name,
                                lambda existing: build_entry(spec, launcher, proxy_config, env, existing))
    except ClientConfigError as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE

    if args.dry_run:
        if plan.changed:
            sys.stdout.write(plan.diff())
            print(f"(dry run: {path} was not changed; run without --dry-run to apply)")
        else:
            print(f"(dry run) {_nothing_message(plan)}")
        return EXIT_OK
    if not plan.changed:
        print(_nothing_message(plan))
        return EXIT_OK
    try:
        backup = apply(plan)
    except ClientConfigError as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE

    if args.uninstall:
        print(f"Removed \"{args.name}\" from {spec.display_name}'s config: {path}")
    else:
        verb = "Added" if plan.action == "add" else "Updated"
        print(f"{verb} \"{args.name}\" {'to' if plan.action == 'add' else 'in'} {spec.display_name}'s config: {path}")
        entry = _written_entry(plan)
        print(f"  command: {shlex.join([entry['command'], *entry['args']])}")
        if env:
            carried = ", ".join(f"{k}={v}" for k, v in env.items())
            print(f"  env:     {carried} (from this shell: GUI apps do not see it)")
        if plan.replaced_foreign is not None:
            err(f"warning: the entry \"{args.name}\" previously started something else "
                f"({_describe(plan.replaced_foreign)}); it was replaced. Pass --name to use another name instead.")
    if backup:
        print(f"  backup:  {backup}")
    if spec.key == "claude-code":
        _print_claude_equivalent(args, plan)
    if not args.uninstall:
        _warnings(ctx, spec, launcher, proxy_config, args.name)
        _next_steps(spec, args.name)
    else:
        print(f"Next: {spec.restart_hint.format(name=args.name)}")
    return EXIT_OK


def _nothing_message(plan: Plan) -> str:
    spec, name = plan.spec, plan.name
    if plan.action == "unchanged":
        return f"{spec.display_name}'s config {plan.path} already has \"{name}\" with this command; nothing changed."
    if plan.old_text is None:
        return f"{plan.path} does not exist, so there is no \"{name}\" entry to remove; nothing changed."
    return f"{spec.display_name}'s config {plan.path} has no \"{name}\" entry; nothing changed."


def _written_entry(plan: Plan) -> dict[str, Any]:
    from mcp_proxy.clients.jsonedit import read_entries

    return read_entries(plan.new_text or "", plan.spec.servers_key, plan.spec.jsonc)[plan.name]


def _describe(entry: object) -> str:
    if isinstance(entry, dict):
        what = entry.get("command") or entry.get("url") or entry.get("serverUrl")
        return repr(what) if what else "an entry without a command"
    return f"a {type(entry).__name__}"


def _print_claude_equivalent(args: argparse.Namespace, plan: Plan) -> None:
    if args.uninstall:
        cmd = ["claude", "mcp", "remove", "--scope", "user", args.name]
    else:
        entry = _written_entry(plan)
        env_args = [a for k, v in (entry.get("env") or {}).items() for a in ("--env", f"{k}={v}")]
        cmd = ["claude", "mcp", "add", "--scope", "user", *env_args, args.name, "--", entry["command"], *entry["args"]]
    print(f"  (the same as: {shlex.join(cmd)})")


def _warnings(ctx: CliContext, spec: ClientSpec, launcher: Launcher, proxy_config: Path | None, name: str) -> None:
    if launcher.ephemeral:
        err(f"warning: {launcher.command} is inside uv's cache (a one-shot `uvx` run); it disappears when the cache is "
            f"cleaned. Install for good with `uv tool install <git URL or path>` and run install again, or use the "
            f"uvx form in client-configs/README.md")
    if launcher.source == "python":
        err(f"note: no mcp-access-proxy launcher was found next to {sys.executable} or on PATH, so the entry runs "
            f"`{launcher.command} -m mcp_proxy`")
    target = proxy_config or ctx.paths.default_config_file
    if not target.is_file():
        err(f"note: there is no proxy config at {target} yet; create it (start from "
            f"client-configs/proxy-config.example.toml) before restarting {spec.display_name}")
    else:
        from mcp_proxy.config import ConfigError, load_config

        try:
            load_config(target)
        except ConfigError as exc:
            err(f"warning: the proxy config has problems the client will hit at start-up:\n{exc}")
    room = spec.max_tool_name_length(name)
    longest = _longest_exposed_name()
    if room is not None and room < longest:
        err(f"warning: with the server name \"{name}\", {spec.display_name} accepts tool names of at most {room} "
            f"characters, but the proxy's tool names can be up to {longest}; {spec.display_name} would drop or reject "
            f"the longest ones. A short name avoids it: run install again with --name ops "
            f"(and --uninstall the old one)")


def _longest_exposed_name() -> int:
    from mcp_proxy.catalog.names import MAX_NAME_LENGTH

    return MAX_NAME_LENGTH


def _next_steps(spec: ClientSpec, name: str) -> None:
    print("Next:")
    print(f"  1. {spec.restart_hint.format(name=name)}")
    print(f"  2. If the tools do not appear, look at the MCP log: {spec.log_hint.format(name=name)}")
    print("  3. `mcp-access-proxy doctor` checks the config, credentials, policy and this entry.")
