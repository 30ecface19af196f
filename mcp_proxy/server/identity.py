"""Who the user is: the configured `[user] email` until a vendor's sign-in confirms someone.

The user is who the policy decides for and whom audit records name. A sign-in can change under a running
process: `login` as someone else, or `logout`, in a terminal. So every read of `user` (each call reads it
before the policy decides, and again right before forwarding) first asks each OAuth upstream's broker,
cheaply (one stat of the token's metadata file), whether the stored sign-in changed since it last looked.
A new identity becomes the user at once, for the call that is reading it; its `auth.signed_in` record and
the client's `list_changed` follow on the event loop, as for a sign-in this process ran (`confirmed`). A
sign-out leaves the user as it was: the broker no longer has a token, so the next call asks for a sign-in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mcp_proxy.errors import ProxyError
from mcp_proxy.server.stages.audit import AuditAppend

if TYPE_CHECKING:
    from mcp_proxy.audit import AuditContext
    from mcp_proxy.auth.events import StoredSignIn
    from mcp_proxy.upstreams.base import Upstream

log = logging.getLogger(__name__)


@runtime_checkable
class StoredSignInWatch(Protocol):
    """A broker that can tell, cheaply, that its stored sign-in changed (auth.TokenBroker)."""

    def stored_sign_in_change(self) -> StoredSignIn | None: ...


class Identity:
    def __init__(self, configured: str | None, context: AuditContext, append: AuditAppend,
                 changed: Callable[[], Awaitable[None]]) -> None:
        self.configured = configured
        self._user = configured
        self._context = context
        self._append = append
        self._changed = changed  # the tool list depends on the user: tell the client
        self._warned = False
        self._watches: list[StoredSignInWatch] = []
        self._announcing: set[asyncio.Task[None]] = set()

    @property
    def user(self) -> str | None:
        """The user as of now: a sign-in stored by another process since the last read is taken up first."""
        for watch in self._watches:
            try:
                change = watch.stored_sign_in_change()
            except (ProxyError, OSError, ValueError, TypeError) as exc:  # a damaged record must not break a call
                log.debug("could not look at the stored sign-in (%s)", type(exc).__name__)
                continue
            if change is not None:
                self._stored_changed(change)
        return self._user

    def watch(self, broker: StoredSignInWatch) -> None:
        """Follow `broker`'s stored sign-in from now on (the first look only notes where it stands)."""
        try:
            broker.stored_sign_in_change()
        except (ProxyError, OSError, ValueError, TypeError) as exc:
            log.debug("could not look at the stored sign-in (%s)", type(exc).__name__)
        self._watches.append(broker)

    async def confirmed(self, email: str | None, upstream: str) -> None:
        """A vendor confirmed who the user is: that email is the user from now on."""
        await self._append("auth.signed_in", {"upstream": upstream, "user.email": email})
        if self.adopt(email, upstream):
            await self._changed()

    def adopt(self, email: str | None, upstream: str) -> bool:
        """Make `email` the user; True when that changed who the user is."""
        if not email or email == self._user:
            return False
        if self.configured and email.lower() != self.configured.lower() and not self._warned:
            self._warned = True
            log.warning("%s confirms you as %s, but [user] email is %s; audit records use %s",
                        upstream, email, self.configured, email)
        self._user = email
        self._context.user = email
        return True

    # -- a sign-in changed by another process -----------------------------------------------
    def _stored_changed(self, change: StoredSignIn) -> None:
        if not change.signed_in:
            log.info("%s: signed out in another process; the next call needs a sign-in", change.upstream)
            return
        email = change.identity_email
        if not self.adopt(email, change.upstream):
            return
        log.info("%s: signed in as %s in another process; calls run as %s from now on", change.upstream, email,
                 email)
        self._soon(self._announce(email, change.upstream))

    async def _announce(self, email: str | None, upstream: str) -> None:
        """What `confirmed` does besides adopting: the record, and the client's list_changed."""
        try:
            await self._append("auth.signed_in", {"upstream": upstream, "user.email": email})
        except (ProxyError, OSError) as exc:
            log.warning("could not record the sign-in to %s (%s)", upstream, type(exc).__name__)
        await self._changed()

    def _soon(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on the event loop, after the current step (`user` is read from synchronous code)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): the user was adopted, nobody to tell
            work.close()
            return
        task = loop.create_task(work)
        self._announcing.add(task)  # a strong reference until it is done
        task.add_done_callback(self._announced)

    def _announced(self, task: asyncio.Task[None]) -> None:
        self._announcing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("announcing a changed sign-in failed", exc_info=task.exception())


def adopt_stored_identities(identity: Identity, upstreams: Mapping[str, Upstream]) -> None:
    """Start with the identity a previous sign-in confirmed (each OAuth upstream's stored token record), and
    follow each one's stored sign-in from then on."""
    for key, upstream in upstreams.items():
        broker = upstream.sign_in_broker()
        if broker is None:
            continue
        try:
            email = broker.identity_email
        except (ProxyError, OSError, ValueError) as exc:  # a damaged token record must not stop start-up
            log.debug("no stored identity for %s (%s)", key, type(exc).__name__)
            email = None
        if email and identity.adopt(email, key):
            log.info("%s: signed in as %s (from the last sign-in)", key, email)
        if isinstance(broker, StoredSignInWatch):
            identity.watch(broker)
