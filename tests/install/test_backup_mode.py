"""`install` keeps a private config private: its backup and the rewritten file keep the original's mode."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

ORIGINAL = '{\n  "mcpServers": {\n    "other": {"command": "npx", "args": ["-y", "x"]}\n  }\n}\n'


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.tmp"))


@pytest.fixture
def open_umask() -> Iterator[None]:
    """umask 000: a file created without an explicit mode is world-writable and world-readable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _config(client_file, mode: int) -> Path:
    path = client_file("cursor")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ORIGINAL, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o640], ids=oct)
def test_backup_and_config_keep_the_original_mode(client_file, cli, mode):
    path = _config(client_file, mode)
    code, _, err = cli("install", "cursor")
    assert code == 0, err
    (backup,) = backups(path)
    assert backup.read_text(encoding="utf-8") == ORIGINAL
    assert mode_of(backup) == mode
    assert mode_of(path) == mode
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("mode", [0o600, 0o640], ids=oct)
def test_an_open_umask_does_not_widen_the_backup(client_file, cli, open_umask, mode):
    path = _config(client_file, mode)
    assert cli("install", "cursor")[0] == 0
    (backup,) = backups(path)
    assert mode_of(backup) == mode and mode_of(path) == mode


def test_symlinked_private_config_backup_sits_by_the_target_with_its_mode(client_file, cli, fake_home, open_umask):
    real = fake_home / "dotfiles" / "cursor-mcp.json"
    real.parent.mkdir()
    real.write_text(ORIGINAL, encoding="utf-8")
    real.chmod(0o600)
    link = client_file("cursor")
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    assert cli("install", "cursor")[0] == 0
    # Written through the link, as before: the link stays a link, the backup is the target's.
    assert link.is_symlink() and "mcp-access-proxy" in real.read_text(encoding="utf-8")
    (backup,) = backups(real)
    assert not backup.is_symlink() and backup.read_text(encoding="utf-8") == ORIGINAL
    assert mode_of(backup) == 0o600 and mode_of(real) == 0o600
    assert backups(link) == []


def test_uninstall_backup_keeps_the_mode_too(client_file, cli):
    path = _config(client_file, 0o600)
    assert cli("install", "cursor")[0] == 0
    assert cli("install", "cursor", "--uninstall")[0] == 0
    assert [mode_of(b) for b in backups(path)] == [0o600, 0o600]


# A full disk in the middle of the backup: RLIMIT_FSIZE makes writes past a few bytes fail with EFBIG,
# as ENOSPC would. Run in a child process, since the limit applies to the whole process.
_FULL_DISK = """
import resource, signal, sys
from mcp_proxy.cli import run
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (40, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(run(["install", "cursor", "--config-file", sys.argv[1]]))
"""


def test_a_backup_that_cannot_be_written_leaves_no_partial_copy(tmp_path, fake_home):
    path = tmp_path / "mcp.json"
    path.write_text(ORIGINAL, encoding="utf-8")
    path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "nothing was changed" in proc.stderr
    assert path.read_text(encoding="utf-8") == ORIGINAL
    assert backups(path) == [] and leftovers(tmp_path) == []
