"""The client on the other end of stdio, as the rest of the server needs it.

`ClientLink` knows the client's session once it has initialized: it pushes `list_changed` (or remembers
to, when nothing is connected yet). An upstream's requests toward the user go through
server/upstream_requests.py. `SessionChannel` is what one
call may ask of the client while it runs (server/call.py: ClientChannel).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import mcp_types as types

from mcp_proxy.server.call import RequestId

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

    from mcp_proxy.audit import AuditContext

log = logging.getLogger(__name__)


class SessionChannel:
    """The client's session, for one request."""

    def __init__(self, session: ServerSession, request_id: RequestId | None) -> None:
        self._session = session
        self._request_id = request_id

    @property
    def can_elicit_url(self) -> bool:
        caps = self._session.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        return elicitation is not None and elicitation.url is not None and self._session.can_send_request

    async def elicit_url(self, message: str, url: str, elicitation_id: str) -> types.ElicitResult | None:
        return await self._session.elicit_url(message, url, elicitation_id, self._request_id)

    async def elicit_complete(self, elicitation_id: str) -> None:
        try:
            await self._session.send_elicit_complete(elicitation_id, self._request_id)
        except Exception as exc:  # noqa: BLE001 - only a courtesy to the client; it may have gone
            log.debug("could not send elicitation/complete (%s)", type(exc).__name__)


class ClientLink:
    def __init__(self, context: AuditContext) -> None:
        self._context = context
        self.session: ServerSession | None = None
        self._pending_list_changed = False

    async def initialized(self, session: ServerSession) -> None:
        self.session = session
        params = session.client_params
        info = params.client_info if params is not None else None
        if info is not None:
            self._context.client_name = info.name
            self._context.client_version = info.version
        if self._pending_list_changed:
            self._pending_list_changed = False
            await self.list_changed()

    async def list_changed(self) -> None:
        if self.session is None:
            self._pending_list_changed = True
            return
        try:
            await self.session.send_tool_list_changed()
        except Exception as exc:  # noqa: BLE001 - a client that went away must not break the server
            log.debug("could not send list_changed (%s)", type(exc).__name__)
