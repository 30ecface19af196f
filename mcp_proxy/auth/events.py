"""What the auth package tells the rest of the proxy, given at construction (`TokenBroker`, `mcp_oauth_auth`):
audit events, the token values the audit log must redact, and completed sign-ins. `serve` passes the audit
log's; the commands pass nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_proxy.auth.session import SignInInfo

log = logging.getLogger("mcp_proxy.auth.broker")


@dataclass(frozen=True)
class AuthEvents:
    """Each is optional: None means nobody listens."""

    emit: Callable[[str, dict[str, Any]], object] | None = None  # append an audit event (called on the event loop)
    reveal: Callable[[str], None] | None = None  # the audit log redacts this value from now on
    # a sign-in completed (identity confirmed): a coroutine function, run on the loop from the listener thread
    announce: Callable[[SignInInfo], Coroutine[Any, Any, None]] | None = None

    def reveal_all(self, values: tuple[str, ...]) -> None:
        if self.reveal is not None:
            for value in values:
                self.reveal(value)


NO_EVENTS = AuthEvents()  # the default: nobody listens


@dataclass(frozen=True)
class StoredSignIn:
    """The sign-in stored for an upstream, as another process left it (`TokenBroker.stored_sign_in_change`)."""

    upstream: str
    identity_email: str | None  # who signed in, when the vendor said
    signed_in: bool  # False: signed out (nothing stored)


class PendingEvents:
    """Audit events noted in worker threads (a refresh runs in one) and emitted later on the event loop."""

    def __init__(self, emit: Callable[[str, dict[str, Any]], object] | None) -> None:
        self._emit = emit
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def add(self, event: str, fields: dict[str, Any]) -> None:
        with self._lock:
            self._events.append((event, fields))

    def flush(self) -> None:
        """Emit what was noted (on the event loop). An audit that fails is logged, never raised: it must not
        break a call."""
        with self._lock:
            events, self._events = self._events, []
        if self._emit is None:
            return
        for event, fields in events:
            try:
                self._emit(event, fields)
            except Exception as exc:  # noqa: BLE001 - the audit must not break a call
                log.warning("could not record %s (%s)", event, type(exc).__name__)
