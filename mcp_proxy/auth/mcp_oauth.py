"""OAuth for remote MCP upstreams (`kind = "mcp"`, `auth = "oauth"`): the SDK's `OAuthClientProvider`
(discovery per RFC 9728/8414, PKCE, dynamic registration) with our loopback listener, keychain storage
and three changes:

- **Refresh is single-flight across processes** and the rotated refresh token is stored before the
  lock is released, as for REST upstreams (`broker.py`). A 401 on a stored token first re-reads the
  keychain (another process may have refreshed, or `login` stored a new sign-in: compared by the
  tokens themselves, not a per-process counter), then tries one refresh instead of a new browser
  sign-in. Only a refusal of the grant (`invalid_grant`) forgets the token; a server error, a rate
  limit or a rejected client leaves it stored and says "try again" or which setting to fix.
- **A `logout` or `login` in another process reaches a running `serve` at its next request**, not at the
  next 401: each request (and, through `follow_stored_sign_in`, each tool call before it is sent) stats the
  token's metadata file (vault.py: `TokenStore.signature`) and re-reads the keychain only when it changed. A
  new sign-in is adopted as it is, never refreshed over; a removed one drops this process's token, and the
  call raises SignInRequired without sending it.
- **Stored tokens keep their expiry** (the SDK forgets it on restart and would send expired tokens)
  and the token endpoint they came from, so a restarted proxy refreshes at the right place.
- **`serve` never opens a browser for an MCP upstream**: it runs in the background, reconnects with
  backoff and may run twice (Claude Desktop). Without a usable token the upstream reports "run
  `mcp-access-proxy login KEY`"; `login` runs the interactive flow, and the next reconnect of every
  running proxy picks the new token up from the keychain.

Servers without dynamic client registration (PagerDuty's hosted MCP server) get `client_id` (and
`client_secret`) from the config; `authorize_url`/`token_url` override discovered endpoints, and
configured `scopes` are requested exactly (the SDK would ask for every scope the server advertises).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp.client.auth.oauth2 import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata, OAuthMetadata

from mcp_proxy.auth.broker import refresh_margin
from mcp_proxy.auth.errors import RefreshFailed, SignInError, SignInRequired, oauth_error_code
from mcp_proxy.auth.events import NO_EVENTS, AuthEvents
from mcp_proxy.auth.loopback import CallbackListener
from mcp_proxy.auth.mcp_oauth_storage import KeychainTokenStorage
from mcp_proxy.auth.vault import refresh_lock
from mcp_proxy.config import OAuthSettings, SecretStore, UpstreamConfig
from mcp_proxy.fsutil import FileLock
from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

INTERACTIVE_WAIT = 300.0
LOCK_WAIT = 30.0
RETRY_AFTER_FAILURE = 60.0  # a token due for refresh is used this long after a refresh failed for a passing reason


class _LoopbackSignIn:
    """The SDK's redirect and callback handlers, on our one-shot listener and the port's sign-in lock."""

    def __init__(self, cfg: UpstreamConfig, oauth: OAuthSettings, paths: Paths,
                 open_url: Callable[[str], Awaitable[Any]], wait: float,
                 tick: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.oauth = oauth  # the upstream's `cfg.oauth`
        self.paths = paths
        self.open_url = open_url
        self.wait = wait
        self.tick = tick
        self.listener: CallbackListener | None = None
        self.lock: FileLock | None = None

    async def redirect(self, url: str) -> None:
        oauth = self.oauth
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
                raise SignInError(f"the sign-in did not complete within {self.wait:g} s{listener.foreign_note()}")
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
        if cfg.oauth is None:
            raise ValueError(f"upstreams.{cfg.key} has no OAuth settings")
        oauth: OAuthSettings = cfg.oauth
        self.cfg = cfg
        self.oauth = oauth  # the OAuth settings: this provider exists only for an upstream that has them
        self.storage = storage
        self.interactive = interactive
        self.paths = paths
        self.refresh_problem: str | None = None  # why the last refresh failed, when the token was kept
        self.sign_in = _LoopbackSignIn(cfg, oauth, paths, open_url, wait, tick)
        # Validated by the model, not built as `AnyUrl(...)`: the model keeps a URL's empty path as written
        # (`url_preserve_empty_path`), a bare AnyUrl would add a "/" the server then fails to match.
        metadata = OAuthClientMetadata.model_validate({
            "redirect_uris": [oauth.redirect_uri], "client_name": "mcp-access-proxy",
            "token_endpoint_auth_method": "none", "scope": " ".join(oauth.scopes) or None,
        })
        super().__init__(cfg.url or "", metadata, storage, self._redirect, self.sign_in.callback)

    async def _redirect(self, url: str) -> None:
        if not self.interactive:  # `serve`: no browser sign-in for an MCP upstream, `login` does it
            raise SignInRequired(self.cfg.key, "no usable token is stored")
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
            self.context.oauth_metadata = OAuthMetadata.model_validate({  # validated as the model: see __init__
                "issuer": ends.get("issuer") or ends["token_endpoint"],
                "authorization_endpoint": ends.get("authorization_endpoint") or ends["token_endpoint"],
                "token_endpoint": ends["token_endpoint"]})
        self._apply_overrides()

    def _apply_overrides(self) -> None:
        oauth = self.oauth
        if not (oauth.authorize_url or oauth.token_url):
            return
        current = self.context.oauth_metadata
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.cfg.url or ""))
        update = {k: v for k, v in (("authorization_endpoint", oauth.authorize_url),
                                     ("token_endpoint", oauth.token_url)) if v}
        if current is None:
            self.context.oauth_metadata = OAuthMetadata.model_validate({  # validated as the model: see __init__
                "issuer": origin, "authorization_endpoint": oauth.authorize_url or f"{origin}/authorize",
                "token_endpoint": oauth.token_url or f"{origin}/token"})
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
        if self.oauth.scopes:  # the SDK put the server's advertised scopes here; the config decides
            self.context.client_metadata.scope = " ".join(self.oauth.scopes)
        return await super()._perform_authorization_code_grant()

    async def _refresh_token(self) -> httpx2.Request:
        self._apply_overrides()
        return await super()._refresh_token()

    async def _handle_token_response(self, response: httpx2.Response) -> None:
        await super()._handle_token_response(response)
        self._adopt_stored()

    # -- the flow ------------------------------------------------------------------------------
    async def _take_lock(self) -> FileLock:
        lock = refresh_lock(self.paths, self.cfg.key)
        with anyio.fail_after(LOCK_WAIT):
            while not lock.acquire(blocking=False):
                await anyio.sleep(0.05)
        return lock

    async def _reload(self) -> str:
        """Re-read the stored token: "changed" (another process refreshed, or `login` stored a new sign-in),
        "gone" (signed out, or forgotten after a refusal) or "same". Compared by the tokens, since a fresh
        `login` numbers its record from 1 again."""
        before = self.storage.record
        tokens = await self.storage.get_tokens()  # the tokens of the record it now holds
        if tokens is None:
            if self.storage.unreadable:
                return "same"  # keychain locked: keep what this process has
            return "gone"
        if before is not None and (tokens.access_token, tokens.refresh_token) == \
                (before.access_token, before.refresh_token):
            return "same"
        self.context.current_tokens = tokens
        self._adopt_stored()
        return "changed"

    async def follow_stored_sign_in(self) -> None:
        """Before each call of `serve` (cheap: one stat, the keychain only after a change): take up a sign-in or
        refresh another process stored since this one read the store. Raises SignInRequired when no sign-in is
        stored (`logout`, a refusal seen elsewhere, or none yet): a token this process holds is not used again,
        and the call says to run `login` at once instead of waiting for a connection that cannot succeed."""
        if self.interactive:
            return
        signature = self.storage.tokens.signature()
        if signature is None and self.storage.unsaved is None:  # nothing stored, nothing kept in memory
            async with self.context.lock:
                self.context.clear_tokens()
                self.storage.record = None
            raise SignInRequired(self.cfg.key, "no sign-in is stored")
        if not self._initialized or signature == self.storage.seen:
            return
        async with self.context.lock:
            if await self._take_up_stored() == "gone":
                raise SignInRequired(self.cfg.key, "the stored sign-in was removed")

    async def _take_up_stored(self) -> str:
        """Under `context.lock`: re-read the store if it changed since this process read or wrote it, and adopt
        what it holds (`_reload`'s answer, "same" when unchanged). "gone" (and the tokens dropped) only when this
        process held a token: re-reading, never refreshing, is what keeps a new `login` from being undone."""
        if not self.storage.changed():
            return "same"
        held = self.context.current_tokens is not None
        stored = await self._reload()
        if stored != "gone":
            return stored
        log.info("upstream %s: the stored sign-in was removed in another process; not using its token", self.cfg.key)
        self.context.clear_tokens()
        self.storage.record = None
        return "gone" if held else "same"

    async def _refresh_once(self) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Refresh under the cross-process lock, unless another process already did. Sets `refresh_problem`
        when the refresh failed but the sign-in is kept."""
        self.refresh_problem = None
        lock = await self._take_lock()
        try:
            await anyio.to_thread.run_sync(self.storage.store_unsaved)  # under the lock, before comparing
            stored = await self._reload()
            if stored == "gone":  # `logout` (or a refusal elsewhere): never write the token back
                self.context.clear_tokens()
                self.storage.record = None
                return
            if stored == "changed" and self.context.is_token_valid():
                return
            if not self.context.can_refresh_token():
                return
            response = yield await self._refresh_token()
            if response.status_code == 200:
                if await self._handle_refresh_response(response):  # stores the rotated token, under the lock
                    self._adopt_stored()
                    log.info("upstream %s: refreshed the OAuth token", self.cfg.key)
                    return
                self._refresh_failed("the server's refresh answer was not a token response")
                return
            error = await _oauth_error(response)
            if response.status_code in (400, 401) and error == "invalid_grant":
                log.warning("upstream %s: the server refused to refresh the token (invalid_grant); a new sign-in is "
                            "needed", self.cfg.key)
                refused = self.context.current_tokens.refresh_token if self.context.current_tokens else None
                await anyio.to_thread.run_sync(self.storage.forget, refused)
                self.storage.record = None
                self.context.clear_tokens()
            elif error in ("invalid_client", "unauthorized_client"):
                self._refresh_failed(f"the server did not accept the OAuth app's credentials ({error}); check "
                                     f"upstreams.{self.cfg.key}.client_id and client_secret. The sign-in was kept")
            else:
                detail = f"HTTP {response.status_code}" + (f", {error}" if error else "")
                self._refresh_failed(f"the server could not refresh the token ({detail}); the sign-in was kept: "
                                     "try again in a moment")
        finally:
            lock.release()

    def _refresh_failed(self, problem: str) -> None:
        """Keep the token. One still inside its real lifetime goes on being used for a while (the refresh
        margin is over, not the token), as the REST broker does."""
        self.refresh_problem = problem
        log.warning("upstream %s: %s", self.cfg.key, problem)
        record = self.storage.record
        if record is not None and self.context.current_tokens is not None and record.expires_at is not None:
            usable_until, now = record.expires_at - 5, self.storage.clock()
            if usable_until > now:
                self.context.token_expiry_time = min(usable_until, now + RETRY_AFTER_FAILURE)

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        async with self.context.lock:
            if not self._initialized:
                await self._initialize()
            elif not self.interactive:  # a `login`, refresh or `logout` in another process since the last request
                await self._take_up_stored()
            if not self.context.is_token_valid() and self.context.can_refresh_token():
                async for step in _relay(self._refresh_once()):
                    step.response = yield step.request
                if self.refresh_problem is not None and not self.context.is_token_valid():
                    raise RefreshFailed(f"upstream '{self.cfg.key}': {self.refresh_problem}")
            tokens_ok = self.interactive or self.context.current_tokens is not None
        if self.interactive:
            async for step in _relay(super()._auth_flow(request)):
                step.response = yield step.request
            return
        if not tokens_ok:
            self.refresh_problem = None
            response = yield request
            if response.status_code == 401:
                self._initialized = False  # read the keychain again next time: `login` may have stored a token
                raise SignInRequired(self.cfg.key, "no token is stored")
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
            async for step in _relay(self._refresh_once()):  # re-reads the keychain first: `login` may have run
                step.response = yield step.request
            after = self.context.current_tokens.access_token if self.context.current_tokens else None
            if not after or after == before:
                self._initialized = False
                if self.refresh_problem is not None and after:
                    raise RefreshFailed(f"upstream '{self.cfg.key}': {self.refresh_problem}")
                raise SignInRequired(self.cfg.key, "the server refused the token and it could not be renewed")
            self._add_auth_header(request)
        yield request


async def _oauth_error(response: httpx2.Response) -> str | None:
    """The `error` code of a token endpoint's refusal (RFC 6749 §5.2), if it has a readable one."""
    try:
        body = json.loads(await response.aread())
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return oauth_error_code(body.get("error")) if isinstance(body, dict) else None


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
            if step.response is None:  # the caller sends each step's request and puts its response here
                raise RuntimeError("the auth flow went on without the response to its request")
            request = await flow.asend(step.response)
    except StopAsyncIteration:
        return
    finally:
        await flow.aclose()


def mcp_oauth_auth(cfg: UpstreamConfig, paths: Paths, store: SecretStore,
                   open_url: Callable[[str], Awaitable[Any]], *, interactive: bool = False, fresh: bool = False,
                   wait: float = INTERACTIVE_WAIT, tick: Callable[[float], None] | None = None,
                   events: AuthEvents = NO_EVENTS) -> ProxyOAuthProvider:
    """The `httpx2.Auth` for an MCP upstream with OAuth. `serve` uses it non-interactively; `login` with
    `interactive=True, fresh=True` (a new sign-in even when a token is stored). The tokens it reads or stores go
    to `events.reveal`."""
    storage = KeychainTokenStorage(cfg, store, paths, fresh=fresh, events=events)
    return ProxyOAuthProvider(cfg, paths, storage, interactive=interactive, open_url=open_url, wait=wait, tick=tick)

