"""Which client configs on this machine start mcp-access-proxy, and whether they can (for `doctor`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_proxy.clients import jsonedit
from mcp_proxy.clients.entry import config_arg, looks_like_ours
from mcp_proxy.clients.install import ClientConfigError, read_config_text
from mcp_proxy.clients.table import CLIENTS, ClientSpec, config_paths


@dataclass(frozen=True)
class InstalledEntry:
    client: ClientSpec
    config_file: Path
    scope: str  # "user", or "project <dir>" for Claude Code's per-project (local scope) entries
    name: str
    command: str
    args: tuple[str, ...]
    command_path: str | None  # what the command resolves to, None when not found
    command_exists: bool
    proxy_config: str | None  # the --config argument, if any

    @property
    def command_is_absolute(self) -> bool:
        return os.path.isabs(self.command)

    @property
    def problems(self) -> list[str]:
        """What will stop the client from starting the proxy, each with the fix."""
        out = []
        reinstall = f"run `mcp-access-proxy install {self.client.key}`"
        if not self.command_exists and not self.command_is_absolute:
            out.append(f"{self.client.display_name} entry \"{self.name}\" in {self.config_file} runs {self.command!r}, "
                       f"which is not on PATH (and apps started from the Dock or Start menu see even less of it); "
                       f"{reinstall} to write the absolute path of the launcher")
        elif not self.command_exists:
            out.append(f"{self.client.display_name} entry \"{self.name}\" in {self.config_file} runs {self.command!r}, "
                       f"which does not exist; {reinstall} to write the current launcher's path")
        elif not self.command_is_absolute:
            out.append(f"{self.client.display_name} entry \"{self.name}\" runs {self.command!r} by name: apps started "
                       f"from the Dock or Start menu get a minimal PATH and may not find it; {reinstall} to write an "
                       f"absolute path")
        if self.proxy_config and not Path(self.proxy_config).expanduser().is_file():
            out.append(f"{self.client.display_name} entry \"{self.name}\" uses --config {self.proxy_config}, "
                       f"which does not exist; create it (see client-configs/proxy-config.example.toml) or {reinstall} "
                       f"--proxy-config PATH")
        return out


@dataclass(frozen=True)
class ClientConfigStatus:
    client: ClientSpec
    config_file: Path
    exists: bool
    error: str | None  # the file exists but cannot be read or parsed
    entries: tuple[InstalledEntry, ...]


def _entry(spec: ClientSpec, path: Path, scope: str, name: str, value: dict[str, Any]) -> InstalledEntry:
    raw_command = value.get("command")
    command = raw_command if isinstance(raw_command, str) else ""
    raw_args = value.get("args")
    args = tuple(a for a in raw_args if isinstance(a, str)) if isinstance(raw_args, list) else ()
    if command and os.path.isabs(command):
        resolved = command if os.path.isfile(command) else None
    else:
        resolved = shutil.which(command) if command else None
    return InstalledEntry(spec, path, scope, name, command, args, resolved, resolved is not None, config_arg(args))


def _scan_file(spec: ClientSpec, path: Path) -> ClientConfigStatus:
    try:
        text, _ = read_config_text(path)
    except ClientConfigError as exc:
        return ClientConfigStatus(spec, path, True, str(exc), ())
    if text is None:
        return ClientConfigStatus(spec, path, False, None, ())
    if not text.strip():
        return ClientConfigStatus(spec, path, True, None, ())
    try:
        root = jsonedit.parse(text, spec.jsonc).value
    except jsonedit.JsonSyntaxError as exc:
        return ClientConfigStatus(spec, path, True, f"{path} is not valid JSON: {exc}; fix it in an editor", ())
    if not isinstance(root, dict):
        return ClientConfigStatus(spec, path, True, f"{path}: the top level is not a JSON object", ())
    scopes: list[tuple[str, Any]] = [("user", root.get(spec.servers_key))]
    if spec.key == "claude-code" and isinstance(root.get("projects"), dict):
        scopes += [(f"project {d}", p.get("mcpServers")) for d, p in root["projects"].items() if isinstance(p, dict)]
    entries = []
    for scope, servers in scopes:
        if not isinstance(servers, dict):
            continue
        for name, value in servers.items():
            if looks_like_ours(value):
                entries.append(_entry(spec, path, scope, name, value))
    return ClientConfigStatus(spec, path, True, None, tuple(entries))


def scan_client_configs(platform: str | None = None, env: Mapping[str, str] | None = None) -> list[ClientConfigStatus]:
    """Every known client config file on this machine, read-only, with our entries in each."""
    out = []
    for spec in CLIENTS.values():
        for path in config_paths(spec, platform, env):
            out.append(_scan_file(spec, path))
    return out


def find_installed_entries(platform: str | None = None, env: Mapping[str, str] | None = None) -> list[InstalledEntry]:
    """Every entry in a client config on this machine that starts mcp-access-proxy."""
    return [e for status in scan_client_configs(platform, env) for e in status.entries]
