"""`install CLIENT` against temporary config files for every client."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mcp_proxy.clients import CLIENTS
from mcp_proxy.clients.jsonedit import parse

ALL = sorted(CLIENTS)
LAUNCHER = Path(sys.executable).parent / "mcp-access-proxy"


def load(path: Path, client: str) -> dict:
    return parse(path.read_text(encoding="utf-8"), CLIENTS[client].jsonc).value


def servers(path: Path, client: str) -> dict:
    return load(path, client)[CLIENTS[client].servers_key]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def existing_config(client: str) -> str:
    """A realistic file: unknown top-level keys, two other servers, 2-space indent like the clients write."""
    key = CLIENTS[client].servers_key
    return (
        "{\n"
        '  "preferences": {"theme": "dark"},\n'
        f'  "{key}": {{\n'
        '    "filesystem": {\n'
        '      "command": "npx",\n'
        '      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],\n'
        '      "env": {"DEBUG": "1"}\n'
        "    },\n"
        '    "remote": {"url": "https://mcp.example.com/mcp"}\n'
        "  },\n"
        '  "zzz": [1, 2, 3]\n'
        "}\n"
    )


@pytest.mark.parametrize("client", ALL)
def test_new_file_is_created_with_the_client_shape_and_absolute_launcher(client, client_file, cli):
    path = client_file(client)
    assert not path.parent.exists()
    code, out, err = cli("install", client)
    assert code == 0, err
    entry = servers(path, client)["mcp-access-proxy"]
    assert os.path.isabs(entry["command"])
    assert Path(entry["command"]) == LAUNCHER and os.access(entry["command"], os.X_OK)
    assert entry["args"] == []
    if client == "vscode":
        assert list(load(path, client)) == ["servers"]
        assert list(entry)[0] == "type" and entry["type"] == "stdio"
    else:
        assert list(load(path, client)) == ["mcpServers"]
        assert "type" not in entry
    assert f'Added "mcp-access-proxy" to {CLIENTS[client].display_name}' in out
    assert "Next:" in out and "doctor" in out
    assert backups(path) == []  # nothing to back up


@pytest.mark.parametrize("client", ALL)
def test_existing_file_other_servers_and_unknown_keys_are_untouched(client, client_file, cli):
    path = client_file(client)
    path.parent.mkdir(parents=True)
    original = existing_config(client)
    path.write_text(original, encoding="utf-8")
    code, out, err = cli("install", client)
    assert code == 0, err
    new = path.read_text(encoding="utf-8")
    # Byte-for-byte: everything up to the end of the last other entry, and the tail of the file.
    cut = original.index('"https://mcp.example.com/mcp"}') + len('"https://mcp.example.com/mcp"}')
    assert new.startswith(original[:cut])
    assert new.endswith('  },\n  "zzz": [1, 2, 3]\n}\n')
    doc = load(path, client)
    assert list(doc) == ["preferences", CLIENTS[client].servers_key, "zzz"]
    assert list(doc[CLIENTS[client].servers_key]) == ["filesystem", "remote", "mcp-access-proxy"]
    # The backup holds the original bytes.
    (backup,) = backups(path)
    assert backup.read_text(encoding="utf-8") == original
    assert str(backup) in out


@pytest.mark.parametrize("client", ALL)
def test_second_run_changes_nothing_and_says_so(client, client_file, cli):
    path = client_file(client)
    assert cli("install", client)[0] == 0
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    code, out, _ = cli("install", client)
    assert code == 0
    assert "nothing changed" in out
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert backups(path) == []


@pytest.mark.parametrize("client", ALL)
def test_malformed_file_is_left_untouched_with_line_column_and_fix(client, client_file, cli):
    path = client_file(client)
    path.parent.mkdir(parents=True)
    bad = '{\n  "mcpServers": {\n    "a": {"command": "x"}\n    "b": {"command": "y"}\n  }\n}\n'
    path.write_text(bad, encoding="utf-8")
    code, out, err = cli("install", client)
    assert code == 1
    assert str(path) in err and "line 4, column 5" in err
    assert "left untouched" in err and "Fix it in an editor" in err
    assert path.read_text(encoding="utf-8") == bad
    assert backups(path) == [] and out == ""
    # Uninstall and dry-run refuse the same way.
    assert cli("install", client, "--uninstall")[0] == 1
    assert cli("install", client, "--dry-run")[0] == 1
    assert path.read_text(encoding="utf-8") == bad


def test_comment_in_strict_client_file_is_reported_but_allowed_for_vscode(client_file, cli):
    text = '{\n  // mine\n  "mcpServers": {}\n}\n'
    desktop = client_file("claude-desktop")
    desktop.parent.mkdir(parents=True)
    desktop.write_text(text)
    code, _, err = cli("install", "claude-desktop")
    assert code == 1 and "comment" in err and "line 2, column 3" in err
    vscode = client_file("vscode")
    vscode.parent.mkdir(parents=True)
    vscode.write_text('{\n  // mine\n  "servers": {\n    "a": {"type": "stdio", "command": "/a"},\n  },\n}\n')
    assert cli("install", "vscode")[0] == 0
    new = vscode.read_text()
    assert "// mine" in new and servers(vscode, "vscode")["mcp-access-proxy"]["type"] == "stdio"


@pytest.mark.parametrize("client", ALL)
def test_dry_run_shows_a_diff_and_writes_nothing(client, client_file, cli):
    path = client_file(client)
    code, out, _ = cli("install", client, "--dry-run")
    assert code == 0
    assert "+++ " + str(path) in out and '+    "mcp-access-proxy": {' in out
    assert not path.exists() and not path.parent.exists()
    path.parent.mkdir(parents=True)
    path.write_text(existing_config(client))
    code, out, _ = cli("install", client, "--dry-run")
    assert code == 0
    assert f"--- {path}" in out and '+    "mcp-access-proxy": {' in out
    assert '-    "filesystem"' not in out  # other entries are context (the last one only gains a comma)
    assert path.read_text() == existing_config(client) and backups(path) == []


@pytest.mark.parametrize("client", ALL)
def test_uninstall_removes_only_ours(client, client_file, cli):
    path = client_file(client)
    path.parent.mkdir(parents=True)
    original = existing_config(client)
    path.write_text(original)
    assert cli("install", client)[0] == 0
    code, out, _ = cli("install", client, "--uninstall")
    assert code == 0 and "Removed" in out
    assert path.read_text() == original  # exactly the file before install
    assert len(backups(path)) == 2
    code, out, _ = cli("install", client, "--uninstall")
    assert code == 0 and "nothing changed" in out


def test_uninstall_refuses_another_servers_entry_with_our_name(client_file, cli):
    path = client_file("cursor")
    path.parent.mkdir(parents=True)
    text = '{"mcpServers": {"mcp-access-proxy": {"command": "/usr/bin/something-else"}}}'
    path.write_text(text)
    code, _, err = cli("install", "cursor", "--uninstall")
    assert code == 1 and "does not start mcp-access-proxy" in err and "/usr/bin/something-else" in err
    assert path.read_text() == text
    # Installing over it replaces it (with a backup) and says so.
    code, _, err = cli("install", "cursor")
    assert code == 0 and "previously started something else" in err
    assert servers(path, "cursor")["mcp-access-proxy"]["command"] == str(LAUNCHER)


def test_update_rewrites_stale_path_and_keeps_users_additions(client_file, cli):
    path = client_file("claude-desktop")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {"mcp-access-proxy": {
        "command": "uvx", "args": ["--from", "git+https://example.com/mcp-access-proxy", "mcp-access-proxy"],
        "env": {"HTTPS_PROXY": "http://proxy:3128"}}}}, indent=2))
    code, out, _ = cli("install", "claude-desktop")
    assert code == 0 and "Updated" in out
    entry = servers(path, "claude-desktop")["mcp-access-proxy"]
    assert entry == {"command": str(LAUNCHER), "args": [], "env": {"HTTPS_PROXY": "http://proxy:3128"}}


def test_proxy_config_env_and_home_are_written_as_absolute_paths(client_file, cli, fake_home, monkeypatch):
    monkeypatch.chdir(fake_home)
    cfg = fake_home / "proxy.toml"
    cfg.write_text('[user]\nemail = "alice@example.com"\n')
    code, out, _ = cli("install", "windsurf", "--proxy-config", "proxy.toml")
    assert code == 0
    entry = servers(client_file("windsurf"), "windsurf")["mcp-access-proxy"]
    assert entry["args"] == ["--config", str(cfg)]
    # MCP_ACCESS_PROXY_CONFIG and MCP_ACCESS_PROXY_HOME from the shell are carried over: GUI apps lack them.
    monkeypatch.setenv("MCP_ACCESS_PROXY_CONFIG", "proxy.toml")
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", "ph")
    code, out, _ = cli("install", "cursor")
    assert code == 0
    entry = servers(client_file("cursor"), "cursor")["mcp-access-proxy"]
    assert entry["args"] == ["--config", str(cfg)]
    assert entry["env"] == {"MCP_ACCESS_PROXY_HOME": str(fake_home / "ph")}
    assert "GUI apps do not see it" in out


def test_missing_or_invalid_proxy_config_is_pointed_out(cli, client_dir, fake_home):
    code, _, err = cli("install", "cursor", "--proxy-config", str(fake_home / "nope.toml"))
    assert code == 0 and "no proxy config at" in err and "proxy-config.example.toml" in err
    bad = fake_home / "bad.toml"
    bad.write_text('[upstreams.og]\nkind = "opsgenie"\n')
    code, _, err = cli("install", "cursor", "--proxy-config", str(bad))
    assert code == 0 and "upstreams.og.api_key" in err


def test_explicit_config_file_and_name(cli, fake_home):
    target = fake_home / "project" / ".cursor" / "mcp.json"
    code, out, _ = cli("install", "cursor", "--config-file", str(target), "--name", "ops")
    assert code == 0 and str(target) in out
    assert list(json.loads(target.read_text())["mcpServers"]) == ["ops"]
    code, _, err = cli("install", "cursor", "--name", "bad name!")
    assert code == 64 and "--name" in err


def test_claude_code_writes_user_scope_and_prints_the_claude_command(client_file, cli):
    path = client_file("claude-code")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"numStartups": 3, "projects": {"/p": {"mcpServers": {}}}}, indent=2))
    code, out, _ = cli("install", "claude-code")
    assert code == 0
    doc = load(path, "claude-code")
    assert doc["mcpServers"]["mcp-access-proxy"]["command"] == str(LAUNCHER)
    assert doc["projects"] == {"/p": {"mcpServers": {}}} and doc["numStartups"] == 3
    assert f"claude mcp add --scope user mcp-access-proxy -- {LAUNCHER}" in out
    code, out, _ = cli("install", "claude-code", "--uninstall")
    assert "claude mcp remove --scope user mcp-access-proxy" in out


def test_bom_and_file_mode_are_preserved(client_file, cli):
    path = client_file("claude-desktop")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf" + b'{\n  "mcpServers": {}\n}\n')
    path.chmod(0o600)
    assert cli("install", "claude-desktop")[0] == 0
    assert path.read_bytes().startswith(b"\xef\xbb\xbf{\n  \"mcpServers\": {\n    \"mcp-access-proxy\"")
    assert path.stat().st_mode & 0o777 == 0o600


def test_not_utf8_and_directory_are_clear_errors(client_file, cli, fake_home):
    path = client_file("windsurf")
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"mcpServers": {"a": "\xff"}}')
    code, _, err = cli("install", "windsurf")
    assert code == 1 and "not UTF-8" in err and str(path) in err
    code, _, err = cli("install", "windsurf", "--config-file", str(fake_home))
    assert code == 1 and "is a directory" in err


def test_file_changed_between_plan_and_write_is_not_clobbered(client_file):
    from mcp_proxy.clients import ClientConfigError, apply, plan_install

    spec = CLIENTS["cursor"]
    path = client_file("cursor")
    path.parent.mkdir(parents=True)
    path.write_text('{"mcpServers": {}}')
    plan = plan_install(spec, path, "p", lambda existing: {"command": "/x", "args": []})
    path.write_text('{"mcpServers": {"new": {"command": "/n"}}}')  # the client rewrote it meanwhile
    with pytest.raises(ClientConfigError, match="changed while we were editing"):
        apply(plan)
    assert json.loads(path.read_text()) == {"mcpServers": {"new": {"command": "/n"}}}


def test_launcher_falls_back_to_python_dash_m(monkeypatch, tmp_path):
    from mcp_proxy.clients import entry

    monkeypatch.setattr(entry.sys, "executable", str(tmp_path / "bin" / "python3"))
    monkeypatch.setattr(entry.shutil, "which", lambda name: None)
    launcher = entry.find_launcher()
    assert launcher.command == str(tmp_path / "bin" / "python3") and launcher.args == ("-m", "mcp_proxy")
    e = entry.build_entry(CLIENTS["vscode"], launcher, Path("/c.toml"))
    assert e == {"type": "stdio", "command": launcher.command, "args": ["-m", "mcp_proxy", "--config", "/c.toml"]}
    assert entry.looks_like_ours(e)


def test_uvx_cache_launcher_is_flagged_ephemeral(monkeypatch, tmp_path):
    from mcp_proxy.clients import entry

    bindir = tmp_path / ".cache" / "uv" / "archive-v0" / "abc" / "bin"
    bindir.mkdir(parents=True)
    (bindir / "mcp-access-proxy").write_text("#!/bin/sh\n")
    monkeypatch.setattr(entry.sys, "executable", str(bindir / "python"))
    launcher = entry.find_launcher()
    assert launcher.ephemeral and launcher.command == str(bindir / "mcp-access-proxy")


def test_real_launcher_in_a_subprocess_with_a_fake_home(tmp_path):
    import subprocess

    home = tmp_path / "h"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "APPDATA": str(home / "AppData")}
    result = subprocess.run([str(LAUNCHER), "install", "claude-desktop"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    path = home / ".config" / "Claude" / "claude_desktop_config.json"  # Linux location
    assert json.loads(path.read_text())["mcpServers"]["mcp-access-proxy"]["command"] == str(LAUNCHER)


@pytest.mark.parametrize(("client", "name", "warned"), [
    ("claude-code", "mcp-access-proxy", False),  # mcp__mcp-access-proxy__ leaves 41 >= 40
    ("claude-code", "mcp-access-proxy-2", True),  # leaves 39 < 40
    ("claude-code", "ops", False),
    ("cursor", "mcp-access-proxy", False),  # 60 - 16 = 44 >= 40
    ("cursor", "mcp-access-proxy-tools", True),  # 60 - 22 = 38 < 40
    ("vscode", "a-very-long-server-name", False),  # VS Code shortens the prefix itself
    ("windsurf", "a-very-long-server-name", False),
])
def test_server_name_length_warning(client, name, warned, cli, client_dir):
    code, _, err = cli("install", client, "--name", name)
    assert code == 0
    assert ("accepts tool names of at most" in err) is warned


def test_dots_are_refused_in_server_names(cli, client_dir):
    code, _, err = cli("install", "claude-code", "--name", "my.proxy")
    assert code == 64 and "'-' or '_'" in err


def test_symlinked_config_is_written_through_the_link(client_file, cli, fake_home):
    real = fake_home / "dotfiles" / "cursor-mcp.json"
    real.parent.mkdir()
    real.write_text('{\n  "mcpServers": {}\n}\n')
    link = client_file("cursor")
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert cli("install", "cursor")[0] == 0
    assert link.is_symlink() and "mcp-access-proxy" in json.loads(real.read_text())["mcpServers"]
    assert len(backups(real)) == 1
