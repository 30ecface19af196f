"""Where an MCP upstream's OAuth state lives for the SDK's provider (`mcp_oauth.py`): its `TokenStorage`
in the keychain, with each token's absolute expiry and the endpoints it came from, and the registered or
configured OAuth client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from mcp_proxy.auth.events import NO_EVENTS, AuthEvents
from mcp_proxy.auth.vault import NOT_LOOKED, Signature, TokenRecord, TokenStore
from mcp_proxy.config import SecretError, SecretStore, UpstreamConfig
from mcp_proxy.paths import Paths

log = logging.getLogger("mcp_proxy.auth.mcp_oauth")



class KeychainTokenStorage:
    """The SDK's `TokenStorage`, in the keychain: tokens with their absolute expiry, and the registered client.
    Each token read or stored here goes to `events.reveal` (the audit log redacts it from then on)."""

    def __init__(self, cfg: UpstreamConfig, store: SecretStore, paths: Paths, *, fresh: bool = False,
                 clock: Callable[[], float] = time.time, events: AuthEvents = NO_EVENTS) -> None:
        self.cfg = cfg
        self.tokens = TokenStore(cfg.key, store, paths)
        self.client_name = f"oauth-client:{cfg.key}"
        self.clock = clock
        self.fresh = fresh  # `login`: ignore the stored token, sign in anew
        self.record: TokenRecord | None = None
        self.unreadable = False  # the last read failed (keychain locked): that says nothing about the token
        self.endpoints: dict[str, str] = {}  # token/authorization endpoint and issuer the token came from
        self.store = store
        # A refreshed record the keychain refused to store, and the refresh token it replaced (see _load).
        self.unsaved: TokenRecord | None = None
        self.unsaved_over: str | None = None
        # The token metadata file's signature when `record` was read (vault.py: TokenStore.signature): another
        # signature means another process signed in, refreshed or signed out since.
        self.seen: Signature = NOT_LOOKED
        self._events = events

    def _reveal(self, record: TokenRecord | None) -> None:
        if record is not None:
            self._events.reveal_all(record.secrets())

    def changed(self) -> bool:
        """Whether the stored sign-in may have changed since this process last read it: one stat, no keychain."""
        return self.tokens.signature() != self.seen

    def _load(self) -> TokenRecord | None:
        seen = self.tokens.signature()  # before the keychain: a write after it shows as a change next time
        try:
            record = self.tokens.load()
        except SecretError as exc:
            log.warning("upstream %s: the stored token cannot be read (%s)", self.cfg.key, exc)
            self.unreadable = True
            return None
        self.unreadable = False
        self.seen = seen
        unsaved = self.unsaved
        if unsaved is not None:
            # The keychain refused our refreshed record: while it still holds the one ours replaced (or nothing,
            # because another process was refused that retired token), ours is the live one.
            over = self.unsaved_over
            if (record is not None and record.refresh_token == over) or \
                    (record is None and self.tokens.refused_was(over)):
                return unsaved
            self.unsaved = self.unsaved_over = None  # a new sign-in, or `logout`: that wins
        return record

    def store_unsaved(self) -> None:
        """Store the refreshed record the keychain refused earlier, if it is still the live one. The caller
        holds the refresh lock."""
        if self.unsaved is None or self._load() is not self.unsaved:
            return
        try:
            self.tokens.save(self.unsaved)
        except SecretError:
            return
        log.warning("upstream %s: the refreshed token is now stored in the keychain", self.cfg.key)
        self.unsaved = self.unsaved_over = None

    async def get_tokens(self) -> OAuthToken | None:
        if self.fresh:
            return None
        record = await anyio.to_thread.run_sync(self._load)
        if record is None and self.unreadable:
            record = self.record  # the keychain is locked: that says nothing about the token this process has
        self.record = record
        if record is None:
            return None
        self._reveal(record)
        self.endpoints = {k: v for k, v in record.extra.items() if k in ("token_endpoint", "authorization_endpoint",
                                                                          "issuer") and isinstance(v, str)}
        remaining = None if record.expires_at is None else max(0, int(record.expires_at - self.clock()))
        return OAuthToken(access_token=record.access_token, refresh_token=record.refresh_token,
                          expires_in=remaining, scope=" ".join(record.scopes) or None)

    async def set_tokens(self, tokens: OAuthToken) -> None:
        now = self.clock()
        previous = self.record
        record = TokenRecord(
            access_token=tokens.access_token, refresh_token=tokens.refresh_token,
            expires_at=now + tokens.expires_in if tokens.expires_in else None, issued_at=now,
            generation=(previous.generation + 1) if previous else 1,
            client_id=self.cfg.oauth.client_id if self.cfg.oauth else "",
            scopes=tuple((tokens.scope or "").split()),
            requested=tuple(self.cfg.oauth.scopes if self.cfg.oauth else ()),
            extra=dict(self.endpoints),
        )
        self._reveal(record)
        try:
            await anyio.to_thread.run_sync(self.tokens.save, record)
        except SecretError as exc:
            if previous is None or self.fresh:  # a new sign-in (`login`): its caller reports the failure
                raise
            # A refresh: the server has retired the old refresh token, so this record is the only live one.
            # Keep it and store it at the next refresh (store_unsaved), rather than lose the sign-in.
            self.unsaved, self.unsaved_over = record, previous.refresh_token
            log.error("upstream %s: the refreshed token could not be stored (%s); this process keeps using it and "
                      "stores it at its next refresh", self.cfg.key, exc)
        # `login` stores without the refresh lock, so a stat now could already be of its record: the next call
        # reads the store once more instead (once per refresh), and finds its own record or the new sign-in.
        self.seen = NOT_LOOKED
        self.record = record
        self.fresh = False

    @property
    def has_static_client(self) -> bool:
        return bool(self.cfg.oauth and self.cfg.oauth.client_id)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        if self.has_static_client:  # resolved when needed, not at start-up: the secret is in the keychain
            return await anyio.to_thread.run_sync(static_client, self.cfg, self.store)
        data = await anyio.to_thread.run_sync(self._get_client_json)
        try:
            return OAuthClientInformationFull.model_validate(data) if isinstance(data, dict) else None
        except ValueError:
            return None

    def _get_client_json(self) -> Any:
        try:
            return self.tokens.vault.get_json(self.client_name)
        except SecretError:
            return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if self.has_static_client:
            return
        data = client_info.model_dump(mode="json", exclude_none=True)
        await anyio.to_thread.run_sync(self.tokens.vault.put_json, self.client_name, data)

    def forget(self, refused: str | None = None) -> bool:
        self.unsaved = self.unsaved_over = None
        existed = self.tokens.forget(refused)
        self.seen = self.tokens.signature()  # its own removal is no news to this process
        return existed


def static_client(cfg: UpstreamConfig, store: SecretStore) -> OAuthClientInformationFull | None:
    """The config's client. Raises SecretError (naming the setting and how to set it) when a configured
    client_secret cannot be read: going on without it would get `invalid_client` from the server."""
    oauth = cfg.oauth
    if oauth is None or not oauth.client_id:
        return None
    secret = oauth.client_secret.resolve(store) if oauth.client_secret is not None else None
    # Validated by the model, not built with `AnyUrl(...)`: the model keeps a redirect URI's empty path as
    # written (`url_preserve_empty_path`); a bare AnyUrl would add a "/" the server then fails to match.
    return OAuthClientInformationFull.model_validate({
        "client_id": oauth.client_id, "client_secret": secret, "redirect_uris": [oauth.redirect_uri],
        "token_endpoint_auth_method": "client_secret_post" if secret else "none",
        "grant_types": ["authorization_code", "refresh_token"], "scope": " ".join(oauth.scopes) or None,
    })
