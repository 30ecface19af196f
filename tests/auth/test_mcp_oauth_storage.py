"""The MCP upstreams' token storage when the keychain refuses to store a refreshed token: the server has
already retired the old refresh token, so the new record is kept in memory and stored at the next refresh,
unless a new sign-in or a logout happened meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.shared.auth import OAuthToken

from mcp_proxy.auth.mcp_oauth_storage import KeychainTokenStorage
from mcp_proxy.config import SecretError, SecretStore, parse_config
from mcp_proxy.paths import resolve_paths

pytestmark = pytest.mark.anyio


def storage(home: Path) -> KeychainTokenStorage:
    config = parse_config({"secrets": {"store": "file"}, "upstreams": {"mon": {
        "kind": "mcp", "url": "http://127.0.0.1:9/mcp", "auth": "oauth", "client_id": "static-client"}}})
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(home)})
    return KeychainTokenStorage(config.upstreams["mon"], SecretStore("file", paths.data_dir / "secrets.json"), paths)


def token(n: int) -> OAuthToken:
    return OAuthToken(access_token=f"access-token-{n:04d}", refresh_token=f"refresh-token-{n:04d}", expires_in=3600)


async def test_a_refreshed_token_the_keychain_refuses_is_kept_and_stored_at_the_next_refresh(tmp_path: Path):
    s = storage(tmp_path)
    await s.set_tokens(token(1))  # signed in
    real_set = s.store.set
    calls: list[str] = []

    def refuse(name: str, value: str) -> None:
        calls.append(name)
        raise SecretError("the OS keychain is not available (KeyringLocked)")

    s.store.set = refuse
    await s.set_tokens(token(2))  # a refresh: the server has retired refresh-token-0001
    assert calls and s.record.access_token == "access-token-0002"
    assert (await s.get_tokens()).access_token == "access-token-0002"  # not the retired one in the keychain
    s.store.set = real_set
    s.store_unsaved()
    assert s.unsaved is None and s.tokens.load().refresh_token == "refresh-token-0002"


async def test_a_new_sign_in_elsewhere_wins_over_the_kept_token(tmp_path: Path):
    s = storage(tmp_path)
    await s.set_tokens(token(1))
    real_set = s.store.set
    s.store.set = lambda name, value: (_ for _ in ()).throw(SecretError("locked"))
    await s.set_tokens(token(2))
    s.store.set = real_set
    other = storage(tmp_path)
    other.fresh = True  # `login` in a terminal
    await other.set_tokens(token(3))
    assert (await s.get_tokens()).access_token == "access-token-0003" and s.unsaved is None
    s.store_unsaved()
    assert s.tokens.load().access_token == "access-token-0003"


async def test_a_locked_keychain_does_not_make_the_process_forget_its_token(tmp_path: Path):
    s = storage(tmp_path)
    await s.set_tokens(token(1))
    s.store.get = lambda name: (_ for _ in ()).throw(SecretError("locked"))
    assert (await s.get_tokens()).access_token == "access-token-0001"
    assert s.unreadable and s.record is not None and s.record.generation == 1
