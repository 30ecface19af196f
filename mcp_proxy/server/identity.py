"""Who the user is: the configured `[user] email` until a vendor's sign-in confirms someone.

The user is who the policy decides for and whom audit records name.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from mcp_proxy.errors import ProxyError
from mcp_proxy.server.stages.audit import AuditAppend

if TYPE_CHECKING:
    from mcp_proxy.audit import AuditContext
    from mcp_proxy.upstreams.base import Upstream

log = logging.getLogger(__name__)


class Identity:
    def __init__(self, configured: str | None, context: AuditContext, append: AuditAppend,
                 changed: Callable[[], Awaitable[None]]) -> None:
        self.configured = configured
        self.user = configured
        self._context = context
        self._append = append
        self._changed = changed  # the tool list depends on the user: tell the client
        self._warned = False

    async def confirmed(self, email: str | None, upstream: str) -> None:
        """A vendor confirmed who the user is: that email is the user from now on."""
        await self._append("auth.signed_in", {"upstream": upstream, "user.email": email})
        if self.adopt(email, upstream):
            await self._changed()

    def adopt(self, email: str | None, upstream: str) -> bool:
        """Make `email` the user; True when that changed who the user is."""
        if not email or email == self.user:
            return False
        if self.configured and email.lower() != self.configured.lower() and not self._warned:
            self._warned = True
            log.warning("%s confirms you as %s, but [user] email is %s; audit records use %s",
                        upstream, email, self.configured, email)
        self.user = email
        self._context.user = email
        return True


def adopt_stored_identities(identity: Identity, upstreams: Mapping[str, Upstream]) -> None:
    """Start with the identity a previous sign-in confirmed (each OAuth upstream's stored token record)."""
    for key, upstream in upstreams.items():
        broker = upstream.sign_in_broker()
        if broker is None:
            continue
        try:
            email = broker.identity_email
        except (ProxyError, OSError, ValueError) as exc:  # a damaged token record must not stop start-up
            log.debug("no stored identity for %s (%s)", key, type(exc).__name__)
            continue
        if email and identity.adopt(email, key):
            log.info("%s: signed in as %s (from the last sign-in)", key, email)
