"""The token broker of one upstream with per-user OAuth: hands out access tokens, refreshes them before
they expire, starts sign-ins, signs out.

Several proxy processes share one token (Claude Desktop starts two, each IDE one more) and the vendor
rotates refresh tokens: a used refresh token is dead. So a refresh runs under a cross-process file
lock: take the lock, read the stored token again (another process may have refreshed it meanwhile),
refresh only if it is still due, store the new refresh token, then release. A refresh the vendor
refuses (`invalid_grant`) forgets the token and asks for a sign-in (`SignInRequired`); a token
endpoint that is merely unreachable is retried later while the old token still works.

When to refresh: when less than a quarter of the token's lifetime is left, but never earlier than
24 hours before expiry (the rule of PagerDuty's own client, right for its 30-day classic tokens) and
never later than 30 seconds before (clock skew, request time). PagerDuty's rule alone would refresh
a 1-day scoped token on every call.

A `logout` or a `login` as someone else in another process reaches this one at its next call: every lookup
stats the token's small metadata file (vault.py: `TokenStore.signature`), which every sign-in, refresh and
sign-out rewrites or removes, and reads the keychain again only when it changed. What it reads then is
reconciled with a refreshed token kept in memory as before (`_reconcile`): a sign-out or a new sign-in wins.
`stored_sign_in_change` is the same look for `serve`'s idea of who the user is (server/identity.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import anyio

from mcp_proxy.auth import endpoint
from mcp_proxy.auth.broker_signin import (
    SESSION_LIFETIME,
    SignIns,
    log_signed_in,
    revoke_record,
    sign_in_info,
    signed_in_record,
)
from mcp_proxy.auth.errors import AuthUnavailable, SignInError, SignInRequired, TokenEndpointError
from mcp_proxy.auth.events import NO_EVENTS, AuthEvents, PendingEvents, StoredSignIn
from mcp_proxy.auth.providers import Provider, granted_scopes, missing_scopes, provider_for_upstream
from mcp_proxy.auth.session import SignInHandle, SignInInfo, SignInTarget
from mcp_proxy.auth.vault import NOT_LOOKED, Signature, TokenInfo, TokenRecord, TokenStore, refresh_lock
from mcp_proxy.config import OAuthSettings, SecretError, SecretStore, UpstreamConfig
from mcp_proxy.fsutil import FileLock, LockTimeout
from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

MIN_MARGIN = 30.0
MAX_MARGIN = 24 * 3600.0
RETRY_AFTER_FAILURE = 60.0  # seconds before an unreachable token endpoint is tried again
LOCK_WAIT = 30.0
SAVE_RETRIES = (0.2, 0.5, 1.0)  # pauses between attempts to store a refreshed token
STORE_RETRY_INTERVAL = 30.0  # then, while it is kept in memory, a token lookup tries again this often


def refresh_margin(issued_at: float, expires_at: float) -> float:
    return max(MIN_MARGIN, min(MAX_MARGIN, (expires_at - issued_at) / 4))


class TokenBroker:
    """`events`: what `serve` hears of this upstream's tokens (audit events, values to redact, sign-ins)."""

    def __init__(self, cfg: UpstreamConfig, paths: Paths, store: SecretStore, *,
                 clock: Callable[[], float] = time.time, events: AuthEvents = NO_EVENTS) -> None:
        if cfg.oauth is None:
            raise ValueError(f"upstreams.{cfg.key} has no OAuth settings")
        self.cfg = cfg
        self.oauth: OAuthSettings = cfg.oauth  # the OAuth app: a broker exists only for an upstream that has one
        self.key = cfg.key
        self.paths = paths
        self.store = store
        self.clock = clock
        self.provider: Provider | None = provider_for_upstream(cfg)
        self.vendor = self.provider.name if self.provider else cfg.key
        oauth = self.oauth
        self.authorize_url = oauth.authorize_url or (self.provider.authorize_url if self.provider else "")
        self.token_url = oauth.token_url or (self.provider.token_url if self.provider else "")
        self.revoke_url = oauth.revoke_url or (self.provider.revoke_url if self.provider else None)
        self.scopes = tuple(oauth.scopes)
        self.tokens = TokenStore(cfg.key, store, paths)
        self.port = urlsplit(oauth.redirect_uri).port or 80
        self._cached: TokenRecord | None = None
        self._seen: Signature = NOT_LOOKED  # the metadata file's signature when `_cached` was read or written
        self._looked: Signature = NOT_LOOKED  # ... when `stored_sign_in_change` last looked
        # A refreshed record the keychain refused to store, and the refresh token it replaced: used from memory
        # (the old refresh token is dead at the vendor) and stored as soon as the keychain takes it.
        self._unsaved: TokenRecord | None = None
        self._unsaved_over: str | None = None
        self._store_retry_at = 0.0
        self._thread_lock = threading.Lock()
        self._retry_at = 0.0
        self._events = events
        self._pending = PendingEvents(events.emit)  # noted in worker threads, emitted on the loop
        self._revealed: TokenRecord | None = None  # the last record whose tokens went to `events.reveal`
        target = SignInTarget(cfg.key, self.vendor, self.authorize_url, self.scopes, self.where("redirect_uri"),
                              tuple(self.provider.authorize_params.items()) if self.provider else ())
        self._sign_ins = SignIns(target, self.port, paths.locks_dir / f"oauth-callback-{self.port}.lock",
                                 prepare=self.sign_in_client, stored=self.stored_sign_in,
                                 complete=self.complete_sign_in, announce=events.announce)

    @classmethod
    def for_upstream(cls, cfg: UpstreamConfig, paths: Paths, store: SecretStore, *,
                     clock: Callable[[], float] = time.time, events: AuthEvents = NO_EVENTS) -> TokenBroker:
        return cls(cfg, paths, store, clock=clock, events=events)

    def where(self, key: str) -> str:
        return f"upstreams.{self.key}.{key}"

    # -- what is known without the keychain ----------------------------------------------
    def token_info(self) -> TokenInfo | None:
        info = self.tokens.info()
        if info is None or (info.client_id and info.client_id != self.oauth.client_id):
            return None
        return info

    def stored_sign_in_change(self) -> StoredSignIn | None:
        """Cheap (one stat, no keychain): None while the stored sign-in is the one this last looked at, else the
        sign-in stored now (from the metadata file), `signed_in` False after a sign-out. Call it on the event loop."""
        signature = self.tokens.signature()
        if signature == self._looked:
            return None
        self._looked = signature
        info = self.token_info()
        return StoredSignIn(self.key, info.identity_email if info else None, signed_in=info is not None)

    @property
    def identity_email(self) -> str | None:
        record = self._cached
        if record is not None:
            return record.identity_email
        info = self.token_info()
        return info.identity_email if info else None

    @property
    def region(self) -> str | None:
        """The region the signed-in account lives in, when the config leaves it to the sign-in."""
        if not self.oauth.region_from_token:
            return None
        record = self._cached
        if record is not None:
            return record.region
        info = self.token_info()
        return info.region if info else None

    # -- access tokens -----------------------------------------------------------------------
    async def access_token(self) -> str:
        """A valid access token, refreshed if due. Raises SignInRequired or AuthUnavailable."""
        record = self._cached
        if record is None or self.tokens.signature() != self._seen or self._due(record) or (
                self._unsaved is not None and self.clock() >= self._store_retry_at):
            try:
                record = await anyio.to_thread.run_sync(self._fresh_record)
            finally:
                self._pending.flush()
        if record is not self._revealed:
            self._revealed = record
            self._events.reveal_all(record.secrets())
        return record.access_token

    async def rejected(self, token: str | None) -> bool:
        """The vendor answered 401 to `token`. True when a different token is now available (another
        process refreshed, or a refresh worked): try once more. Raises SignInRequired when the grant is dead."""
        try:
            return await anyio.to_thread.run_sync(self._after_rejection, token)
        finally:
            self._pending.flush()

    def _due(self, record: TokenRecord, now: float | None = None) -> bool:
        if record.expires_at is None:
            return False
        now = self.clock() if now is None else now
        return now >= record.expires_at - refresh_margin(record.issued_at, record.expires_at)

    def _expired(self, record: TokenRecord) -> bool:
        return record.expires_at is not None and self.clock() >= record.expires_at - 5

    def _load(self, locked: bool = False) -> TokenRecord | None:
        """The stored record (`locked`: the caller holds the cross-process lock)."""
        try:
            record = self.tokens.load()
        except SecretError as exc:
            if self._unsaved is not None:
                return self._unsaved
            raise AuthUnavailable(f"the token for '{self.key}' cannot be read: {exc}", "keychain_unavailable") from None
        record = self._reconcile(record, locked)
        if record is not None and record.client_id and record.client_id != self.oauth.client_id:
            log.info("the stored token of %s belongs to another OAuth app (client_id changed); sign-in needed",
                     self.key)
            return None
        return record

    def _reconcile(self, stored: TokenRecord | None, locked: bool) -> TokenRecord | None:
        """With a refreshed record the keychain refused earlier: while the keychain still holds the record it
        replaced, ours is the live one (stored now if the caller holds the lock and the keychain takes it);
        once the keychain holds anything else (a new sign-in, or nothing after `logout`), that wins."""
        unsaved = self._unsaved
        if unsaved is None:
            return stored
        if stored is None and self.tokens.refused_was(self._unsaved_over):
            pass  # another process refused the retired refresh token and removed it: ours is still the live one
        elif stored is None or stored.refresh_token != self._unsaved_over:
            self._unsaved = self._unsaved_over = None
            return stored
        if not locked:
            return unsaved
        try:
            self.tokens.save(unsaved)
        except SecretError:
            return unsaved
        log.warning("the refreshed %s token is now stored in the keychain", self.key)
        self._seen = self.tokens.signature()  # our own write, under the lock
        self._unsaved = self._unsaved_over = None
        return unsaved

    def _locked(self) -> FileLock:
        return refresh_lock(self.paths, self.key, timeout=LOCK_WAIT)

    def _fresh_record(self) -> TokenRecord:
        with self._thread_lock:
            seen = self.tokens.signature()  # before reading the keychain: a write after it shows at the next call
            record = self._cached
            if record is not None and seen != self._seen:
                log.info("the stored %s sign-in changed (a login, logout or refresh elsewhere); reading it again",
                         self.key)
            elif record is not None and not self._due(record):
                return self._current(record)
            record = self._load()
            self._seen = seen
            if record is None:
                self._cached = None
                raise SignInRequired(self.key, "no token is stored")
            if not self._due(record):
                self._cached = record
                return self._current(record)
            try:
                with self._locked():
                    reloaded = self._load(locked=True)  # another process may have refreshed while we waited
                    if reloaded is None:
                        self._cached = None
                        raise SignInRequired(self.key, "the token was removed")
                    record = reloaded
                    if not self._due(record):
                        self._cached = record
                        return record
                    return self._refresh_locked(record, forced=False)
            except LockTimeout:
                if not self._expired(record):
                    return record
                raise AuthUnavailable(f"another proxy process has been refreshing the '{self.key}' token for "
                                      f"{LOCK_WAIT:g} s; try again in a moment", "refresh_busy") from None

    def _current(self, record: TokenRecord) -> TokenRecord:
        """`record`, the one in use and not due; a refreshed one kept in memory is first stored if it is time to
        try again. Raises SignInRequired when that finds it is not ours to use any more."""
        if self._unsaved is None or record is not self._unsaved or self.clock() < self._store_retry_at:
            return record
        self._store_unsaved()
        if self._cached is None:  # `logout` meanwhile: the kept token is not ours to use any more
            raise SignInRequired(self.key, "the token was removed")
        return self._cached

    def _store_unsaved(self) -> None:
        """Try once more to store the refreshed record the keychain refused, without waiting for the lock."""
        self._store_retry_at = self.clock() + STORE_RETRY_INTERVAL
        lock = refresh_lock(self.paths, self.key)
        if not lock.try_acquire():
            return
        try:
            self._cached = self._load(locked=True)
        except AuthUnavailable:
            pass
        finally:
            lock.release()

    def _after_rejection(self, token: str | None) -> bool:
        with self._thread_lock:
            try:
                with self._locked():
                    record = self._load(locked=True)
                    if record is None:
                        self._cached = None
                        raise SignInRequired(self.key, "no token is stored")
                    if token is not None and record.access_token != token:
                        self._cached = record  # someone else refreshed meanwhile
                        return True
                    new = self._refresh_locked(record, forced=True)
                    return new.access_token != token
            except LockTimeout:
                raise AuthUnavailable(f"another proxy process has been refreshing the '{self.key}' token for "
                                      f"{LOCK_WAIT:g} s; try again in a moment", "refresh_busy") from None

    def _refresh_locked(self, record: TokenRecord, *, forced: bool) -> TokenRecord:
        """Refresh while holding the cross-process lock; the new record is stored before the lock is released
        (or, if the keychain refuses it, kept in memory: see _save_refreshed)."""
        fields = {"upstream": self.key, "user.email": record.identity_email}
        if not record.refresh_token:
            if not forced and not self._expired(record):
                return record
            self._forget_locked()
            raise SignInRequired(self.key, "the token expired and cannot be refreshed" if not forced
                                 else f"{self.vendor} no longer accepts the token")
        if not forced and self.clock() < self._retry_at and not self._expired(record):
            self._cached = record
            return record
        client = self.client()
        try:
            response = endpoint.refresh(client, record.refresh_token)
        except TokenEndpointError as exc:
            if exc.refused:  # invalid_grant: the grant is dead, only a new sign-in helps
                self._forget_locked(refused=record.refresh_token)
                self._event("auth.refresh_failed", {**fields, "error.type": exc.error or "refused"})
                log.warning("%s refused to refresh the %s token (%s); a new sign-in is needed", self.vendor, self.key,
                            exc.error)
                raise SignInRequired(self.key, f"{self.vendor} refused to refresh the token: it was revoked, "
                                               "or has expired") from None
            # Anything else leaves the grant alone: a new sign-in would not fix it, and the token may work later.
            self._retry_at = self.clock() + RETRY_AFTER_FAILURE
            if exc.client_rejected:
                self._event("auth.refresh_failed", {**fields, "error.type": exc.error})
                problem = (f"{self.vendor} did not accept the OAuth app's credentials when refreshing the "
                           f"'{self.key}' token ({exc.error}): check {self.client_setting()}; the stored sign-in "
                           "was kept and works again once the app's credentials are right")
                error_type = "client_rejected"
            else:
                self._event("auth.refresh_failed", {**fields, "error.type": exc.error or "token_endpoint_unreachable"})
                problem = f"the '{self.key}' token could not be refreshed ({exc}); the sign-in was kept"
                error_type = "refresh_failed"
            if not forced and not self._expired(record):
                log.warning("%s; using the current token, retrying in %.0f s", problem, RETRY_AFTER_FAILURE)
                self._cached = record
                return record
            log.warning("%s", problem)
            raise AuthUnavailable(problem, error_type) from None
        now = self.clock()
        granted = granted_scopes(self.provider, response.scope, record.scopes or self.scopes) \
            if response.scope is not None else record.scopes
        new = record.with_(
            access_token=response.access_token,
            refresh_token=response.refresh_token or record.refresh_token,  # no rotation: keep the old one
            expires_at=now + response.expires_in if response.expires_in else None,
            issued_at=now, generation=record.generation + 1, scopes=granted,
            missing_scopes=missing_scopes(self.provider, record.requested or self.scopes, granted),
        )
        # In memory first: the vendor has already retired the old refresh token, so losing `new` now would
        # force a new sign-in.
        self._cached = new
        self._retry_at = 0.0
        self._save_refreshed(new, record.refresh_token)
        self._event("auth.refreshed", fields)
        log.info("refreshed the %s token (valid for %s)", self.key,
                 f"{response.expires_in / 3600:.1f} h" if response.expires_in else "an unstated time")
        return new

    def _save_refreshed(self, record: TokenRecord, replaced: str | None) -> None:
        """Store a refreshed record, trying again briefly; if the keychain still refuses, keep it in memory
        (and store it on the next use that finds the keychain working) rather than lose it."""
        problem = None
        for pause in (*SAVE_RETRIES, None):
            try:
                self.tokens.save(record)
                self._unsaved = self._unsaved_over = None
                self._seen = self.tokens.signature()  # our own write, under the lock: no keychain read for it
                return
            except SecretError as exc:
                problem = exc
            if pause is not None:
                time.sleep(pause)
        self._unsaved, self._unsaved_over = record, replaced
        self._store_retry_at = self.clock() + STORE_RETRY_INTERVAL
        log.error("the refreshed %s token could not be stored (%s). This process keeps using it and tries to store "
                  "it again every %.0f s; until then other proxy processes cannot refresh, and if this "
                  "one exits first, `mcp-access-proxy login %s` is needed", self.key, problem, STORE_RETRY_INTERVAL,
                  self.key)

    def _forget_locked(self, refused: str | None = None) -> None:
        self._cached = None
        self._unsaved = self._unsaved_over = None
        try:
            self.tokens.forget(refused)
        except SecretError as exc:
            log.warning("could not remove the dead %s token from the keychain (%s)", self.key, exc)

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        self._pending.add(event, fields)

    def client_setting(self) -> str:
        """The config keys that make up the OAuth app's credentials, for messages."""
        oauth = self.oauth
        if oauth.client_secret is not None:
            return f"{self.where('client_secret')} (the secret {oauth.client_secret}) and {self.where('client_id')}"
        return f"{self.where('client_id')} (and {self.where('client_secret')}, if the app is a confidential one)"

    def client(self) -> endpoint.Client:
        """The OAuth app, with its secret (scoped apps) from the keychain. Raises AuthUnavailable."""
        oauth = self.oauth
        secret = None
        if oauth.client_secret is not None:
            try:
                secret = oauth.client_secret.resolve(self.store)
            except SecretError as exc:
                raise AuthUnavailable(str(exc), "client_secret_missing") from None
        return endpoint.Client(self.token_url, oauth.client_id, secret, oauth.redirect_uri,
                               json_body=bool(self.provider and self.provider.token_request_json))

    # -- sign-in (the browser side is `SignIns`) -----------------------------------------
    async def begin_sign_in(self, lifetime: float = SESSION_LIFETIME) -> SignInHandle:
        """Start listening for the browser and return the session (`url`, `wait`, `close`, `finished`); `url` is
        None when another process runs the sign-in or just completed one. Raises SignInError: keychain unusable,
        client secret missing, callback port busy."""
        return await self._sign_ins.begin(lifetime)

    def begin_sign_in_blocking(self, lifetime: float = SESSION_LIFETIME) -> SignInHandle:
        """For `login`: always a new sign-in, even when a token is stored."""
        return self._sign_ins.begin_blocking(lifetime)

    def sign_in_running_elsewhere(self) -> bool:
        return self._sign_ins.running_elsewhere()

    def sign_in_client(self) -> endpoint.Client:
        """The OAuth app to sign in with, once the keychain is known to take a token: fail now, not after the
        user signed in. Raises SignInError."""
        try:
            self.store.get(self.tokens.secret_name)
        except SecretError as exc:
            raise SignInError(f"the proxy has nowhere to keep your token: {exc}") from None
        try:
            return self.client()
        except AuthUnavailable as exc:
            raise SignInError(f"the OAuth app's client secret is needed to sign in: {exc}") from None

    def stored_sign_in(self) -> SignInInfo | None:
        """The sign-in another process completed, if its token is stored now and usable."""
        info = self.token_info()  # the small file first: no keychain round trip while nothing changed
        if info is None or (info.expires_at is not None and self.clock() >= info.expires_at - 5):
            return None
        try:
            record = self._load()
        except AuthUnavailable:
            return None
        if record is None or self._expired(record):
            return None
        with self._thread_lock:
            self._cached = record
        return sign_in_info(self.key, record)

    def complete_sign_in(self, response: endpoint.TokenResponse) -> SignInInfo:
        """Store the tokens of a completed sign-in (listener thread). Raises SignInError."""
        record = signed_in_record(response, self.cfg, self.oauth, self.provider, self.scopes, self.clock())
        try:
            with self._thread_lock, self._locked():
                try:
                    previous = self.tokens.load()
                except SecretError:
                    previous = None
                if previous is not None:
                    record = record.with_(generation=previous.generation + 1)
                try:
                    self.tokens.save(record)
                except SecretError as exc:
                    raise SignInError(f"signed in, but the token cannot be stored: {exc}") from None
                self._cached = record
                self._seen = self.tokens.signature()
                self._unsaved = self._unsaved_over = None  # a new sign-in replaces a refresh the keychain refused
                self._retry_at = 0.0
        except LockTimeout:
            raise SignInError("another proxy process holds the token lock; try again in a moment") from None
        log_signed_in(self.key, self.vendor, record)
        return sign_in_info(self.key, record)

    # -- sign-out --------------------------------------------------------------------------
    def sign_out(self, revoke: bool = True) -> dict[str, Any]:
        """Forget the token, revoking it first where the provider allows. Returns what happened."""
        result: dict[str, Any] = {"had_token": False, "revoked": None, "detail": None, "identity_email": None}
        with self._thread_lock, self._locked():
            try:
                record = self.tokens.load()
            except SecretError as exc:
                raise AuthUnavailable(f"the token for '{self.key}' cannot be read: {exc}",
                                      "keychain_unavailable") from None
            if record is not None:
                result["had_token"] = True
                result["identity_email"] = record.identity_email
                if revoke and self.revoke_url:
                    problems = revoke_record(self.revoke_url, self.client, record)
                    result["revoked"] = not problems
                    result["detail"] = "; ".join(dict.fromkeys(problems)) or None
            self._forget_locked()
        return result
