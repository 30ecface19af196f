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


def make_sign_in(hub: Hub, ctx: Any) -> Any:
    async def sign_in(upstream: Any, exc: Exception) -> types.CallToolResult | None:
        broker = getattr(getattr(upstream, "credentials", None), "broker", None)
        login = f"mcp-access-proxy login {upstream.key}"
        if broker is None:
            return error_result(f"{exc} Run `{login}` in a terminal, then call the tool again.")
        try:
            session = await broker.begin_sign_in()
        except Exception as start_error:  # noqa: BLE001 - SignInError: port busy, another sign-in running
            return error_result(f"Sign-in to '{upstream.key}' could not start: {start_error}")
        try:
            message = (f"Sign in to {upstream.kind} as yourself so the proxy can act with your own permissions. "
                       "The call continues when you have signed in.")
            if _supports_url_elicitation(ctx.session):
                answer = await ctx.session.elicit_url(message, session.url, uuid.uuid4().hex, ctx.request_id)
                if answer.action != "accept":
                    return error_result(f"Sign-in to '{upstream.key}' was declined, so the call was not made. "
                                        f"To sign in later, run `{login}` or open {session.url}")
            else:
                from mcp_proxy.upstreams.factory import _open_browser

                log.info("opening the browser to sign in to %s", upstream.key)
                await _open_browser(session.url)
            info = await session.wait(SIGN_IN_WAIT)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as wait_error:  # noqa: BLE001 - timeout, denied consent, wrong state…
            reason = str(wait_error) or f"it did not complete within {SIGN_IN_WAIT:g} s"
            return error_result(f"Sign-in to '{upstream.key}' did not complete: {reason}. Open {session.url} in a "
                                f"browser, or run `{login}` in a terminal, then call the tool again.")
        finally:
            session.close()
        email = getattr(info, "identity_email", None) or getattr(broker, "identity_email", None)
        await hub.identity_confirmed(email, upstream.key)
        return None

    return sign_in
