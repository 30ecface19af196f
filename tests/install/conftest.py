"""Fixtures for `install` and the client table: a fake home so no real client config is ever touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_proxy.cli import run
from mcp_proxy.clients import CLIENT_CONFIG_DIR_ENV, CLIENTS


@pytest.fixture
def fake_home(tmp_path, monkeypatch) -> Path:
    """HOME/APPDATA/USERPROFILE/XDG_CONFIG_HOME under tmp, no proxy env that would leak into entries."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("HOME", "USERPROFILE"):
        monkeypatch.setenv(var, str(home))
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("MCP_ACCESS_PROXY_HOME", raising=False)
    monkeypatch.delenv("MCP_ACCESS_PROXY_CONFIG", raising=False)
    monkeypatch.delenv(CLIENT_CONFIG_DIR_ENV, raising=False)
    return home


@pytest.fixture
def client_dir(fake_home, monkeypatch) -> Path:
    """The override directory: each client's file is <dir>/<client>/<file name>."""
    d = fake_home / "client-configs"
    monkeypatch.setenv(CLIENT_CONFIG_DIR_ENV, str(d))
    return d


@pytest.fixture
def client_file(client_dir):
    """The path `install CLIENT` writes under the override directory."""

    def _path(client: str) -> Path:
        return client_dir / client / CLIENTS[client].file_name

    return _path


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def _run(*argv: str) -> tuple[int, str, str]:
        code = run(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
