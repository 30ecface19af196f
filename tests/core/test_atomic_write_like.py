"""`atomic_write_like`: a copy no more readable than the file it copies, whole or absent."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mcp_proxy import fsutil
from mcp_proxy.fsutil import atomic_write_like

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits and groups")


def _stat_with(original: os.stat_result, *, gid: int) -> os.stat_result:
    fields = list(original)
    fields[stat.ST_GID] = gid
    return os.stat_result(fields)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644], ids=oct)
def test_mode_is_the_originals_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"secret")
    source.chmod(mode)
    old = os.umask(0)
    try:
        atomic_write_like(tmp_path / "copy", b"secret", source.stat())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == mode
    assert (tmp_path / "copy").read_bytes() == b"secret"


def test_group_bits_are_dropped_when_the_group_cannot_be_kept(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    source.chmod(0o640)
    foreign = _stat_with(source.stat(), gid=source.stat().st_gid + 4242)

    def refuse(fd: int, uid: int, gid: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(fsutil.os, "fchown", refuse)
    atomic_write_like(tmp_path / "copy", b"x", foreign)
    # Our group must not get what the original granted its own group.
    assert stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o600


def test_a_failed_write_leaves_neither_target_nor_temporary(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", disk_full)
    with pytest.raises(OSError):
        atomic_write_like(tmp_path / "copy", b"x", source.stat())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]
