"""Sign-in and sign-out for `TokenBroker`: starting the browser sign-in (one listener per callback port on
the machine), storing what a completed sign-in established, and signing out with revocation."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from mcp_proxy.auth import endpoint
from mcp_proxy.auth.errors import AuthUnavailable, SignInError
from mcp_proxy.auth.providers import granted_scopes, missing_scopes, region_from_audience
from mcp_proxy.auth.session import AlreadySignedIn, ElsewhereSignIn, JoinedSignIn, SignInInfo, SignInSession
from mcp_proxy.auth.vault import TokenRecord
from mcp_proxy.config import SecretError
from mcp_proxy.fsutil import FileLock, LockTimeout

log = logging.getLogger("mcp_proxy.auth.broker")

SESSION_LIFETIME = 300.0


class SignInMixin:
    """Mixed into `TokenBroker`; uses its tokens, locks, provider and config."""

    # -- sign-in -------------------------------------------------------------------------------
    async def begin_sign_in(self, lifetime: float = SESSION_LIFETIME) -> Any:
        """Start listening for the browser and return the session (`url`, `wait`, `close`, `finished`); `url` is
        None when another process runs the sign-in or just completed one. Raises SignInError: keychain unusable,
        client secret missing, callback port busy."""
        try:
            token = anyio.lowlevel.current_token()
        except RuntimeError:
            token = None
        return await anyio.to_thread.run_sync(self._begin, lifetime, token, False)

    def begin_sign_in_blocking(self, lifetime: float = SESSION_LIFETIME) -> Any:
        """For `login`: always a new sign-in, even when a token is stored."""
        return self._begin(lifetime, None, True)

    def _begin(self, lifetime: float, loop_token: Any, force: bool) -> Any:
        with self._session_lock:
            if self._active is not None and self._active.running:
                return JoinedSignIn(self._active)
            try:
                self.store.get(self.tokens.secret_name)  # fail now, not after the user signed in
            except SecretError as exc:
                raise SignInError(f"the proxy has nowhere to keep your token: {exc}") from None
            try:
                client = self.client()
            except AuthUnavailable as exc:
                raise SignInError(f"the OAuth app's client secret is needed to sign in: {exc}") from None
            lock = FileLock(self._signin_lock_path)
            if not lock.acquire(blocking=False):
                return ElsewhereSignIn(self, self.port)
            done = None if force else self.stored_sign_in()
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

    def session_ended(self, session: SignInSession) -> None:
        with self._session_lock:
            if self._active is session:
                self._active = None

    def sign_in_running_elsewhere(self) -> bool:
        lock = FileLock(self._signin_lock_path)
        if lock.acquire(blocking=False):
            lock.release()
            return False
        return True

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
        return self._info(record)

    def _info(self, record: TokenRecord) -> SignInInfo:
        return SignInInfo(self.key, record.identity_email, record.identity_name, record.scopes,
                          record.missing_scopes, record.region, record.expires_at, extra=dict(record.extra))

    def _api_root(self, region: str | None) -> str | None:
        if self.cfg.base_url:
            return self.cfg.base_url
        if self.provider is None:
            return None
        chosen = region if self.cfg.oauth.region_from_token and region else self.cfg.region
        return self.provider.api_by_region.get(chosen or "")

    def complete_sign_in(self, response: endpoint.TokenResponse) -> SignInInfo:
        """Store the tokens of a completed sign-in (listener thread). Raises SignInError."""
        now = self.clock()
        claims = endpoint.id_token_claims(response.id_token)
        region = region_from_audience(self.provider, claims)
        granted = granted_scopes(self.provider, response.scope, self.scopes)
        missing = missing_scopes(self.provider, self.scopes, granted)
        email = name = None
        root = self._api_root(region)
        if self.provider is not None and root:
            email, name = endpoint.fetch_identity(self.provider, root, response.access_token)
        extra = {k: claims[k] for k in ("subdomain", "account_id", "user_id") if isinstance(claims.get(k), str)}
        try:
            with self._thread_lock, self._locked():
                try:
                    previous = self.tokens.load()
                except SecretError:
                    previous = None
                record = TokenRecord(
                    access_token=response.access_token, refresh_token=response.refresh_token,
                    expires_at=now + response.expires_in if response.expires_in else None, issued_at=now,
                    generation=(previous.generation + 1) if previous else 1, client_id=self.cfg.oauth.client_id,
                    scopes=granted, requested=self.scopes, missing_scopes=missing, identity_email=email,
                    identity_name=name, region=region, extra=extra,
                )
                try:
                    self.tokens.save(record)
                except SecretError as exc:
                    raise SignInError(f"signed in, but the token cannot be stored: {exc}") from None
                self._cached = record
                self._unsaved = self._unsaved_over = None  # a new sign-in replaces a refresh the keychain refused
                self._retry_at = 0.0
        except LockTimeout:
            raise SignInError("another proxy process holds the token lock; try again in a moment") from None
        if missing:
            log.warning("%s granted %s but not %s: tools that need them will be refused", self.vendor,
                        " ".join(granted) or "no scopes", " ".join(missing))
        log.info("signed in to %s%s", self.key, f" as {email}" if email else "")
        return self._info(record)

    # -- sign-out --------------------------------------------------------------------------------
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
                    problems = []
                    try:
                        client = self.client()
                    except AuthUnavailable as exc:
                        problems.append(str(exc))
                    else:
                        pairs = ((record.refresh_token, "refresh_token"), (record.access_token, "access_token"))
                        for value, hint in pairs:
                            if value:
                                problem = endpoint.revoke(self.revoke_url, client, value, hint)
                                if problem:
                                    problems.append(problem)
                    result["revoked"] = not problems
                    result["detail"] = "; ".join(dict.fromkeys(problems)) or None
            self._forget_locked()
        return result

