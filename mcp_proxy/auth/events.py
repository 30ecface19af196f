"""What the auth package tells the rest of the proxy, given at construction (`TokenBroker`, `mcp_oauth_auth`):
audit events, the token values the audit log must redact, and completed sign-ins. `serve` passes the audit
log's; the commands pass nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_proxy.auth.session import SignInInfo


@dataclass(frozen=True)
class AuthEvents:
    """Each is optional: None means nobody listens."""

    emit: Callable[[str, dict[str, Any]], object] | None = None  # append an audit event (called on the event loop)
    reveal: Callable[[str], None] | None = None  # the audit log redacts this value from now on
    announce: Callable[[SignInInfo], Awaitable[None]] | None = None  # a sign-in completed (identity confirmed)

    def reveal_all(self, values: tuple[str, ...]) -> None:
        if self.reveal is not None:
            for value in values:
                self.reveal(value)


NO_EVENTS = AuthEvents()  # the default: nobody listens
