"""Sign-in started by a tool call, for upstreams with per-user OAuth.

Where the client declared URL-mode elicitation, it is asked to open the
authorization URL; otherwise the browser is opened. The call proceeds when
sign-in completes within SIGN_IN_WAIT in all (asking the client included);
else the model gets the URL and the `login` command. A declined or cancelled
sign-in ends at once (so `login` can run); one that merely ran out of time
keeps listening a few minutes, so a late sign-in still lands.

Ending a sign-in stops its listener, which may take a moment: that runs in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import anyio
import mcp_types as types

from mcp_proxy.errors import ProxyError, SignInError, SignInRequired, SignInTimeout
from mcp_proxy.server.call import CallResult, Next, ToolCall, error_result

if TYPE_CHECKING:
    from mcp_proxy.upstreams.base import PendingSignIn, Upstream

log = logging.getLogger(__name__)

SIGN_IN_WAIT = 120.0
WAIT_ENV = "MCP_ACCESS_PROXY_SIGN_IN_WAIT"  # seconds; for slow single-sign-on pages, and for tests
RELEASE_WAIT = 10.0  # at most this long to stop a listener, off the event loop
LIFETIME_AFTER_WAIT = 180.0  # the listener outlives the wait by this much: a late sign-in still lands


def sign_in_wait(env: Mapping[str, str] | None = None) -> float:
    """SIGN_IN_WAIT, or the number of seconds in MCP_ACCESS_PROXY_SIGN_IN_WAIT (1 to 3600)."""
    raw = (os.environ if env is None else env).get(WAIT_ENV)
    if not raw:
        return SIGN_IN_WAIT
    try:
        value = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; waiting %g s for sign-ins", WAIT_ENV, raw, SIGN_IN_WAIT)
        return SIGN_IN_WAIT
    return min(max(value, 1.0), 3600.0)


async def _open_browser(url: str) -> bool:
    import webbrowser  # honours BROWSER

    try:
        return bool(await anyio.to_thread.run_sync(webbrowser.open, url))
    except Exception as exc:  # noqa: BLE001 - webbrowser.Error, a BROWSER command that cannot start
        log.warning("could not open a browser (%s)", type(exc).__name__)
        return False


async def _release(session: PendingSignIn, end: bool) -> None:
    """`session.end()` (declined, cancelled) or `session.close()` (done, or out of time) in a worker thread,
    bounded, and shielded so that a cancelled call still frees the port."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_WAIT):
        await anyio.to_thread.run_sync(session.end if end else session.close, abandon_on_cancel=True)


class IdentityConfirmed(Protocol):
    async def __call__(self, email: str | None, upstream: str, /) -> None: ...


class SignInFlow:
    """Signs the user in for a call that needs it: asks the client to open the sign-in page (URL
    elicitation) or opens the browser, and waits, bounded. Returns None once signed in, else the result
    that tells the model what happened and what to do."""

    def __init__(self, identity_confirmed: IdentityConfirmed) -> None:
        self._identity_confirmed = identity_confirmed

    async def __call__(self, call: ToolCall, upstream: Upstream, exc: SignInRequired) -> types.CallToolResult | None:
        broker = upstream.sign_in_broker()
        login = f"mcp-access-proxy login {upstream.key}"
        if broker is None:
            return error_result(f"{exc} Then call the tool again.")  # the text names the login command
        client = call.client
        total = sign_in_wait()
        deadline = anyio.current_time() + total
        try:
            session = await broker.begin_sign_in(lifetime=total + LIFETIME_AFTER_WAIT)
        except SignInError as start_error:  # port busy, keychain, client secret
            return error_result(f"Sign-in to '{upstream.key}' could not start: {start_error}. Alternatively run "
                                f"`{login}` in a terminal.")
        elicitation_id = None
        end_now = False  # declined or cancelled: free the port for `login` at once
        late = (f" The sign-in page keeps waiting a few more minutes at {session.url}: the call can be repeated "
                "once the user has signed in there." if session.url else "")
        try:
            message = (f"Sign in to {upstream.kind} as yourself so the proxy can act with your own permissions. "
                       "The call continues when you have signed in.")
            if session.url is None:
                log.info("another proxy process is signing in to %s; waiting for it", upstream.key)
            elif client is not None and client.can_elicit_url:
                elicitation_id = uuid.uuid4().hex
                answer = None
                with anyio.move_on_after(total) as asking:  # a client that never answers must not hold the call
                    answer = await client.elicit_url(message, session.url, elicitation_id)
                if asking.cancelled_caught:
                    return error_result(f"Sign-in to '{upstream.key}' did not complete within {total:g} s: the "
                                        f"client did not answer the request to open the sign-in page.{late} Or "
                                        f"run `{login}` in a terminal.")
                if answer is None or answer.action != "accept":
                    end_now = True
                    return error_result(f"Sign-in to '{upstream.key}' was declined, so the call was not made. "
                                        f"To sign in later, run `{login}` in a terminal, or call the tool again.")
            else:
                log.info("opening the browser to sign in to %s", upstream.key)
                # A browser that cannot open says so; one that opened and came back already is fine.
                if not await _open_browser(session.url) and not session.finished:
                    return error_result(
                        f"Sign-in to '{upstream.key}' is needed, but no browser could be opened here. Ask the user "
                        f"to open {session.url} within a few minutes (or to run `{login}` in a terminal), then "
                        "call the tool again.")
            info = await session.wait(max(0.0, deadline - anyio.current_time()))
        except anyio.get_cancelled_exc_class():
            end_now = True
            raise
        except SignInTimeout as wait_error:
            return error_result(f"Sign-in to '{upstream.key}' did not complete within {total:g} s (the time a "
                                f"tool call waits for a sign-in){wait_error.note}.{late} Or run `{login}` in a "
                                "terminal.")
        except ProxyError as wait_error:  # denied consent, a refused code exchange, ...
            reason = str(wait_error) or "it did not complete"
            return error_result(f"Sign-in to '{upstream.key}' did not complete: {reason}. Run `{login}` in a "
                                "terminal, or call the tool again to start a new sign-in.")
        finally:
            await _release(session, end_now)
        if elicitation_id is not None and client is not None:
            await client.elicit_complete(elicitation_id)
        if not info.announced:
            await self._identity_confirmed(info.identity_email or broker.identity_email, upstream.key)
        return None


class SignIn:
    """A call refused for want of a sign-in (REST connector or MCP upstream alike) signs the user in and
    runs once more. Signed in yet refused again at once: said so, never looped."""

    def __init__(self, flow: SignInFlow) -> None:
        self._flow = flow

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        try:
            return await call_next(call)
        except SignInRequired as exc:
            if call.upstream is None:
                raise
            problem = await self._flow(call, call.upstream, exc)
        if problem is not None:
            call.outcome, call.error_type = "error", "sign_in_required"
            return problem
        try:
            return await call_next(call)
        except SignInRequired as again:
            return call.fail("sign_in_required", f"{again} The vendor refused the new sign-in right away; check "
                             "the account's access to this tool, then call it again.")
