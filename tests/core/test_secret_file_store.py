"""The opt-in file secret store under several processes: every write under one lock, none lost, always JSON."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_proxy.config import SecretError, SecretStore
from mcp_proxy.config import secrets as secrets_module
from mcp_proxy.fsutil import FileLock

WRITERS = str(Path(__file__).parent.parent / "_support" / "secret_writers.py")
TOKEN_ENTRY = "oauth:pd"
SETTERS, NAMES_EACH, TOKEN_ROUNDS = 4, 25, 40


def _spawn(*argv: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_ACCESS_PROXY")}
    return subprocess.Popen([sys.executable, WRITERS, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_setters_and_a_token_refresh_lose_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    secrets = data_dir / "secrets.json"
    secrets.write_text(json.dumps({"kept": "from-before"}), encoding="utf-8")
    children = [_spawn("set", str(secrets), f"s{n}", str(NAMES_EACH)) for n in range(SETTERS)]
    children.append(_spawn("token", str(data_dir), str(TOKEN_ROUNDS)))
    for child in children:  # every one imported and at its start line
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    (data_dir / "GO").touch()
    reads = 0
    while any(c.poll() is None for c in children):
        # A reader (the proxy resolving a secret) sees the old or the new file, never a torn one.
        json.loads(secrets.read_text(encoding="utf-8"))
        reads += 1
        time.sleep(0.002)
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    data = json.loads(secrets.read_text(encoding="utf-8"))
    names = [f"s{n}-{i}" for n in range(SETTERS) for i in range(NAMES_EACH)]
    lost = [name for name in names if data.get(name) != f"value-{name}"]
    assert lost == [], f"{len(lost)} names lost"
    # The rotated refresh token is the last one written, not a retired one put back by a setter.
    assert json.loads(data[TOKEN_ENTRY]) == {"refresh_token": f"rotated-{TOKEN_ROUNDS}", "generation": TOKEN_ROUNDS}
    assert data["kept"] == "from-before"
    assert reads > 0
    if os.name == "posix":
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


HOLDER = """
import sys, time
from pathlib import Path
from mcp_proxy.fsutil import FileLock
lock = FileLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_writer_waits_for_the_lock_and_says_what_to_do_when_it_cannot_get_it(tmp_path: Path,
                                                                              monkeypatch) -> None:
    store = SecretStore("file", tmp_path / "secrets.json", warn=False)
    store.set("first", "one")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.lock_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(secrets_module, "LOCK_TIMEOUT", 0.3)
        for write in (lambda: store.set("second", "very-secret-value"), lambda: store.delete("first")):
            with pytest.raises(SecretError) as caught:
                write()
            message = str(caught.value)
            assert str(tmp_path / "secrets.json") in message and "try again" in message.lower()
            assert "very-secret-value" not in message
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((tmp_path / "secrets.json").read_text(encoding="utf-8")) == {"first": "one"}
    # Released by the holder's death: writing works again.
    store.set("second", "two")
    assert store.get("second") == "two"


def test_secret_set_through_the_cli_takes_the_lock(tmp_path: Path, monkeypatch, capsys) -> None:
    import io

    from mcp_proxy.cli import run

    config = tmp_path / "config.toml"
    config.write_text('[user]\nemail = "a@example.com"\n[secrets]\nstore = "file"\n', encoding="utf-8")
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MCP_ACCESS_PROXY_CONFIG", raising=False)
    secrets = tmp_path / "home" / "data" / "secrets.json"
    lock_path = SecretStore("file", secrets).lock_path
    assert lock_path is not None
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(secrets_module, "LOCK_TIMEOUT", 0.3)
        monkeypatch.setattr(sys, "stdin", io.StringIO("s3cr3t-value\n"))
        assert run(["secret", "set", "pd-key", "--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert "secret file" in err and "s3cr3t-value" not in err
        assert not secrets.exists()
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cr3t-value\n"))
    assert run(["secret", "set", "pd-key", "--config", str(config)]) == 0
    assert json.loads(secrets.read_text(encoding="utf-8")) == {"pd-key": "s3cr3t-value"}
    assert run(["secret", "delete", "pd-key", "--config", str(config)]) == 0
    assert json.loads(secrets.read_text(encoding="utf-8")) == {}


def test_the_lock_is_the_file_stores_own_and_nested_under_the_vaults(tmp_path: Path) -> None:
    # The vault holds its lock across several store writes (a chunked token): the store's lock must be another
    # file, or the vault would wait on itself.
    from mcp_proxy.auth.vault import SecretVault
    from mcp_proxy.paths import Paths

    paths = Paths(tmp_path / "config", tmp_path / "data", tmp_path / "cache", tmp_path / "logs")
    store = SecretStore("file", paths.data_dir / "secrets.json", warn=False)
    vault = SecretVault(store, paths)
    start = time.monotonic()
    vault.put_json(TOKEN_ENTRY, {"access_token": "x" * 5000})
    assert time.monotonic() - start < 5
    assert vault.get_json(TOKEN_ENTRY) == {"access_token": "x" * 5000}
    with FileLock(store.lock_path, timeout=1):  # free once the vault is done
        pass


def test_an_unreadable_file_is_not_overwritten(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text("{not json", encoding="utf-8")
    store = SecretStore("file", secrets, warn=False)
    with pytest.raises(SecretError, match="unreadable"):
        store.set("name", "value")
    with pytest.raises(SecretError, match="unreadable"):
        store.delete("name")
    assert secrets.read_text(encoding="utf-8") == "{not json"


def test_the_keychain_store_has_no_file_lock() -> None:
    assert SecretStore("keyring").lock_path is None
