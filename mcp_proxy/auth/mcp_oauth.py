"""OAuth for remote MCP upstreams (`kind = "mcp"`, `auth = "oauth"`): the SDK's `OAuthClientProvider`
(discovery per RFC 9728/8414, PKCE, dynamic registration) with our loopback listener, keychain storage
and three changes:

- **Refresh is single-flight across processes** and the rotated refresh token is stored before the
  lock is released, as for REST upstreams (`broker.py`). A 401 on a stored token first tries one
  refresh instead of a new browser sign-in.
- **Stored tokens keep their expiry** (the SDK forgets it on restart and would send expired tokens)
  and the token endpoint they came from, so a restarted proxy refreshes at the right place.
- **`serve` never opens a browser for an MCP upstream**: it runs in the background, reconnects with
  backoff and may run twice (Claude Desktop). Without a usable token the upstream reports "run
  `mcp-access-proxy login KEY`"; `login` runs the interactive flow, and the next reconnect of every
  running proxy picks the new token up from the keychain.

Servers without dynamic client registration (PagerDuty's hosted MCP server) get `client_id` (and
`client_secret`) from the config; `authorize_url`/`token_url` override discovered endpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp.client.auth.oauth2 import OAuthClientProvider
from mcp.shared.auth import (
    AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthMetadata, OAuthToken,
)

from mcp_proxy.auth.broker import refresh_margin
from mcp_proxy.auth.errors import SignInError
from mcp_proxy.auth.loopback import CallbackListener
from mcp_proxy.auth.vault import TokenRecord, TokenStore
from mcp_proxy.config import SecretError, SecretStore, UpstreamConfig
from mcp_proxy.fsutil import FileLock
from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

INTERACTIVE_WAIT = 300.0
LOCK_WAIT = 30.0


class McpSignInNeeded(Exception):
    """No usable token, and this process does not run browser sign-ins (serve)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"not signed in to '{key}': run `mcp-access-proxy login {key}` in a terminal")


class KeychainTokenStorage:
    """The SDK's `TokenStorage`, in the keychain: tokens with their absolute expiry, and the registered client."""

    def __init__(self, cfg: UpstreamConfig, store: SecretStore, paths: Paths, *, fresh: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.tokens = TokenStore(cfg.key, store, paths)
        self.client_name = f"oauth-client:{cfg.key}"
        self.clock = clock
        self.fresh = fresh  # `login`: ignore the stored token, sign in anew
        self.record: TokenRecord | None = None
        self.endpoints: dict[str, str] = {}  # token/authorization endpoint and issuer the token came from
        self.store = store

    def _load(self) -> TokenRecord | None:
        try:
            return self.tokens.load()
        except SecretError as exc:
            log.warning("upstream %s: the stored token cannot be read (%s)", self.cfg.key, exc)
            return None

    async def get_tokens(self) -> OAuthToken | None:
        if self.fresh:
            return None
        record = await anyio.to_thread.run_sync(self._load)
        self.record = record
        if record is None:
            return None
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
        await anyio.to_thread.run_sync(self.tokens.save, record)
        self.record = record
        self.fresh = False

    @property
    def has_static_client(self) -> bool:
        return bool(self.cfg.oauth and self.cfg.oauth.client_id)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        if self.has_static_client:  # resolved when needed, not at start-up: the secret is in the keychain
            return await anyio.to_thread.run_sync(_static_client, self.cfg, self.store)
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

    def forget(self) -> bool:
        return self.tokens.forget()


def _static_client(cfg: UpstreamConfig, store: SecretStore) -> OAuthClientInformationFull | None:
    oauth = cfg.oauth
    if oauth is None or not oauth.client_id:
        return None
    secret = None
    if oauth.client_secret is not None:
        try:
            secret = oauth.client_secret.resolve(store)
        except SecretError as exc:
            log.warning("upstream %s: %s", cfg.key, exc)
    return OAuthClientInformationFull(
        client_id=oauth.client_id, client_secret=secret, redirect_uris=[oauth.redirect_uri],
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        grant_types=["authorization_code", "refresh_token"], scope=" ".join(oauth.scopes) or None,
    )


class _LoopbackSignIn:
    """The SDK's redirect and callback handlers, on our one-shot listener and the port's sign-in lock."""

    def __init__(self, cfg: UpstreamConfig, paths: Paths, open_url: Callable[[str], Awaitable[Any]],
                 wait: float, tick: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.paths = paths
        self.open_url = open_url
        self.wait = wait
        self.tick = tick
        self.listener: CallbackListener | None = None
        self.lock: FileLock | None = None

    async def redirect(self, url: str) -> None:
        oauth = self.cfg.oauth
        state = (parse_qs(urlsplit(url).query).get("state") or [""])[0]
        port = urlsplit(oauth.redirect_uri).port or 80
        lock = FileLock(self.paths.locks_dir / f"oauth-callback-{port}.lock")
        if not lock.acquire(blocking=False):
            raise SignInError(f"another proxy process is running a sign-in on port {port}; finish it in the browser "
                              "tab it opened, then try again")
        listener = CallbackListener(oauth.redirect_uri, state, None, where=f"upstreams.{self.cfg.key}.redirect_uri",
                                    vendor=f"the '{self.cfg.key}' server")
        try:
            listener.start()
        except BaseException:
            lock.release()
            raise
        self.listener, self.lock = listener, lock
        await self.open_url(url)

    async def callback(self) -> AuthorizationCodeResult:
        listener = self.listener
        if listener is None:
            raise SignInError("the sign-in did not start")
        try:
            deadline = anyio.current_time() + self.wait
            with anyio.move_on_after(self.wait):
                while not listener.done.is_set():
                    await anyio.sleep(0.1)
                    if self.tick is not None:
                        self.tick(deadline - anyio.current_time())
            outcome = listener.outcome
            if outcome is None:
                raise SignInError(f"the sign-in did not complete within {self.wait:g} s")
            if not outcome.ok or not outcome.code:
                raise SignInError(outcome.message)
            return AuthorizationCodeResult(code=outcome.code, state=listener.state, iss=outcome.iss)
        finally:
            listener.close()
            if self.lock is not None:
                self.lock.release()
            self.listener = self.lock = None


class ProxyOAuthProvider(OAuthClientProvider):
    def __init__(self, cfg: UpstreamConfig, paths: Paths, storage: KeychainTokenStorage, *, interactive: bool,
                 open_url: Callable[[str], Awaitable[Any]], wait: float = INTERACTIVE_WAIT,
                 tick: Callable[[float], None] | None = None) -> None:
        oauth = cfg.oauth
        self.cfg = cfg
        self.storage = storage
        self.interactive = interactive
        self.lock_path = paths.locks_dir / f"oauth-{cfg.key}.lock"
        self.sign_in = _LoopbackSignIn(cfg, paths, open_url, wait, tick)
        metadata = OAuthClientMetadata(
            redirect_uris=[oauth.redirect_uri], client_name="mcp-access-proxy", token_endpoint_auth_method="none",
            scope=" ".join(oauth.scopes) or None,
        )
        super().__init__(cfg.url or "", metadata, storage, self._redirect, self.sign_in.callback)

    async def _redirect(self, url: str) -> None:
        if not self.interactive:
            raise McpSignInNeeded(self.cfg.key)
        await self.sign_in.redirect(url)

    # -- stored state the SDK does not keep ---------------------------------------------------
    async def _initialize(self) -> None:
        await super()._initialize()
        self._adopt_stored()

    def _adopt_stored(self) -> None:
        record = self.storage.record
        if record is not None and record.expires_at is not None:
            self.context.token_expiry_time = record.expires_at - refresh_margin(record.issued_at, record.expires_at)
        elif record is not None:
            self.context.token_expiry_time = None
        ends = self.storage.endpoints
        if self.context.oauth_metadata is None and ends.get("token_endpoint"):
            self.context.oauth_metadata = OAuthMetadata(
                issuer=ends.get("issuer") or ends["token_endpoint"],
                authorization_endpoint=ends.get("authorization_endpoint") or ends["token_endpoint"],
                token_endpoint=ends["token_endpoint"])
        self._apply_overrides()

    def _apply_overrides(self) -> None:
        oauth = self.cfg.oauth
        if not (oauth.authorize_url or oauth.token_url):
            return
        current = self.context.oauth_metadata
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.cfg.url or ""))
        update = {k: v for k, v in (("authorization_endpoint", oauth.authorize_url),
                                     ("token_endpoint", oauth.token_url)) if v}
        if current is None:
            self.context.oauth_metadata = OAuthMetadata(
                issuer=origin, authorization_endpoint=oauth.authorize_url or f"{origin}/authorize",
                token_endpoint=oauth.token_url or f"{origin}/token")
        else:
            self.context.oauth_metadata = current.model_copy(update=update)

    def _remember_endpoints(self) -> None:
        metadata = self.context.oauth_metadata
        if metadata is not None:
            self.storage.endpoints = {"token_endpoint": str(metadata.token_endpoint),
                                      "authorization_endpoint": str(metadata.authorization_endpoint),
                                      "issuer": str(metadata.issuer)}

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        self._apply_overrides()
        self._remember_endpoints()
        return await super()._perform_authorization_code_grant()

    async def _refresh_token(self) -> httpx2.Request:
        self._apply_overrides()
        return await super()._refresh_token()

    async def _handle_token_response(self, response: httpx2.Response) -> None:
        await super()._handle_token_response(response)
        self._adopt_stored()

    # -- the flow ------------------------------------------------------------------------------
    async def _take_lock(self) -> FileLock:
        lock = FileLock(self.lock_path)
        with anyio.fail_after(LOCK_WAIT):
            while not lock.acquire(blocking=False):
                await anyio.sleep(0.05)
        return lock

    async def _reload(self) -> bool:
        """Re-read the stored token (another process may have refreshed). True when it changed."""
        before = self.storage.record.generation if self.storage.record else None
        tokens = await self.storage.get_tokens()
        after = self.storage.record.generation if self.storage.record else None
        if tokens is not None and after != before:
            self.context.current_tokens = tokens
            self._adopt_stored()
            return True
        return False

    async def _refresh_once(self) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Refresh under the cross-process lock, unless another process already did."""
        lock = await self._take_lock()
        try:
            if await self._reload() and self.context.is_token_valid():
                return
            if not self.context.can_refresh_token():
                return
            response = yield await self._refresh_token()
            if await self._handle_refresh_response(response):  # stores the rotated token, still under the lock
                self._adopt_stored()
                log.info("upstream %s: refreshed the OAuth token", self.cfg.key)
            else:
                log.warning("upstream %s: the server refused to refresh the token; a new sign-in is needed",
                            self.cfg.key)
                await anyio.to_thread.run_sync(self.storage.forget)
                self.storage.record = None
        finally:
            lock.release()

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        async with self.context.lock:
            if not self._initialized:
                await self._initialize()
            if not self.context.is_token_valid() and self.context.can_refresh_token():
                async for step in _relay(self._refresh_once()):
                    step.response = yield step.request
            if self.interactive:
                tokens_ok = True
            else:
                tokens_ok = self.context.current_tokens is not None
        if self.interactive:
            async for step in _relay(super()._auth_flow(request)):
                step.response = yield step.request
            return
        if not tokens_ok:
            response = yield request
            if response.status_code == 401:
                self._initialized = False  # read the keychain again next time: `login` may have stored a token
                raise McpSignInNeeded(self.cfg.key)
            return
        async with self.context.lock:
            if self.context.is_token_valid():
                self._add_auth_header(request)
        response = yield request
        if response.status_code != 401:
            return
        # The server refused the token: one refresh (single-flight), else a sign-in is needed.
        async with self.context.lock:
            before = self.context.current_tokens.access_token if self.context.current_tokens else None
            self.context.token_expiry_time = 0.0  # treat as expired
            if self.context.can_refresh_token():
                async for step in _relay(self._refresh_once()):
                    step.response = yield step.request
            after = self.context.current_tokens.access_token if self.context.current_tokens else None
            if not after or after == before:
                self._initialized = False
                raise McpSignInNeeded(self.cfg.key)
            self._add_auth_header(request)
        yield request


class _Step:
    __slots__ = ("request", "response")

    def __init__(self, request: httpx2.Request) -> None:
        self.request = request
        self.response: httpx2.Response | None = None


async def _relay(flow: AsyncGenerator[httpx2.Request, httpx2.Response]) -> AsyncGenerator[_Step, None]:
    """Drive a sub-flow from an outer auth flow: each step's request is sent by the caller, which puts the
    response on the step before asking for the next one."""
    try:
        request = await flow.__anext__()
        while True:
            step = _Step(request)
            yield step
            request = await flow.asend(step.response)
    except StopAsyncIteration:
        return
    finally:
        await flow.aclose()


def mcp_oauth_auth(cfg: UpstreamConfig, paths: Paths, store: SecretStore,
                   open_url: Callable[[str], Awaitable[Any]], *, interactive: bool = False, fresh: bool = False,
                   wait: float = INTERACTIVE_WAIT, tick: Callable[[float], None] | None = None) -> httpx2.Auth:
    """The `httpx2.Auth` for an MCP upstream with OAuth. `serve` uses it non-interactively; `login` with
    `interactive=True, fresh=True` (a new sign-in even when a token is stored)."""
    storage = KeychainTokenStorage(cfg, store, paths, fresh=fresh)
    return ProxyOAuthProvider(cfg, paths, storage, interactive=interactive, open_url=open_url, wait=wait, tick=tick)

