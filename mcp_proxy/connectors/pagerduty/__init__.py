"""The PagerDuty connector: incidents (read and act), services, users, schedules, on-calls,
escalation policies, teams and priorities as MCP tools, over the REST API v2.

Entry point: `build(config, credentials, user_email=..., transport=...)`; `current_user(connector)`
answers who the credentials belong to (`GET /users/me`). Tool names are stable.

Writes carry `From: <actor>` (`upstreams.<key>.from`, else `[user] email`): PagerDuty needs it
for account-level keys and records the change as made by that user. With an API key and no
actor, writes are refused before anything is sent.
"""

from __future__ import annotations

from typing import Any

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, ConnectorError, CredentialProvider, RestTool, ToolHandler, ToolOutput
from mcp_proxy.connectors.guard import RememberingCredentials, run_once
from mcp_proxy.connectors.pagerduty import directory, incidents
from mcp_proxy.connectors.pagerduty.client import (
    EU_BASE_URL,
    SCOPES,
    US_BASE_URL,
    base_url_for,
    build_client,
    valid_email,
)
from mcp_proxy.connectors.vendor import VendorConnector

__all__ = ["TOOL_OPERATIONS", "PagerDutyConnector", "base_url_for", "build", "current_user", "tool_scopes"]

# The operations each tool calls (method, spec path template): its scopes and read/write class follow.
TOOL_OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "list_incidents": (("GET", "/incidents"),),
    "get_incident": (("GET", "/incidents/{id}"),),
    "acknowledge_incident": (("PUT", "/incidents/{id}"),),
    "resolve_incident": (("PUT", "/incidents/{id}"),),
    "reassign_incident": (("PUT", "/incidents/{id}"),),
    "escalate_incident": (("PUT", "/incidents/{id}"),),
    "add_incident_note": (("POST", "/incidents/{id}/notes"),),
    "list_incident_notes": (("GET", "/incidents/{id}/notes"),),
    "list_incident_alerts": (("GET", "/incidents/{id}/alerts"),),
    "list_incident_log_entries": (("GET", "/incidents/{id}/log_entries"),),
    "create_incident": (("POST", "/incidents"),),
    "list_services": (("GET", "/services"),),
    "get_service": (("GET", "/services/{id}"),),
    "list_users": (("GET", "/users"),),
    "get_user": (("GET", "/users/{id}"),),
    "get_current_user": (("GET", "/users/me"),),
    "list_schedules": (("GET", "/schedules"),),
    "get_schedule": (("GET", "/schedules/{id}"),),
    "list_schedule_overrides": (("GET", "/schedules/{id}/overrides"),),
    "list_oncalls": (("GET", "/oncalls"),),
    "list_escalation_policies": (("GET", "/escalation_policies"),),
    "get_escalation_policy": (("GET", "/escalation_policies/{id}"),),
    "list_teams": (("GET", "/teams"),),
    "list_priorities": (("GET", "/priorities"),),
}


def tool_scopes(name: str) -> list[str]:
    """The Scoped OAuth scopes a tool needs (none for get_current_user)."""
    return sorted({s for op in TOOL_OPERATIONS[name] if (s := SCOPES[op])})


class _Credentials(RememberingCredentials):
    """Remembered credentials, plus what a per-user OAuth provider can tell: a new token after a 401,
    and the region its sign-in belongs to."""

    async def rejected(self) -> bool:
        """PagerDuty answered 401: True when the provider (per-user OAuth) has a new token to retry with.
        It raises the provider's sign-in request when the grant is dead."""
        hook = getattr(self._provider, "rejected", None)
        last = self.last
        if hook is None or last is None or last.scheme != "bearer":
            return False
        return bool(await hook(last.value))

    def region(self) -> str | None:
        """The region the provider's credential belongs to (an OAuth sign-in learns it), if it knows."""
        hook = getattr(self._provider, "region", None)
        return hook() if callable(hook) else None


class PagerDutyConnector(VendorConnector):
    kind = "pagerduty"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider, user_email: str | None,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        # PagerDuty keys and tokens are far longer than 8 characters; shorter values are not scrubbed.
        remembered = _Credentials(credentials, min_length=8)
        client, self.hint = build_client(config, remembered, transport)
        super().__init__(config, remembered, client, max(1, min(100, config.page_size)))
        self.credentials: _Credentials = remembered
        self.actor = (config.from_email or user_email or "").strip() or None
        self.offer(incidents.TOOLS.bind(self) + directory.TOOLS.bind(self))

    async def write(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """A write as the actor. Refused before sending when PagerDuty would not know who makes it."""
        headers = {"Content-Type": "application/json"}
        if self.actor:
            if not valid_email(self.actor):
                raise ConnectorError(f"the PagerDuty actor {self.actor!r} is not an email address; "
                                     f"{self.hint.from_fix()}", "missing_from")
            headers["From"] = self.actor
        else:
            credential = await self.credentials()
            # A user's OAuth token names the user; API keys may be account-level, which PagerDuty refuses.
            if credential.scheme != "bearer":
                raise ConnectorError(f"PagerDuty needs to know which user makes this change: "
                                     f"{self.hint.from_fix()}.", "missing_from")
        return await self.client.json(method, path, json=body, headers=headers)

    def follow_region(self) -> None:
        """Use the API host of the region the OAuth sign-in reported, unless the config pins one."""
        if self.config.base_url or self.config.auth != "oauth":
            return
        region = self.credentials.region()
        if region in ("us", "eu"):
            base = EU_BASE_URL if region == "eu" else US_BASE_URL
            if base != self.base_url:
                self.base_url = self.client.base_url = base

    async def run(self, inner: ToolHandler, arguments: dict[str, Any]) -> ToolOutput:
        self.follow_region()
        try:
            return await run_once(inner, arguments)
        except ConnectorError as exc:
            # A 401 means the request was not carried out, so even a write may go once more with a new token.
            if exc.error_type != "http_401" or not await self.credentials.rejected():
                raise
        self.follow_region()
        return await run_once(inner, arguments)

    def tool_extra(self, tool: RestTool) -> dict[str, Any]:
        return {**tool.extra, "scopes": tool_scopes(tool.name)}


def build(config: UpstreamConfig, credentials: CredentialProvider, *, user_email: str | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> Connector:
    """The PagerDuty connector for one configured upstream. Does no I/O."""
    return PagerDutyConnector(config, credentials, user_email, transport)


async def current_user(connector: Connector) -> dict[str, Any]:
    """The user the credentials belong to (`GET /users/me`). Raises `ConnectorError` for account-level
    keys (they belong to no user) and on auth failures."""
    if not isinstance(connector, PagerDutyConnector):
        raise TypeError("current_user needs a PagerDuty connector")
    connector.follow_region()
    try:
        body = await connector.client.json("GET", "/users/me")
    except ConnectorError as exc:
        message = connector.scrub(exc.message)
        if exc.error_type == "http_400" and "account" in message.lower():
            message = ("PagerDuty cannot tell which user this is: the API key is an account-level key, which "
                       "belongs to no user. Use a user API key (My Profile → User Settings → API Access) or sign in "
                       f"with OAuth (auth = \"oauth\"); writes then need upstreams.{connector.config.key}.from. "
                       f"({message})")
        raise ConnectorError(message, exc.error_type) from None
    user = (body or {}).get("user") if isinstance(body, dict) else None
    if not isinstance(user, dict):
        raise ConnectorError("PagerDuty's answer to GET /users/me had no user; try again later", "bad_response")
    return user
