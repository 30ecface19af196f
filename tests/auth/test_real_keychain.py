"""The secret store and token rotation against a real Secret Service (gnome-keyring on a private D-Bus session,
tests/_support/keychain.py) rather than the opt-in file store the other tests use: `SecretStore("keyring")` and
the vault in this process, `secret set` and sign-in in the real proxy process, and two proxy processes refreshing
one rotating token. Without gnome-keyring and dbus-daemon installed these tests skip and say what to install;
CI installs them and sets MCP_PROXY_TEST_REQUIRE_KEYCHAIN=1, so there they cannot skip."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from mcp_proxy.auth.vault import CHUNK_CHARS, SecretVault, TokenStore
from mcp_proxy.config import SecretError, SecretStore
from mcp_proxy.paths import resolve_paths
from tests._support.auth import AuthProxy
from tests._support.keychain import BACKEND, SecretService, running_secret_service
from tests._support.proxy import PY, text_of


@pytest.fixture
def secret_service() -> Iterator[SecretService]:
    with running_secret_service() as service:
        yield service


@pytest.fixture
def real_keyring(secret_service: SecretService, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretService]:
    """`keyring` in this process on the throwaway Secret Service for one test, and back to what it was after.
    The backend is set, not chosen again: keyring caches which backends are viable at its first use, and the
    service's probe (a fresh process) has already shown that keyring picks the Secret Service by itself."""
    import keyring
    from keyring.backends import SecretService as SecretServiceBackend

    previous = keyring.get_keyring()
    for name, value in secret_service.env({}).items():  # the backend connects to the bus these name, per call
        monkeypatch.setenv(name, value)
    keyring.set_keyring(SecretServiceBackend.Keyring())
    try:
        yield secret_service
    finally:
        keyring.set_keyring(previous)


def keychain_env(aproxy: AuthProxy, service: SecretService) -> dict[str, str]:
    return service.env(aproxy.env())


def use_keychain(aproxy: AuthProxy) -> None:
    aproxy.config.write_text(aproxy.config.read_text().replace('store = "file"', 'store = "keyring"'))


# -- the secret store ----------------------------------------------------------------------------------------
def test_the_keyring_store_sets_gets_and_deletes_through_the_secret_service(real_keyring: SecretService) -> None:
    store = SecretStore("keyring")
    assert store.keyring_available() == (True, BACKEND)
    assert store.get("pd-client-secret") is None
    store.set("pd-client-secret", "first-value")
    assert store.get("pd-client-secret") == "first-value"
    store.set("pd-client-secret", "sécond välue ✓")  # replaces the value; any text
    assert store.get("pd-client-secret") == "sécond välue ✓"
    assert store.delete("pd-client-secret") is True
    assert store.get("pd-client-secret") is None
    assert store.delete("pd-client-secret") is False  # nothing to delete: not an error


def test_long_values_are_split_and_joined_through_the_secret_service(real_keyring: SecretService, tmp_path) -> None:
    store = SecretStore("keyring")
    vault = SecretVault(store, resolve_paths({"MCP_ACCESS_PROXY_HOME": str(tmp_path)}))
    long = {"access_token": "x" * (3 * CHUNK_CHARS)}
    vault.put_json("oauth:mcp", long)
    assert vault.get_json("oauth:mcp") == long
    assert store.get("oauth:mcp#3") is not None
    vault.put_json("oauth:mcp", {"access_token": "short"})  # the parts of the long value go
    assert vault.get_json("oauth:mcp") == {"access_token": "short"}
    assert store.get("oauth:mcp#1") is None and store.get("oauth:mcp#3") is None
    assert vault.delete("oauth:mcp") and store.get("oauth:mcp") is None


def test_a_secret_set_by_the_command_is_read_back_here(real_keyring: SecretService, aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    use_keychain(aproxy)
    done = subprocess.run([PY, "-m", "mcp_proxy", "--config", str(aproxy.config), "secret", "set", "audit-token"],
                          input="from-the-command\n", env=keychain_env(aproxy, real_keyring), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "from-the-command" not in done.stdout + done.stderr
    assert SecretStore("keyring").get("audit-token") == "from-the-command"
    assert not (aproxy.home / "data" / "secrets.json").exists()


def test_a_keyring_daemon_that_went_away_is_reported_with_what_to_do(real_keyring: SecretService) -> None:
    store = SecretStore("keyring")
    store.set("pd-client-secret", "the-value")
    real_keyring.stop_keyring()
    with pytest.raises(SecretError) as caught:
        store.get("pd-client-secret")
    text = str(caught.value)
    assert "keychain is not available" in text and 'store = "file"' in text and "the-value" not in text


def test_a_session_bus_that_went_away_is_reported_with_what_to_do(real_keyring: SecretService) -> None:
    store = SecretStore("keyring")
    store.set("pd-client-secret", "the-value")
    real_keyring.stop()  # the user's session ended under a running proxy
    with pytest.raises(SecretError) as caught:
        store.get("pd-client-secret")
    text = str(caught.value)
    assert "keychain is not available" in text and 'store = "file"' in text and "the-value" not in text


# -- tokens --------------------------------------------------------------------------------------------------
async def call(client: Any, name: str = "pd_get_current_user") -> str:
    with anyio.fail_after(90):
        result = await client.call_tool(name, {})
    assert not result.is_error, text_of(result)
    return text_of(result)


@pytest.mark.anyio
async def test_two_processes_share_one_rotating_token_through_the_keychain(
        real_keyring: SecretService, aproxy: AuthProxy) -> None:
    aproxy.write_pd()
    use_keychain(aproxy)
    env = keychain_env(aproxy, real_keyring)
    server = aproxy.sandbox.oauth
    server.expires_in = 1  # due at once: less than the 30 s refresh margin is left
    done = aproxy.run("login", "pd", env=env)
    assert done.returncode == 0, done.stderr
    server.expires_in = 3600
    tokens = TokenStore("pd", SecretStore("keyring"), resolve_paths({"MCP_ACCESS_PROXY_HOME": str(aproxy.home)}))
    signed_in = tokens.load()
    assert signed_in is not None and signed_in.refresh_token in server.active_refresh_tokens

    server.refresh_delay = 1.0  # the first refresh is still running when the second process wants one
    async with aproxy.client(env=env) as first, aproxy.client(env=env) as second:
        results: list[str] = []

        async def one(client: Any) -> None:
            results.append(await call(client))

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first)
            tg.start_soon(one, second)
        assert len(results) == 2 and all("alice@example.com" in r for r in results)
        assert server.issued["refresh_token"] == 1 and server.issued["refresh_refused"] == 0
        # The keychain holds the one live refresh token: a token the vendor rejects refreshes again, once.
        stored = tokens.load()
        assert stored is not None and server.active_refresh_tokens == {stored.refresh_token}
        server.expire_access_tokens()
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, first)
            tg.start_soon(one, second)
        assert len(results) == 4 and all("alice@example.com" in r for r in results)
        assert server.issued["refresh_token"] == 2 and server.issued["refresh_refused"] == 0
    stored = tokens.load()
    assert stored is not None and server.active_refresh_tokens == {stored.refresh_token}
    assert stored.generation > signed_in.generation
    assert server.issued["authorization_code"] == 1
    assert not (aproxy.home / "data" / "secrets.json").exists()  # the keychain, not the file store
    aproxy.assert_no_secret_leaked()
