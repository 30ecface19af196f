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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from mcp_proxy.auth import endpoint
from mcp_proxy.auth.errors import AuthUnavailable, SignInRequired, TokenEndpointError
from mcp_proxy.auth.providers import Provider, granted_scopes, missing_scopes, provider_for
from mcp_proxy.auth.broker_signin import SignInMixin
from mcp_proxy.auth.session import SignInInfo, SignInSession
from mcp_proxy.auth.vault import TokenInfo, TokenRecord, TokenStore
from mcp_proxy.config import SecretError, SecretStore, UpstreamConfig
from mcp_proxy.fsutil import FileLock, LockTimeout
from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

MIN_MARGIN = 30.0
MAX_MARGIN = 24 * 3600.0
RETRY_AFTER_FAILURE = 60.0  # seconds before an unreachable token endpoint is tried again
LOCK_WAIT = 30.0


def refresh_margin(issued_at: float, expires_at: float) -> float:
    return max(MIN_MARGIN, min(MAX_MARGIN, (expires_at - issued_at) / 4))


class TokenBroker(SignInMixin):
    def __init__(self, cfg: UpstreamConfig, paths: Paths, store: SecretStore, *,
                 clock: Callable[[], float] = time.time) -> None:
        if cfg.oauth is None:
            raise ValueError(f"upstreams.{cfg.key} has no OAuth settings")
        self.cfg = cfg
        self.key = cfg.key
        self.paths = paths
        self.store = store
        self.clock = clock
        self.provider: Provider | None = provider_for(cfg.kind)
        self.vendor = self.provider.name if self.provider else cfg.key
        oauth = cfg.oauth
        self.authorize_url = oauth.authorize_url or (self.provider.authorize_url if self.provider else "")
        self.token_url = oauth.token_url or (self.provider.token_url if self.provider else "")
        self.revoke_url = oauth.revoke_url or (self.provider.revoke_url if self.provider else None)
        self.scopes = tuple(oauth.scopes)
        self.tokens = TokenStore(cfg.key, store, paths)
        self._refresh_lock_path = paths.locks_dir / f"oauth-{cfg.key}.lock"
        from urllib.parse import urlsplit

        self.port = urlsplit(oauth.redirect_uri).port or 80
        self._signin_lock_path = paths.locks_dir / f"oauth-callback-{self.port}.lock"
        self._cached: TokenRecord | None = None
        self._thread_lock = threading.Lock()
        self._session_lock = threading.Lock()
        self._active: SignInSession | None = None
        self._retry_at = 0.0
        self._events: list[tuple[str, dict[str, Any]]] = []  # appended in worker threads, emitted on the loop
        self._events_lock = threading.Lock()
        # Set by the hub in `serve`: `emit(event, fields)` appends to the audit log (on the event loop);
        # `announce(info)` tells it a sign-in completed (audit record, audit user).
        self.emit: Callable[[str, dict[str, Any]], Any] | None = None
        self.announce: Callable[[SignInInfo], Awaitable[None]] | None = None

    @classmethod
    def for_upstream(cls, cfg: UpstreamConfig, paths: Paths, store: SecretStore, **kw: Any) -> "TokenBroker":
        return cls(cfg, paths, store, **kw)

    def where(self, key: str) -> str:
        return f"upstreams.{self.key}.{key}"

    # -- what is known without the keychain ----------------------------------------------
    def token_info(self) -> TokenInfo | None:
        info = self.tokens.info()
        if info is None or (info.client_id and info.client_id != self.cfg.oauth.client_id):
            return None
        return info

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
        if not self.cfg.oauth.region_from_token:
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
        if record is None or self._due(record):
            try:
                record = await anyio.to_thread.run_sync(self._fresh_record)
            finally:
                self._flush_events()
        return record.access_token

    async def rejected(self, token: str | None) -> bool:
        """The vendor answered 401 to `token`. True when a different token is now available (another
        process refreshed, or a refresh worked): try once more. Raises SignInRequired when the grant is dead."""
        try:
            return await anyio.to_thread.run_sync(self._after_rejection, token)
        finally:
            self._flush_events()

    def _due(self, record: TokenRecord, now: float | None = None) -> bool:
        if record.expires_at is None:
            return False
        now = self.clock() if now is None else now
        return now >= record.expires_at - refresh_margin(record.issued_at, record.expires_at)

    def _expired(self, record: TokenRecord) -> bool:
        return record.expires_at is not None and self.clock() >= record.expires_at - 5

    def _load(self) -> TokenRecord | None:
        try:
            record = self.tokens.load()
        except SecretError as exc:
            raise AuthUnavailable(f"the token for '{self.key}' cannot be read: {exc}", "keychain_unavailable") from None
        if record is not None and record.client_id and record.client_id != self.cfg.oauth.client_id:
            log.info("the stored token of %s belongs to another OAuth app (client_id changed); sign-in needed",
                     self.key)
            return None
        return record

    def _locked(self) -> FileLock:
        return FileLock(self._refresh_lock_path, timeout=LOCK_WAIT)

    def _fresh_record(self) -> TokenRecord:
        with self._thread_lock:
            record = self._cached
            if record is not None and not self._due(record):
                return record
            record = self._load()
            if record is None:
                self._cached = None
                raise SignInRequired(self.key, "no token is stored")
            if not self._due(record):
                self._cached = record
                return record
            try:
                with self._locked():
                    record = self._load()  # another process may have refreshed while we waited for the lock
                    if record is None:
                        self._cached = None
                        raise SignInRequired(self.key, "the token was removed")
                    if not self._due(record):
                        self._cached = record
                        return record
                    return self._refresh_locked(record, forced=False)
            except LockTimeout:
                if not self._expired(record):
                    return record
                raise AuthUnavailable(f"another proxy process has been refreshing the '{self.key}' token for "
                                      f"{LOCK_WAIT:g} s; try again in a moment", "refresh_busy") from None

    def _after_rejection(self, token: str | None) -> bool:
        with self._thread_lock:
            try:
                with self._locked():
                    record = self._load()
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
        """Refresh while holding the cross-process lock; the new record is stored before the lock is released."""
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
            if exc.refused:
                self._forget_locked()
                self._event("auth.refresh_failed", {**fields, "error.type": exc.error or "refused"})
                log.warning("%s refused to refresh the %s token (%s); a new sign-in is needed", self.vendor, self.key,
                            exc.error)
                raise SignInRequired(self.key, f"{self.vendor} refused to refresh the token: it was revoked, "
                                               "or has expired") from None
            self._event("auth.refresh_failed", {**fields, "error.type": "token_endpoint_unreachable"})
            self._retry_at = self.clock() + RETRY_AFTER_FAILURE
            if not forced and not self._expired(record):
                log.warning("could not refresh the %s token yet (%s); using the current one, retrying in %.0f s",
                            self.key, exc, RETRY_AFTER_FAILURE)
                self._cached = record
                return record
            raise AuthUnavailable(f"the '{self.key}' token could not be refreshed: {exc}", "refresh_failed") from None
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
        self._save(new)
        self._cached = new
        self._retry_at = 0.0
        self._event("auth.refreshed", fields)
        log.info("refreshed the %s token (valid for %s)", self.key,
                 f"{response.expires_in / 3600:.1f} h" if response.expires_in else "an unstated time")
        return new

    def _save(self, record: TokenRecord) -> None:
        try:
            self.tokens.save(record)
        except SecretError as exc:
            raise AuthUnavailable(f"the new '{self.key}' token cannot be stored: {exc}",
                                  "keychain_unavailable") from None

    def _forget_locked(self) -> None:
        self._cached = None
        try:
            self.tokens.forget()
        except SecretError as exc:
            log.warning("could not remove the dead %s token from the keychain (%s)", self.key, exc)

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        with self._events_lock:
            self._events.append((event, fields))

    def _flush_events(self) -> None:
        with self._events_lock:
            events, self._events = self._events, []
        for event, fields in events:
            if self.emit is not None:
                try:
                    self.emit(event, fields)
                except Exception as exc:  # noqa: BLE001 - the audit must not break a call
                    log.warning("could not record %s (%s)", event, type(exc).__name__)

    def client(self) -> endpoint.Client:
        """The OAuth app, with its secret (scoped apps) from the keychain. Raises AuthUnavailable."""
        oauth = self.cfg.oauth
        secret = None
        if oauth.client_secret is not None:
            try:
                secret = oauth.client_secret.resolve(self.store)
            except SecretError as exc:
                raise AuthUnavailable(str(exc), "client_secret_missing") from None
        return endpoint.Client(self.token_url, oauth.client_id, secret, oauth.redirect_uri)
