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
from typing import Any

import anyio
import mcp_types as types

from mcp_proxy.auth.errors import SignInTimeout
from mcp_proxy.server.hub import Hub, error_result

log = logging.getLogger(__name__)

SIGN_IN_WAIT = 120.0
WAIT_ENV = "MCP_ACCESS_PROXY_SIGN_IN_WAIT"  # seconds; for slow single-sign-on pages, and for tests
RELEASE_WAIT = 10.0  # at most this long to stop a listener, off the event loop
LIFETIME_AFTER_WAIT = 180.0  # the listener outlives the wait by this much: a late sign-in still lands


def sign_in_wait(env: Any = None) -> float:
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


def _supports_url_elicitation(session: Any) -> bool:
    caps = getattr(session, "client_capabilities", None)
    elicitation = getattr(caps, "elicitation", None) if caps is not None else None
    return elicitation is not None and getattr(elicitation, "url", None) is not None and \
        getattr(session, "can_send_request", False)


async def _open_browser(url: str) -> bool:
    import webbrowser  # honours BROWSER

    try:
        return bool(await anyio.to_thread.run_sync(webbrowser.open, url))
    except Exception as exc:  # noqa: BLE001 - webbrowser.Error, a BROWSER command that cannot start
        log.warning("could not open a browser (%s)", type(exc).__name__)
        return False


async def _release(session: Any, end: bool) -> None:
    """`session.end()` (declined, cancelled) or `session.close()` (done, or out of time) in a worker thread,
    bounded, and shielded so that a cancelled call still frees the port."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(RELEASE_WAIT):
        await anyio.to_thread.run_sync(session.end if end else session.close, abandon_on_cancel=True)


def make_sign_in(hub: Hub, ctx: Any) -> Any:
    async def sign_in(upstream: Any, exc: Exception) -> types.CallToolResult | None:
        broker = getattr(getattr(upstream, "credentials", None), "broker", None)
        login = f"mcp-access-proxy login {upstream.key}"
        if broker is None:
            return error_result(f"{exc} Run `{login}` in a terminal, then call the tool again.")
        total = sign_in_wait()
        deadline = anyio.current_time() + total
        try:
            session = await broker.begin_sign_in(lifetime=total + LIFETIME_AFTER_WAIT)
        except Exception as start_error:  # noqa: BLE001 - SignInError: port busy, keychain, client secret
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
            elif _supports_url_elicitation(ctx.session):
                elicitation_id = uuid.uuid4().hex
                answer = None
                with anyio.move_on_after(total) as asking:  # a client that never answers must not hold the call
                    answer = await ctx.session.elicit_url(message, session.url, elicitation_id, ctx.request_id)
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
                if not await _open_browser(session.url) and not getattr(session, "finished", False):
                    return error_result(
                        f"Sign-in to '{upstream.key}' is needed, but no browser could be opened here. Ask the user "
                        f"to open {session.url} within a few minutes (or to run `{login}` in a terminal), then "
                        "call the tool again.")
            info = await session.wait(max(0.0, deadline - anyio.current_time()))
        except anyio.get_cancelled_exc_class():
            end_now = True
            raise
        except Exception as wait_error:  # noqa: BLE001 - timeout, denied consent, a refused code exchange…
            if isinstance(wait_error, SignInTimeout):
                note = wait_error.note
                return error_result(f"Sign-in to '{upstream.key}' did not complete within {total:g} s (the time a "
                                    f"tool call waits for a sign-in){note}.{late} Or run `{login}` in a terminal.")
            reason = str(wait_error) or "it did not complete"
            return error_result(f"Sign-in to '{upstream.key}' did not complete: {reason}. Run `{login}` in a "
                                "terminal, or call the tool again to start a new sign-in.")
        finally:
            await _release(session, end_now)
        if elicitation_id is not None:
            try:
                await ctx.session.send_elicit_complete(elicitation_id, ctx.request_id)
            except Exception as exc:  # noqa: BLE001 - only a courtesy to the client
                log.debug("could not send elicitation/complete (%s)", type(exc).__name__)
        if not getattr(info, "announced", False):
            await hub.identity_confirmed(getattr(info, "identity_email", None) or broker.identity_email, upstream.key)
        return None

    return sign_in
