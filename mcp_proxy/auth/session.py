"""One browser sign-in: authorization code with PKCE (S256) and `state`, through the loopback listener.

The code is exchanged in the listener thread the moment the browser brings it back (PagerDuty codes
live 30 s), the vendor is asked who signed in, and the tokens are stored, all before the browser gets
its page; so a sign-in completes even when nobody is waiting for it any more. A session owns the
cross-process sign-in lock of its callback port for its whole life, so only one listener runs per
port on the machine, and it ends by itself when its lifetime is over.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio

from mcp_proxy.auth.endpoint import Client, exchange_code
from mcp_proxy.auth.errors import SignInError, SignInTimeout, TokenEndpointError
from mcp_proxy.fsutil import FileLock

if TYPE_CHECKING:
    from anyio.lowlevel import EventLoopToken

    from mcp_proxy.auth.broker_signin import SignIns

log = logging.getLogger(__name__)

POLL = 0.1


@dataclass
class SignInInfo:
    """What a completed sign-in established (no tokens)."""

    upstream: str
    identity_email: str | None
    identity_name: str | None = None
    scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    region: str | None = None
    expires_at: float | None = None
    announced: bool = False  # the hub was told already (audit record, audit user)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignInTarget:
    """Where a browser sign-in to one upstream goes (no secrets)."""

    key: str  # the upstream's key in the config
    vendor: str  # for messages, e.g. "PagerDuty"
    authorize_url: str
    scopes: tuple[str, ...]
    redirect_setting: str  # the config key of the redirect URI, for messages
    params: tuple[tuple[str, str], ...] = ()  # the vendor's own authorization parameters (Atlassian: audience)


def authorization_url(base: str, params: dict[str, str]) -> str:
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


class SignInSession:
    """The sign-in this process runs. `url` is what the user opens."""

    def __init__(self, owner: SignIns, client: Client, lock: FileLock, lifetime: float,
                 loop_token: EventLoopToken | None = None) -> None:
        from mcp.client.auth.oauth2 import PKCEParameters  # imported here: the SDK's auth module is large

        from mcp_proxy.auth.loopback import CallbackListener  # http.server: only when signing in

        self.owner = owner
        self.client = client
        self.lock = lock
        self.lifetime = lifetime
        self.loop_token = loop_token
        self._pkce = PKCEParameters.generate()
        state = secrets.token_urlsafe(32)
        params = {"client_id": client.client_id, "redirect_uri": client.redirect_uri, "response_type": "code",
                  "state": state, "code_challenge": self._pkce.code_challenge, "code_challenge_method": "S256"}
        target = owner.target
        params.update(target.params)
        if target.scopes:
            params["scope"] = " ".join(target.scopes)
        self.url: str = authorization_url(target.authorize_url, params)
        self.listener = CallbackListener(client.redirect_uri, state, self._on_code, where=target.redirect_setting,
                                         vendor=target.vendor)
        self.info: SignInInfo | None = None
        self._ended = False
        self._expired = False
        self._end_lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @property
    def running(self) -> bool:
        return not self._ended and not self.listener.done.is_set()

    @property
    def finished(self) -> bool:
        """The browser came back (or the time is up): `wait` answers at once."""
        return self.listener.done.is_set()

    def start(self) -> None:
        self.listener.start()
        self._timer = threading.Timer(self.lifetime, self._expire)
        self._timer.daemon = True
        self._timer.start()
        log.info("sign-in to %s: listening on %s until the browser returns (at most %.0f s)",
                 self.owner.target.key, self.client.redirect_uri, self.lifetime)

    # -- in the listener thread ----------------------------------------------------
    def _on_code(self, code: str, iss: str | None) -> str:
        try:
            response = exchange_code(self.client, code, self._pkce.code_verifier)
        except TokenEndpointError as exc:
            raise SignInError(f"{self.owner.target.vendor} did not accept the sign-in ({exc}); start the sign-in "
                              "again") from None
        info = self.owner.finish(response, self.loop_token)
        self.info = info
        who = f" as {info.identity_email}" if info.identity_email else ""
        text = f"You are signed in to {self.owner.target.vendor}{who}."
        if info.missing_scopes:
            text += (f" The app did not grant {' '.join(info.missing_scopes)}, so tools that need "
                     f"{'it' if len(info.missing_scopes) == 1 else 'them'} will be refused.")
        self._end_soon()
        return text

    def _expire(self) -> None:
        self._expired = True
        self.listener.fail(f"the sign-in was not completed within {self.lifetime:g} s")
        self._end()

    def _end_soon(self) -> None:
        # The page is still being written: end just after it is sent.
        timer = threading.Timer(0.5, self._end)
        timer.daemon = True
        timer.start()

    def _end(self) -> None:
        with self._end_lock:
            if self._ended:
                return
            self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        try:
            self.listener.close()  # bounded: it never waits on a connection
        finally:
            self.lock.release()
            self.owner.ended(self)

    # -- for the waiter ----------------------------------------------------------------
    async def wait(self, timeout: float) -> SignInInfo:
        """The result once the browser came back. Raises SignInError (denied, wrong state, time limit)."""
        with anyio.move_on_after(timeout):
            while not self.listener.done.is_set():
                await anyio.sleep(POLL)
        return self._result(timeout)

    def wait_blocking(self, timeout: float, tick: Callable[[float], None] | None = None) -> SignInInfo:
        """`wait` for synchronous callers; `tick(seconds_left)` is called about once a second."""
        deadline = time.monotonic() + timeout
        while not self.listener.done.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if tick is not None:
                tick(left)
        return self._result(timeout)

    def _result(self, timeout: float) -> SignInInfo:
        outcome = self.listener.outcome
        if outcome is None:
            raise SignInTimeout(f"it did not complete within {timeout:g} s", self.listener.foreign_note())
        if not outcome.ok or self.info is None:
            if self._expired and not outcome.ok:
                raise SignInTimeout(outcome.message, self.listener.foreign_note())
            raise SignInError(outcome.message)
        return self.info

    def close(self) -> None:
        """The caller stopped waiting in time. A finished or failed sign-in ends now; one still open keeps
        listening until its lifetime is over, so the URL the user was given keeps working (a late sign-in
        still lands). Blocks for at most the listener's CLOSE_WAIT: call it from a worker thread."""
        if self.listener.done.is_set():
            self._end()

    def end(self) -> None:
        """End now, finished or not: the `login` command on Ctrl-C or time limit, a tool call whose sign-in
        the user declined or whose client cancelled it. Frees the port and the sign-in lock, so `login` works
        at once. Blocks for at most the listener's CLOSE_WAIT: call it from a worker thread."""
        self.listener.fail("the sign-in was cancelled")
        self._end()


class JoinedSignIn:
    """A sign-in already running in this process: wait for it too, with the same URL."""

    def __init__(self, session: SignInSession) -> None:
        self.session = session
        self.url = session.url

    @property
    def finished(self) -> bool:
        return self.session.finished

    async def wait(self, timeout: float) -> SignInInfo:
        return await self.session.wait(timeout)

    def close(self) -> None:
        return None

    def end(self) -> None:
        return None  # the sign-in belongs to the call that started it, which may still be waiting for it


class AlreadySignedIn:
    """Another process completed a sign-in just before this one would have started: nothing to do."""

    url = None
    finished = True

    def __init__(self, info: SignInInfo) -> None:
        self.info = info

    async def wait(self, timeout: float) -> SignInInfo:
        return self.info

    def close(self) -> None:
        return None

    def end(self) -> None:
        return None


class ElsewhereSignIn:
    """Another proxy process holds the callback port for its sign-in: wait for it to finish, then use the
    token it stored. `url` is None: that process already showed the user its own URL."""

    url = None
    finished = False

    def __init__(self, owner: SignIns) -> None:
        self.owner = owner
        self.port = owner.port

    async def wait(self, timeout: float) -> SignInInfo:
        with anyio.move_on_after(timeout):
            while True:
                info = await anyio.to_thread.run_sync(self.owner.stored)
                if info is not None:
                    return info
                if not await anyio.to_thread.run_sync(self.owner.running_elsewhere):
                    info = await anyio.to_thread.run_sync(self.owner.stored)
                    if info is not None:
                        return info
                    raise SignInError("the sign-in another proxy process was running did not complete; call the tool "
                                      "again to start a new one")
                await anyio.sleep(0.25)
        raise SignInError(f"another proxy process (another window of your AI client, or a `login` in a terminal) "
                          f"is running a sign-in on port {self.port} and it did not finish within {timeout:g} s; "
                          "finish it in the browser tab it opened, then call the tool again")

    def close(self) -> None:
        return None

    def end(self) -> None:
        return None


SignInHandle = SignInSession | JoinedSignIn | AlreadySignedIn | ElsewhereSignIn
"""What starting a sign-in returns: each has `url` (None: nothing for this caller to open), `finished`,
`wait(timeout)`, `close()` and `end()`."""
