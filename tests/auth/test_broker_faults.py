"""The REST token broker when something around a refresh fails: the keychain refuses to store the rotated
token (the vendor has already retired the old refresh token), and the vendor rejects the OAuth app's
credentials (`invalid_client`: a mistyped or rotated client secret, not a dead grant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_proxy.auth import broker as broker_module
from mcp_proxy.auth.errors import AuthUnavailable, SignInRequired
from mcp_proxy.auth.events import AuthEvents
from mcp_proxy.config import SecretError
from tests._support.auth import SCOPED_SECRET, Sandbox
from tests._support.broker import Clock, make_broker, sign_in

pytestmark = pytest.mark.anyio


class FlakyKeychain:
    """Wraps the store's `set`: refuses the next `failures` writes (a locked keychain, a D-Bus hiccup)."""

    def __init__(self, store: Any, failures: int) -> None:
        self.real = store.set
        self.failures = failures
        self.refused = 0
        store.set = self

    def __call__(self, name: str, value: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.refused += 1
            raise SecretError("the OS keychain is not available (KeyringLocked)")
        self.real(name, value)


def signed_in(sandbox: Sandbox, tmp_path: Path) -> tuple[Any, Clock]:
    """A broker signed in at the sandbox, with a clock the test moves (the vendor's and the broker's)."""
    clock = Clock(sandbox.oauth.clock())
    sandbox.oauth.clock = clock
    broker = make_broker(sandbox, tmp_path, clock)
    sign_in(broker)
    return broker, clock


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "SAVE_RETRIES", (0.0, 0.0, 0.0))


async def test_a_refreshed_token_the_keychain_refuses_is_kept_and_stored_later(
        sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    first = await broker.access_token()
    old_refresh = broker.tokens.load().refresh_token
    clock.now += 3000  # due
    keychain = FlakyKeychain(broker.store, failures=100)
    second = await broker.access_token()  # refreshed at the vendor; every write refused: used from memory
    assert second != first and sandbox.oauth.issued["refresh_token"] == 1
    assert keychain.refused == 4  # the first write and three retries
    assert broker.tokens.load().refresh_token == old_refresh  # the keychain still has the retired one
    assert await broker.access_token() == second

    keychain.failures = 0  # the keychain works again; the next refresh uses the live refresh token
    clock.now += 3000
    third = await broker.access_token()
    assert third not in (first, second)
    assert sandbox.oauth.issued["refresh_token"] == 2 and sandbox.oauth.issued["refresh_refused"] == 0
    stored = broker.tokens.load()
    assert stored.access_token == third and stored.refresh_token in sandbox.oauth.active_refresh_tokens
    other = make_broker(sandbox, tmp_path, clock)  # another process finds the live token
    assert await other.access_token() == third
    assert sandbox.oauth.issued["authorization_code"] == 1  # no new sign-in was ever needed


async def test_the_kept_token_is_stored_before_a_forced_refresh(sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(broker.store, failures=4)
    token = await broker.access_token()
    assert keychain.refused == 4
    # The vendor rejects it later (say, a restart of its side): the locked path finds the keychain working,
    # stores the kept record first, and refreshes with its refresh token, not the retired one.
    assert await broker.rejected(token)
    assert sandbox.oauth.issued["refresh_refused"] == 0 and sandbox.oauth.issued["refresh_token"] == 2
    assert broker.tokens.load().refresh_token in sandbox.oauth.active_refresh_tokens


async def test_the_kept_token_is_stored_by_a_later_lookup_once_the_keychain_works(
        sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(broker.store, failures=4)
    kept = await broker.access_token()
    keychain.failures = 0
    assert await broker.access_token() == kept  # not yet: the next try is STORE_RETRY_INTERVAL away
    assert broker.tokens.load().access_token != kept
    clock.now += broker_module.STORE_RETRY_INTERVAL  # still far from due: no refresh, just the store
    assert await broker.access_token() == kept
    assert broker.tokens.load().access_token == kept and broker._unsaved is None
    assert sandbox.oauth.issued["refresh_token"] == 1


async def test_a_logout_elsewhere_ends_the_use_of_a_kept_token(sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(broker.store, failures=4)
    await broker.access_token()  # refreshed, kept in memory
    keychain.failures = 0
    make_broker(sandbox, tmp_path, clock).tokens.forget()  # `logout` in a terminal (no refusal involved)
    clock.now += broker_module.STORE_RETRY_INTERVAL
    with pytest.raises(SignInRequired):
        await broker.access_token()
    assert broker.tokens.load() is None  # the kept token was not written back


async def test_another_process_refused_the_retired_token_and_the_kept_one_survives(
        sandbox: Sandbox, tmp_path: Path) -> None:
    first, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(first.store, failures=4)
    kept = await first.access_token()  # refreshed; the keychain still holds the retired refresh token
    keychain.failures = 0
    second = make_broker(sandbox, tmp_path, clock)  # another process, due too, refreshes with the retired one
    with pytest.raises(SignInRequired):
        await second.access_token()
    assert sandbox.oauth.issued["refresh_refused"] == 1 and second.tokens.load() is None
    # The first process's token is still the live grant: it is stored, not dropped as if after a logout.
    clock.now += broker_module.STORE_RETRY_INTERVAL
    assert await first.access_token() == kept
    assert first.tokens.load().access_token == kept
    assert await make_broker(sandbox, tmp_path, clock).access_token() == kept
    assert sandbox.oauth.issued["authorization_code"] == 1


async def test_one_refused_write_is_retried(sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(broker.store, failures=1)
    token = await broker.access_token()
    assert keychain.refused == 1 and broker.tokens.load().access_token == token
    assert broker._unsaved is None


async def test_a_new_sign_in_elsewhere_wins_over_a_kept_token(sandbox: Sandbox, tmp_path: Path) -> None:
    broker, clock = signed_in(sandbox, tmp_path)
    clock.now += 3000
    keychain = FlakyKeychain(broker.store, failures=4)
    kept = await broker.access_token()
    keychain.failures = 0
    other = make_broker(sandbox, tmp_path, clock)
    sign_in(other)  # `login` in a terminal meanwhile
    fresh = other.tokens.load().access_token
    clock.now += 3000  # both due; this process must not write its kept record over the new sign-in
    token = await broker.access_token()
    assert token not in (kept, fresh) and sandbox.oauth.issued["refresh_refused"] == 0


async def test_invalid_client_keeps_the_grant_and_names_the_client_secret(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(sandbox.oauth.clock())
    sandbox.oauth.clock = clock
    monkeypatch.setenv("PD_CLIENT_SECRET", SCOPED_SECRET)
    events: list[tuple[str, dict]] = []
    record = AuthEvents(emit=lambda event, fields: events.append((event, fields)))
    broker = make_broker(sandbox, tmp_path, clock, events=record, **sandbox.scoped_upstream())
    sign_in(broker)
    first = await broker.access_token()
    refresh_token = broker.tokens.load().refresh_token
    monkeypatch.setenv("PD_CLIENT_SECRET", "a-mistyped-secret")  # rotated on the app, old one still configured

    clock.now += 3000  # due, not expired: the current token goes on working
    assert await broker.access_token() == first
    clock.now += 1000  # expired: the call fails with the setting to fix, and the grant stays
    with pytest.raises(AuthUnavailable) as caught:
        await broker.access_token()
    text = str(caught.value)
    assert "invalid_client" in text and "upstreams.pd.client_secret" in text and "env:PD_CLIENT_SECRET" in text
    assert "a-mistyped-secret" not in text and SCOPED_SECRET not in text
    assert caught.value.error_type == "client_rejected"
    assert broker.tokens.load() is not None and refresh_token in sandbox.oauth.active_refresh_tokens
    assert ("auth.refresh_failed", {"upstream": "pd", "user.email": "alice@example.com",
                                    "error.type": "invalid_client"}) in events

    monkeypatch.setenv("PD_CLIENT_SECRET", SCOPED_SECRET)  # fixed: the same sign-in works again
    assert await broker.access_token() != first
    assert sandbox.oauth.issued["authorization_code"] == 1
