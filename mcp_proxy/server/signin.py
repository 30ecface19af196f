"""Sign-in started by a tool call, for upstreams with per-user OAuth.

Where the client declared URL-mode elicitation, it is asked to open the
authorization URL; otherwise the browser is opened. The call proceeds when
sign-in completes within a bounded wait; else the model gets the URL and the
`login` command.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import anyio
import mcp_types as types

from mcp_proxy.server.hub import Hub, error_result

log = logging.getLogger(__name__)

SIGN_IN_WAIT = 120.0


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


def make_sign_in(hub: Hub, ctx: Any) -> Any:
    async def sign_in(upstream: Any, exc: Exception) -> types.CallToolResult | None:
        broker = getattr(getattr(upstream, "credentials", None), "broker", None)
        login = f"mcp-access-proxy login {upstream.key}"
        if broker is None:
            return error_result(f"{exc} Run `{login}` in a terminal, then call the tool again.")
        try:
            session = await broker.begin_sign_in()
        except Exception as start_error:  # noqa: BLE001 - SignInError: port busy, keychain, client secret
            return error_result(f"Sign-in to '{upstream.key}' could not start: {start_error}. Alternatively run "
                                f"`{login}` in a terminal.")
        elicitation_id = None
        try:
            message = (f"Sign in to {upstream.kind} as yourself so the proxy can act with your own permissions. "
                       "The call continues when you have signed in.")
            if session.url is None:
                log.info("another proxy process is signing in to %s; waiting for it", upstream.key)
            elif _supports_url_elicitation(ctx.session):
                elicitation_id = uuid.uuid4().hex
                answer = None
                with anyio.move_on_after(SIGN_IN_WAIT):  # a client that never answers must not hold the call
                    answer = await ctx.session.elicit_url(message, session.url, elicitation_id, ctx.request_id)
                if answer is None or answer.action != "accept":
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
            info = await session.wait(SIGN_IN_WAIT)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as wait_error:  # noqa: BLE001 - timeout, denied consent, wrong state…
            reason = str(wait_error) or f"it did not complete within {SIGN_IN_WAIT:g} s"
            still = (f" The sign-in page keeps waiting a few more minutes at {session.url}." if session.url
                     and "within" in reason else "")
            return error_result(f"Sign-in to '{upstream.key}' did not complete: {reason}.{still} Run `{login}` in a "
                                "terminal, or call the tool again to start a new sign-in.")
        finally:
            session.close()
        if elicitation_id is not None:
            try:
                await ctx.session.send_elicit_complete(elicitation_id, ctx.request_id)
            except Exception as exc:  # noqa: BLE001 - only a courtesy to the client
                log.debug("could not send elicitation/complete (%s)", type(exc).__name__)
        if not getattr(info, "announced", False):
            await hub.identity_confirmed(getattr(info, "identity_email", None) or broker.identity_email, upstream.key)
        return None

    return sign_in
