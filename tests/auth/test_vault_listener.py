"""The token vault (long values split for Windows' 2560-byte limit, damage detected) and the loopback
listener's refusals (wrong path, missing code, state, a busy port)."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from mcp_proxy.auth.errors import SignInError
from mcp_proxy.auth.loopback import CallbackListener
from mcp_proxy.auth.vault import CHUNK_CHARS, SecretVault, TokenRecord, TokenStore
from mcp_proxy.config import SecretError, SecretStore
from mcp_proxy.paths import resolve_paths
from mcp_proxy.sandbox.asgi_thread import free_port


@pytest.fixture
def vault(tmp_path: Path) -> SecretVault:
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(tmp_path)})
    return SecretVault(SecretStore("file", paths.data_dir / "secrets.json"), paths)


def raw(vault: SecretVault) -> dict[str, str]:
    return json.loads(vault.store.file_path.read_text())


def test_long_values_are_split_and_read_back(vault: SecretVault) -> None:
    value = {"access_token": "x" * 2600, "refresh_token": "r" * 300}
    vault.put_json("oauth:mon", value)
    entries = raw(vault)
    assert entries["oauth:mon"].startswith("chunked:3:")
    assert all(len(v) <= CHUNK_CHARS for v in entries.values())
    assert vault.get_json("oauth:mon") == value
    vault.put_json("oauth:mon", {"access_token": "short"})  # shrinking removes the old parts
    assert set(raw(vault)) == {"oauth:mon"} and vault.get_json("oauth:mon") == {"access_token": "short"}
    vault.put_json("oauth:mon", value)
    assert vault.delete("oauth:mon") and raw(vault) == {}


def test_a_damaged_entry_is_reported_not_misread(vault: SecretVault) -> None:
    vault.put_json("oauth:mon", {"access_token": "y" * 2500})
    vault.store.set("oauth:mon#2", "tampered")
    with pytest.raises(SecretError, match="damaged; sign in again"):
        vault.get_json("oauth:mon")


def test_token_record_repr_and_metadata_hold_no_token(tmp_path: Path) -> None:
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(tmp_path)})
    tokens = TokenStore("pd", SecretStore("file", paths.data_dir / "secrets.json"), paths)
    record = TokenRecord("pdus+_0XSECRETACCESS", "pdus+_1XSECRETREFRESH", 2e9, 1e9, 1, "app",
                         identity_email="alice@example.com")
    tokens.save(record)
    assert "SECRET" not in repr(record)
    assert "SECRET" not in tokens.meta_path.read_text()
    assert oct(tokens.meta_path.stat().st_mode & 0o777) == "0o600"
    assert tokens.load().refresh_token == "pdus+_1XSECRETREFRESH"
    assert tokens.info().identity_email == "alice@example.com"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def listener(port: int, on_code=None) -> CallbackListener:
    return CallbackListener(f"http://localhost:{port}/callback", "the-state", on_code,
                            where="upstreams.pd.redirect_uri", vendor="PagerDuty")


def test_the_listener_answers_only_its_path_and_checks_state_and_code() -> None:
    port = free_port()
    cb = listener(port, on_code=lambda code, iss: "You are signed in.")
    cb.start()
    try:
        assert get(f"http://127.0.0.1:{port}/favicon.ico")[0] == 404
        assert not cb.done.is_set()
        status, body = get(f"http://127.0.0.1:{port}/callback?state=the-state")
        assert status == 200 and "without an authorization code" in body
        assert cb.outcome is not None and not cb.outcome.ok
    finally:
        cb.close()
    cb = listener(port, on_code=lambda code, iss: f"You are signed in ({len(code)}).")
    cb.start()
    try:
        status, body = get(f"http://127.0.0.1:{port}/callback?code=abc&state=the-state")
        assert status == 200 and "You are signed in (3)." in body and cb.outcome.ok
        assert "already finished" in get(f"http://127.0.0.1:{port}/callback?code=abc&state=the-state")[1]
    finally:
        cb.close()


def test_the_listener_reports_denial_and_a_foreign_state() -> None:
    port = free_port()
    cb = listener(port)
    cb.start()
    try:
        body = get(f"http://127.0.0.1:{port}/callback?error=access_denied&state=the-state")[1]
        assert "declined" in body and "Allow" in cb.outcome.message
    finally:
        cb.close()
    cb = listener(port)
    cb.start()
    try:
        # A foreign state is refused with a page that says so, and does not end the wait: the genuine redirect
        # may still come (a stale tab, or a local web page pointing the browser at the callback).
        status, body = get(f"http://127.0.0.1:{port}/callback?code=abc&state=someone-else")
        assert status == 200 and "state mismatch" in body
        assert cb.outcome is None and not cb.done.is_set() and "state mismatch" in cb.foreign_note()
        get(f"http://127.0.0.1:{port}/callback?code=genuine&state=the-state")
        assert cb.outcome.ok and cb.outcome.code == "genuine"
    finally:
        cb.close()


def test_a_busy_port_names_the_port_and_the_fix() -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        with pytest.raises(SignInError) as caught:
            listener(port).start()
    text = str(caught.value)
    assert f"port {port} is already in use" in text
    assert f'upstreams.pd.redirect_uri = "http://localhost:{port + 1}/callback"' in text
    cb = listener(port)  # free again: binds
    cb.start()
    cb.close()
