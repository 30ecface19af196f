"""Browser sign-ins of one upstream (`SignIns`, owned by its `TokenBroker`): at most one session per process,
one listener per callback port on the machine. And what a completed sign-in or a sign-out does with a token,
as functions the broker calls under its own locks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
from anyio.lowlevel import EventLoopToken

from mcp_proxy.auth import endpoint
from mcp_proxy.auth.errors import AuthUnavailable
from mcp_proxy.auth.providers import Provider, granted_scopes, missing_scopes, region_from_audience
from mcp_proxy.auth.session import (
    AlreadySignedIn,
    ElsewhereSignIn,
    JoinedSignIn,
    SignInHandle,
    SignInInfo,
    SignInSession,
    SignInTarget,
)
from mcp_proxy.auth.vault import TokenRecord
from mcp_proxy.config import OAuthSettings, UpstreamConfig
from mcp_proxy.fsutil import FileLock

log = logging.getLogger("mcp_proxy.auth.broker")

SESSION_LIFETIME = 300.0


class SignIns:
    """Starts browser sign-ins and knows the one running in this process. What it needs of the token side comes
    in at construction: `prepare()` the OAuth app to sign in with, raising SignInError when a sign-in could not
    be stored (keychain, client secret); `stored()` a sign-in another process completed; `complete(response)`
    stores a completed one (listener thread, raises SignInError); `announce(info)` tells `serve` of it."""

    def __init__(self, target: SignInTarget, port: int, lock_path: Path, *,
                 prepare: Callable[[], endpoint.Client], stored: Callable[[], SignInInfo | None],
                 complete: Callable[[endpoint.TokenResponse], SignInInfo],
                 announce: Callable[[SignInInfo], Coroutine[Any, Any, None]] | None = None) -> None:
        self.target = target
        self.port = port
        self._lock_path = lock_path  # the callback port's cross-process sign-in lock
        self._prepare = prepare
        self._stored = stored
        self._complete = complete
        self._announce = announce
        self._session_lock = threading.Lock()
        self._active: SignInSession | None = None

    async def begin(self, lifetime: float = SESSION_LIFETIME) -> SignInHandle:
        """See `TokenBroker.begin_sign_in`."""
        token: EventLoopToken | None
        try:
            token = anyio.lowlevel.current_token()
        except RuntimeError:
            token = None
        return await anyio.to_thread.run_sync(self._begin, lifetime, token, False)

    def begin_blocking(self, lifetime: float = SESSION_LIFETIME) -> SignInHandle:
        """For `login`: always a new sign-in, even when a token is stored."""
        return self._begin(lifetime, None, True)

    def _begin(self, lifetime: float, loop_token: EventLoopToken | None, force: bool) -> SignInHandle:
        with self._session_lock:
            if self._active is not None and self._active.running:
                return JoinedSignIn(self._active)
            client = self._prepare()  # fail now, not after the user signed in
            lock = FileLock(self._lock_path)
            if not lock.acquire(blocking=False):
                return ElsewhereSignIn(self)
            done = None if force else self._stored()
            if done is not None:  # another process finished its sign-in a moment ago
                lock.release()
                return AlreadySignedIn(done)
            try:
                session = SignInSession(self, client, lock, lifetime, loop_token)
                session.start()
            except BaseException:
                lock.release()
                raise
            self._active = session
            return session

    # -- for the sessions ---------------------------------------------------------------
    def ended(self, session: SignInSession) -> None:
        with self._session_lock:
            if self._active is session:
                self._active = None

    def running_elsewhere(self) -> bool:
        """Another process (or session) holds the callback port's sign-in lock."""
        lock = FileLock(self._lock_path)
        if lock.acquire(blocking=False):
            lock.release()
            return False
        return True

    def stored(self) -> SignInInfo | None:
        return self._stored()

    def finish(self, response: endpoint.TokenResponse, loop_token: EventLoopToken | None) -> SignInInfo:
        """Store a completed sign-in and tell `serve` (listener thread). Raises SignInError."""
        info = self._complete(response)
        if self._announce is not None and loop_token is not None:
            try:
                anyio.from_thread.run(self._announce, info, token=loop_token)
                info.announced = True
            except Exception as exc:  # noqa: BLE001 - the loop is gone (shutting down): the token is stored anyway
                log.debug("could not announce the sign-in (%s)", type(exc).__name__)
        return info


# -- what a sign-in or a sign-out does with the token (the broker holds its locks) -----------------
def sign_in_info(key: str, record: TokenRecord) -> SignInInfo:
    return SignInInfo(key, record.identity_email, record.identity_name, record.scopes, record.missing_scopes,
                      record.region, record.expires_at, extra=dict(record.extra))


def _api_root(cfg: UpstreamConfig, oauth: OAuthSettings, provider: Provider | None, region: str | None) -> str | None:
    if cfg.base_url:
        return cfg.base_url
    if provider is None:
        return None
    if provider.api_root:
        return provider.api_root
    chosen = region if oauth.region_from_token and region else cfg.region
    return provider.api_by_region.get(chosen or "")


def signed_in_record(response: endpoint.TokenResponse, cfg: UpstreamConfig, oauth: OAuthSettings,
                     provider: Provider | None, scopes: tuple[str, ...], now: float) -> TokenRecord:
    """The record of a completed sign-in, with who signed in (asked of the vendor) and where. Numbered 1: the
    caller renumbers it after the record it replaces. `oauth`: the upstream's OAuth app (its `cfg.oauth`)."""
    claims = endpoint.id_token_claims(response.id_token)
    region = region_from_audience(provider, claims)
    granted = granted_scopes(provider, response.scope, scopes)
    email = name = None
    identity: dict[str, str] = {}
    root = _api_root(cfg, oauth, provider, region)
    if provider is not None and root:
        if provider.identity_extra:  # Atlassian: the account id too
            email, name, identity = endpoint.fetch_identity_details(provider, root, response.access_token)
        else:
            email, name = endpoint.fetch_identity(provider, root, response.access_token)
    extra = {k: claims[k] for k in ("subdomain", "account_id", "user_id") if isinstance(claims.get(k), str)}
    extra.update(identity)
    return TokenRecord(
        access_token=response.access_token, refresh_token=response.refresh_token,
        expires_at=now + response.expires_in if response.expires_in else None, issued_at=now, generation=1,
        client_id=oauth.client_id, scopes=granted, requested=scopes,
        missing_scopes=missing_scopes(provider, scopes, granted), identity_email=email, identity_name=name,
        region=region, extra=extra,
    )


def log_signed_in(key: str, vendor: str, record: TokenRecord) -> None:
    if record.missing_scopes:
        log.warning("%s granted %s but not %s: tools that need them will be refused", vendor,
                    " ".join(record.scopes) or "no scopes", " ".join(record.missing_scopes))
    log.info("signed in to %s%s", key, f" as {record.identity_email}" if record.identity_email else "")


def revoke_record(revoke_url: str, client: Callable[[], endpoint.Client], record: TokenRecord) -> list[str]:
    """Revoke the record's tokens (refresh token first). Returns why any was not revoked (no token text)."""
    try:
        app = client()
    except AuthUnavailable as exc:
        return [str(exc)]
    problems = []
    for value, hint in ((record.refresh_token, "refresh_token"), (record.access_token, "access_token")):
        if value:
            problem = endpoint.revoke(revoke_url, app, value, hint)
            if problem:
                problems.append(problem)
    return problems
