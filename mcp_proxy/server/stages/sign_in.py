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
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
import mcp_types as types

from mcp_proxy.errors import ProxyError, SignInError, SignInRequired, SignInTimeout
from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.upstreams.base import error_result

if TYPE_CHECKING:
    from mcp_proxy.upstreams.base import PendingSignIn, SignInBroker, Upstream

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


SIGN_IN_INPUT = "sign_in"  # the key of the sign-in's URL elicitation in an InputRequiredResult


@dataclass(eq=False)
class _Waiting:
    """A sign-in handed to a stateless-era client, until it retries the call."""

    session: PendingSignIn
    upstream: str
    tool: str
    deadline: float  # anyio time
    elicitation_id: str


class SignInFlow:
    """Signs the user in for a call that needs it, and waits, bounded. Returns None once signed in, else the
    result that answers the call.

    How the user is asked depends on the client's era: a handshake-era client that declared URL-mode
    elicitation is asked to open the sign-in page while the call waits; a stateless-era client gets an
    `InputRequiredResult` holding that URL elicitation and retries the call with its answer and the
    request state; otherwise the browser is opened."""

    def __init__(self, identity_confirmed: IdentityConfirmed) -> None:
        self._identity_confirmed = identity_confirmed
        self._waiting: dict[str, _Waiting] = {}  # by request state

    async def __call__(self, call: ToolCall, upstream: Upstream, exc: SignInRequired) -> CallResult | None:
        broker = upstream.sign_in_broker()
        if broker is None:
            return error_result(f"{exc} Then call the tool again.")  # the text names the login command
        if call.stateless:
            return await self._in_rounds(call, upstream, broker)
        client = call.client
        total = sign_in_wait()
        deadline = anyio.current_time() + total
        session = await self._begin(upstream, broker, total)
        if isinstance(session, types.CallToolResult):
            return session
        elicitation_id = None
        end_now = False  # declined or cancelled: free the port for `login` at once
        try:
            if session.url is None:
                log.info("another proxy process is signing in to %s; waiting for it", upstream.key)
            elif client is not None and client.can_elicit_url:
                elicitation_id = uuid.uuid4().hex
                answer = None
                with anyio.move_on_after(total) as asking:  # a client that never answers must not hold the call
                    answer = await client.elicit_url(_message(upstream), session.url, elicitation_id)
                if asking.cancelled_caught:
                    return error_result(f"Sign-in to '{upstream.key}' did not complete within {total:g} s: the "
                                        "client did not answer the request to open the sign-in page."
                                        f"{_late(session)} Or run `{_login(upstream)}` in a terminal.")
                if answer is None or answer.action != "accept":
                    end_now = True
                    return _declined(upstream)
            else:
                log.info("opening the browser to sign in to %s", upstream.key)
                # A browser that cannot open says so; one that opened and came back already is fine.
                if not await _open_browser(session.url) and not session.finished:
                    return error_result(
                        f"Sign-in to '{upstream.key}' is needed, but no browser could be opened here. Ask the user "
                        f"to open {session.url} within a few minutes (or to run `{_login(upstream)}` in a "
                        "terminal), then call the tool again.")
            problem = await self._wait(session, upstream, broker, deadline, total)
        except anyio.get_cancelled_exc_class():
            end_now = True
            raise
        finally:
            await _release(session, end_now)
        if elicitation_id is not None and client is not None:
            await client.elicit_complete(elicitation_id)
        return problem

    async def _in_rounds(self, call: ToolCall, upstream: Upstream, broker: SignInBroker) -> CallResult | None:
        """The stateless era: the first round hands out the sign-in page as an input request; the retry
        carries the user's answer and the state, and waits for the sign-in to complete."""
        await self._forget_expired()
        waiting = self._waiting.pop(call.request_state, None) if call.request_state else None
        if waiting is not None and (waiting.upstream, waiting.tool) != (upstream.key, call.name):
            await _release(waiting.session, end=True)  # a state handed out for another call: start anew
            waiting = None
        if waiting is None:
            total = sign_in_wait()
            session = await self._begin(upstream, broker, total)
            if isinstance(session, types.CallToolResult):
                return session
            if session.url is None:  # another process is signing in: wait for it within this round
                try:
                    return await self._wait(session, upstream, broker, anyio.current_time() + total, total)
                finally:
                    await _release(session, False)
            state = secrets.token_urlsafe(24)
            elicitation_id = uuid.uuid4().hex
            self._waiting[state] = _Waiting(session, upstream.key, call.name, anyio.current_time() + total,
                                            elicitation_id)
            ask = types.ElicitRequest(params=types.ElicitRequestURLParams(
                mode="url", message=_message(upstream), url=session.url, elicitation_id=elicitation_id))
            return types.InputRequiredResult(input_requests={SIGN_IN_INPUT: ask}, request_state=state).model_dump(
                by_alias=True, exclude_none=True, mode="json")
        answer = (call.input_responses or {}).get(SIGN_IN_INPUT)
        if not isinstance(answer, types.ElicitResult) or answer.action != "accept":
            await _release(waiting.session, end=True)
            return _declined(upstream)
        total = sign_in_wait()
        try:
            return await self._wait(waiting.session, upstream, broker, waiting.deadline, total)
        finally:
            await _release(waiting.session, False)

    async def _forget_expired(self) -> None:
        now = anyio.current_time()
        for state, waiting in list(self._waiting.items()):
            if now > waiting.deadline + LIFETIME_AFTER_WAIT:
                del self._waiting[state]
                await _release(waiting.session, end=True)

    async def _begin(self, upstream: Upstream, broker: SignInBroker, total: float
                     ) -> PendingSignIn | types.CallToolResult:
        try:
            return await broker.begin_sign_in(lifetime=total + LIFETIME_AFTER_WAIT)
        except SignInError as start_error:  # port busy, keychain, client secret
            return error_result(f"Sign-in to '{upstream.key}' could not start: {start_error}. Alternatively run "
                                f"`{_login(upstream)}` in a terminal.")

    async def _wait(self, session: PendingSignIn, upstream: Upstream, broker: SignInBroker, deadline: float,
                    total: float) -> types.CallToolResult | None:
        """Wait until `deadline` for the sign-in; None once signed in (the identity confirmed), else why not."""
        login = _login(upstream)
        try:
            info = await session.wait(max(0.0, deadline - anyio.current_time()))
        except SignInTimeout as wait_error:
            return error_result(f"Sign-in to '{upstream.key}' did not complete within {total:g} s (the time a "
                                f"tool call waits for a sign-in){wait_error.note}.{_late(session)} Or run "
                                f"`{login}` in a terminal.")
        except ProxyError as wait_error:  # denied consent, a refused code exchange, ...
            reason = str(wait_error) or "it did not complete"
            return error_result(f"Sign-in to '{upstream.key}' did not complete: {reason}. Run `{login}` in a "
                                "terminal, or call the tool again to start a new sign-in.")
        if not info.announced:
            await self._identity_confirmed(info.identity_email or broker.identity_email, upstream.key)
        return None


def _login(upstream: Upstream) -> str:
    return f"mcp-access-proxy login {upstream.key}"


def _message(upstream: Upstream) -> str:
    return (f"Sign in to {upstream.kind} as yourself so the proxy can act with your own permissions. The call "
            "continues when you have signed in.")


def _late(session: PendingSignIn) -> str:
    return (f" The sign-in page keeps waiting a few more minutes at {session.url}: the call can be repeated once "
            "the user has signed in there." if session.url else "")


def _declined(upstream: Upstream) -> types.CallToolResult:
    return error_result(f"Sign-in to '{upstream.key}' was declined, so the call was not made. To sign in later, run "
                        f"`{_login(upstream)}` in a terminal, or call the tool again.")


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
