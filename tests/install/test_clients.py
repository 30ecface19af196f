"""The client table: recognising clients, their config paths per OS, limits, and finding our entries."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mcp_proxy.clients import (
    CLIENT_CONFIG_DIR_ENV,
    CLIENTS,
    client_for_info,
    find_installed_entries,
    scan_client_configs,
)


@pytest.mark.parametrize(
    ("info_name", "key"),
    [
        ("claude-ai", "claude-desktop"),
        ("Claude Desktop", "claude-desktop"),
        ("claude-code", "claude-code"),
        ("Claude Code", "claude-code"),
        ("cursor-vscode", "cursor"),
        ("Cursor", "cursor"),
        ("Visual Studio Code", "vscode"),
        ("Visual Studio Code - Insiders", "vscode"),
        ("vscode", "vscode"),
        ("windsurf-client", "windsurf"),
        ("Windsurf", "windsurf"),
        ("codeium", "windsurf"),
    ],
)
def test_client_for_info_matches_loosely(info_name, key):
    spec = client_for_info(info_name)
    assert spec is not None and spec.key == key


@pytest.mark.parametrize("info_name", [None, "", "mcp-inspector", "zed", "goose", "continue"])
def test_unknown_clients_are_none(info_name):
    assert client_for_info(info_name) is None


def test_limits():
    assert (CLIENTS["cursor"].tool_limit, CLIENTS["cursor"].tool_warn, CLIENTS["cursor"].name_limit) == (80, 40, 60)
    assert CLIENTS["vscode"].tool_limit == 128 and CLIENTS["windsurf"].tool_limit == 100
    assert CLIENTS["claude-desktop"].tool_limit is None and CLIENTS["claude-code"].tool_limit is None
    assert CLIENTS["claude-code"].defers_tools and CLIENTS["claude-desktop"].name_limit == 64
    # mcp__mcp-access-proxy__<tool> must fit 64: 64 - 7 - 16.
    assert CLIENTS["claude-code"].max_tool_name_length("mcp-access-proxy") == 41
    assert CLIENTS["cursor"].max_tool_name_length("ops") == 57
    assert CLIENTS["windsurf"].max_tool_name_length() is None


def test_budget_warning():
    cursor = CLIENTS["cursor"]
    assert cursor.budget_warning(40) is None
    assert "first 40" in cursor.budget_warning(41)
    assert "limit of 80" in cursor.budget_warning(81) and "max_tools" in cursor.budget_warning(81)
    assert CLIENTS["vscode"].budget_warning(128) is None and CLIENTS["vscode"].budget_warning(129)
    assert CLIENTS["claude-desktop"].budget_warning(10_000) is None


@pytest.mark.parametrize(
    ("client", "platform", "expected"),
    [
        ("claude-desktop", "darwin", "H/Library/Application Support/Claude/claude_desktop_config.json"),
        ("claude-desktop", "win32", "A/Claude/claude_desktop_config.json"),
        ("claude-desktop", "linux", "H/.config/Claude/claude_desktop_config.json"),
        ("vscode", "darwin", "H/Library/Application Support/Code/User/mcp.json"),
        ("vscode", "win32", "A/Code/User/mcp.json"),
        ("vscode", "linux", "H/.config/Code/User/mcp.json"),
        ("cursor", "darwin", "H/.cursor/mcp.json"),
        ("cursor", "win32", "U/.cursor/mcp.json"),
        ("windsurf", "linux", "H/.codeium/windsurf/mcp_config.json"),
        ("windsurf", "win32", "U/.codeium/windsurf/mcp_config.json"),
        ("claude-code", "darwin", "H/.claude.json"),
        ("claude-code", "win32", "U/.claude.json"),
    ],
)
def test_config_path_per_os(client, platform, expected):
    env = {"HOME": "/H", "APPDATA": "/A", "USERPROFILE": "/U"}
    assert CLIENTS[client].config_path(platform, env) == Path("/" + expected)


def test_config_path_honours_xdg_claude_config_dir_and_the_override():
    env = {"HOME": "/H", "XDG_CONFIG_HOME": "/X", "CLAUDE_CONFIG_DIR": "/C"}
    assert CLIENTS["claude-desktop"].config_path("linux", env) == Path("/X/Claude/claude_desktop_config.json")
    assert CLIENTS["claude-code"].config_path("linux", env) == Path("/C/.claude.json")
    env[CLIENT_CONFIG_DIR_ENV] = "/T"
    assert CLIENTS["vscode"].config_path("darwin", env) == Path("/T/vscode/mcp.json")


def _write(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))


def test_find_installed_entries_with_a_fake_home(fake_home, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "uvx").write_text("#!/bin/sh\n")
    (bindir / "uvx").chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    launcher = str(Path(sys.executable).parent / "mcp-access-proxy")
    cfg = tmp_path / "proxy.toml"
    cfg.write_text("")
    # Claude Desktop (Linux location): ours with an existing launcher, plus another server.
    _write(fake_home / ".config" / "Claude" / "claude_desktop_config.json", {"mcpServers": {
        "mcp-access-proxy": {"command": launcher, "args": ["--config", str(cfg)]},
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem"]}}})
    # Cursor: the uvx one-shot form, by name (relative command).
    _write(fake_home / ".cursor" / "mcp.json", {"mcpServers": {"ops": {
        "command": "uvx", "args": ["--from", "git+https://example.com/mcp-access-proxy", "mcp-access-proxy"]}}})
    # VS Code (JSONC): a stale absolute path and a config file that is gone.
    _write(fake_home / ".config" / "Code" / "User" / "mcp.json",
           '{\n  // hi\n  "servers": {"mcp-access-proxy": {"type": "stdio", "command": "/gone/bin/mcp-access-proxy", '
           '"args": ["--config", "/gone/proxy.toml"]},},\n}\n')
    # Claude Code: a project-scope (local) entry via python -m.
    _write(fake_home / ".claude.json", {"projects": {"/work/p": {"mcpServers": {
        "gw": {"command": sys.executable, "args": ["-m", "mcp_proxy"]}}}}})
    # Windsurf: malformed.
    _write(fake_home / ".codeium" / "windsurf" / "mcp_config.json", '{"mcpServers": {')

    env = {"HOME": str(fake_home)}
    entries = {(e.client.key, e.name): e for e in find_installed_entries("linux", env)}
    assert set(entries) == {("claude-desktop", "mcp-access-proxy"), ("cursor", "ops"), ("vscode", "mcp-access-proxy"),
                            ("claude-code", "gw")}

    desktop = entries["claude-desktop", "mcp-access-proxy"]
    assert desktop.command_exists and desktop.command_path == launcher and desktop.proxy_config == str(cfg)
    assert desktop.scope == "user" and desktop.problems == []

    cursor = entries["cursor", "ops"]
    assert not cursor.command_is_absolute and cursor.command_path == str(bindir / "uvx")
    assert len(cursor.problems) == 1 and "minimal PATH" in cursor.problems[0]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (cursor,) = [e for e in find_installed_entries("linux", {"HOME": str(fake_home)}) if e.client.key == "cursor"]
    assert not cursor.command_exists and "is not on PATH" in cursor.problems[0]

    vscode = entries["vscode", "mcp-access-proxy"]
    assert not vscode.command_exists and vscode.command_path is None
    assert len(vscode.problems) == 2 and "install vscode" in vscode.problems[0]

    code = entries["claude-code", "gw"]
    assert code.scope == "project /work/p" and code.command_exists

    statuses = {s.client.key: s for s in scan_client_configs("linux", env) if s.exists}
    assert statuses["windsurf"].error and "line 1" in statuses["windsurf"].error and not statuses["windsurf"].entries
    missing = [s for s in scan_client_configs("linux", env) if not s.exists]
    assert {s.client.key for s in missing} == {"vscode"}  # only the Insiders file is absent
    assert all(os.path.isabs(s.config_file) for s in missing)


def test_find_installed_entries_on_an_empty_machine(fake_home):
    assert find_installed_entries("darwin", {"HOME": str(fake_home)}) == []
