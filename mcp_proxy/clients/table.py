"""The desktop clients we support: where their config lives, its shape, their limits.

Facts are from /work/shared/reference/conventions.md §C and the issues cited
inline. Limits are what the client does today, stated conservatively, so that
`doctor` and the server's start-up log can warn before a user hits them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: When set, every client's config file is `<dir>/<client key>/<file name>` (tests, sandboxes).
CLIENT_CONFIG_DIR_ENV = "MCP_ACCESS_PROXY_CLIENT_CONFIG_DIR"
DEFAULT_SERVER_NAME = "mcp-access-proxy"


@dataclass(frozen=True, kw_only=True)
class ClientSpec:
    """One desktop client.

    tool_limit: above this many tools (from all its servers) the client drops
        tools or refuses the request; None when there is no hard cap.
    tool_warn: above this many tools some versions of the client degrade
        (warn, or silently use only the first N); None when not known to.
    name_limit: maximum length of the name the model sees for a tool, which the
        client builds from the server name and the tool name; `name_overhead`
        is the number of characters the client adds (prefixes, separators).
    """

    key: str
    display_name: str
    file_name: str
    info_patterns: tuple[str, ...]  # normalised substrings of MCP clientInfo.name
    restart_hint: str
    log_hint: str
    servers_key: str = "mcpServers"  # or "servers" for VS Code
    entry_type: str | None = None  # VS Code needs "type": "stdio" in each entry
    jsonc: bool = False  # the client reads JSON with comments / trailing commas
    tool_limit: int | None = None
    tool_warn: int | None = None
    name_limit: int | None = None
    name_overhead: int = 0
    defers_tools: bool = False  # the client loads tool definitions on demand (tool count matters less)
    server_name_cap: int | None = None  # the client shortens longer server names in the prefix to this many

    def config_path(self, platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
        """The user-level config file of this client on this machine."""
        return config_paths(self, platform, env)[0]

    def max_tool_name_length(self, server_name: str = DEFAULT_SERVER_NAME) -> int | None:
        """The longest tool name that fits the client's name limit under `server_name`."""
        if self.name_limit is None:
            return None
        server = len(server_name) if self.server_name_cap is None else min(len(server_name), self.server_name_cap)
        return self.name_limit - self.name_overhead - server

    def over_limit(self, tool_count: int) -> bool:
        """Whether the client cuts a list of `tool_count` tools (counted over all its servers)."""
        return self.tool_limit is not None and tool_count > self.tool_limit

    def budget_warning(self, tool_count: int) -> str | None:
        """A warning when `tool_count` exposed tools exceed what this client handles well."""
        if self.over_limit(tool_count):
            return (f"{tool_count} tools exceed {self.display_name}'s limit of {self.tool_limit} (counted over all its "
                    f"servers); some tools will not reach the model. Narrow the policy's toolsets for this user or set "
                    f"max_tools = {self.tool_limit} in the proxy config")
        if self.tool_warn is not None and tool_count > self.tool_warn:
            return (f"{tool_count} tools exceed {self.tool_warn}, above which {self.display_name} "
                    f"{_WARN_REASON.get(self.key, 'may not use every tool')}; consider max_tools = {self.tool_warn}")
        return None


_WARN_REASON = {
    "cursor": "warns and older versions send only the first 40 tools to the model",
}

CLIENTS: dict[str, ClientSpec] = {
    spec.key: spec
    for spec in (
        ClientSpec(
            key="claude-desktop",
            display_name="Claude Desktop",
            file_name="claude_desktop_config.json",
            jsonc=False,  # parsed with JSON.parse: a comment breaks every server
            name_limit=64,  # combined server + tool name (sparfenyuk/mcp-proxy#45)
            info_patterns=("claudeai", "claudedesktop", "claude"),
            restart_hint=("Quit Claude Desktop completely (macOS: Claude > Quit or Cmd+Q; Windows: right-click the "
                          "tray icon > Quit; closing the window is not enough) and start it again."),
            log_hint=("macOS ~/Library/Logs/Claude/, Windows %APPDATA%\\Claude\\logs\\: mcp.log (connections) and "
                      "mcp-server-{name}.log (this proxy's stderr)"),
        ),
        ClientSpec(
            key="cursor",
            display_name="Cursor",
            file_name="mcp.json",
            jsonc=True,
            tool_limit=80,  # warns above 80 (Snowflake-Labs/mcp#77)
            tool_warn=40,  # older versions sent only the first 40 tools
            name_limit=60,  # server name + tool name; longer tools are filtered out (composio#2788)
            info_patterns=("cursor",),
            restart_hint=("Restart Cursor, or open Cursor Settings > MCP and switch the server off and on; "
                          "Cursor may need a manual refresh to see changed tools."),
            log_hint="View > Output, then choose the \"MCP Logs\" channel",
        ),
        ClientSpec(
            key="vscode",
            display_name="VS Code",
            servers_key="servers",
            entry_type="stdio",
            file_name="mcp.json",
            jsonc=True,
            tool_limit=128,  # per chat request
            name_limit=64,  # model APIs cap tool names at 64; VS Code adds "mcp_<server>_" (microsoft/vscode#243602)
            name_overhead=5,
            # VS Code shortens long server names itself ("mcp_io_github_ups_", microsoft/vscode#318638)
            server_name_cap=13,
            info_patterns=("visualstudiocode", "vscode", "codeinsiders"),
            restart_hint=("Run \"MCP: List Servers\" from the Command Palette and start or restart {name} "
                          "(or reload the window); after a tool change run \"MCP: Reset Cached Tools\"."),
            log_hint="\"MCP: List Servers\" > {name} > Show Output",
        ),
        ClientSpec(
            key="claude-code",
            display_name="Claude Code",
            file_name=".claude.json",
            name_limit=64,  # the full "mcp__<server>__<tool>" (anthropics/claude-code#19882)
            name_overhead=7,
            defers_tools=True,  # tool search loads definitions on demand
            info_patterns=("claudecode",),
            restart_hint=("Start a new `claude` session (running sessions keep their servers); `/mcp` shows the "
                          "server's status. Claude Code rewrites ~/.claude.json while it runs: if the entry is gone "
                          "later, quit every session and install again."),
            log_hint="`claude --debug` prints MCP start-up errors; a slow start is governed by MCP_TIMEOUT",
        ),
        ClientSpec(
            key="windsurf",
            display_name="Windsurf",
            file_name="mcp_config.json",
            jsonc=True,
            tool_limit=100,  # total over all servers
            name_limit=None,  # none documented
            info_patterns=("windsurf", "codeium", "cascade"),
            restart_hint=("In Windsurf open Settings > Cascade > MCP servers and press Refresh (or restart Windsurf); "
                          "tools can be toggled one by one there."),
            log_hint="View > Output, then choose the Windsurf / Cascade channel",
        ),
    )
}

# Checked in this order: "cursor-vscode" must be Cursor, not VS Code; "claude-code" must not be Claude Desktop.
_MATCH_ORDER = ("claude-code", "cursor", "windsurf", "vscode", "claude-desktop")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def client_for_info(client_name: str | None) -> ClientSpec | None:
    """The client behind an MCP `clientInfo.name` ("claude-ai", "cursor-vscode", "Visual Studio Code"…), or None."""
    if not client_name:
        return None
    norm = _NON_ALNUM.sub("", client_name.lower())
    for key in _MATCH_ORDER:
        spec = CLIENTS[key]
        if any(p in norm for p in spec.info_patterns):
            return spec
    return None


def current_platform(platform: str | None = None) -> str:
    """"macos", "windows" or "linux" (anything else is treated as linux)."""
    p = platform or sys.platform
    if p in ("macos", "windows", "linux"):
        return p
    if p == "darwin":
        return "macos"
    if p.startswith(("win32", "cygwin")):
        return "windows"
    return "linux"


def config_paths(spec: ClientSpec, platform: str | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """Every user-level config file of `spec` worth looking at; the first is where `install` writes."""
    env = os.environ if env is None else env
    override = env.get(CLIENT_CONFIG_DIR_ENV)
    if override:
        return [Path(override).expanduser().absolute() / spec.key / spec.file_name]
    plat = current_platform(platform)
    home = _home(plat, env)
    if spec.key == "claude-code":
        # CLAUDE_CONFIG_DIR moves Claude Code's whole config, .claude.json included.
        base = env.get("CLAUDE_CONFIG_DIR")
        return [Path(base).expanduser() / ".claude.json" if base else home / ".claude.json"]
    if spec.key == "cursor":
        return [home / ".cursor" / "mcp.json"]
    if spec.key == "windsurf":
        return [home / ".codeium" / "windsurf" / "mcp_config.json"]
    app_dir = _app_config_dir(plat, env, home)
    if spec.key == "claude-desktop":
        return [app_dir / "Claude" / spec.file_name]
    # vscode: the user profile's mcp.json, stable first, then Insiders.
    return [app_dir / "Code" / "User" / "mcp.json", app_dir / "Code - Insiders" / "User" / "mcp.json"]


def _home(plat: str, env: Mapping[str, str]) -> Path:
    if plat == "windows" and env.get("USERPROFILE"):
        return Path(env["USERPROFILE"])
    if env.get("HOME"):
        return Path(env["HOME"])
    return Path.home()


def _app_config_dir(plat: str, env: Mapping[str, str], home: Path) -> Path:
    if plat == "macos":
        return home / "Library" / "Application Support"
    if plat == "windows":
        return Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
    xdg = env.get("XDG_CONFIG_HOME")
    return Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config"
