"""The PagerDuty connector: incidents (read and act), services, users, schedules, on-calls,
escalation policies, teams and priorities as MCP tools, over the REST API v2.

Entry point: `build(config, credentials, user_email=..., transport=...)`; `current_user(connector)`
answers who the credentials belong to (`GET /users/me`). Tool names are stable.

Writes carry `From: <actor>` (`upstreams.<key>.from`, else `[user] email`): PagerDuty needs it
for account-level keys and records the change as made by that user. With an API key and no
actor, writes are refused before anything is sent.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import (
    Connector, ConnectorError, Credential, CredentialProvider, RestTool, ToolHandler, ToolOutput,
)
from mcp_proxy.connectors.pagerduty.client import (
    EU_BASE_URL, SCOPES, US_BASE_URL, base_url_for, build_client, valid_email,
)
from mcp_proxy.connectors.pagerduty.directory import directory_tools
from mcp_proxy.connectors.pagerduty.incidents import incident_tools

__all__ = ["PagerDutyConnector", "TOOL_OPERATIONS", "build", "base_url_for", "current_user", "tool_scopes"]

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


class _RememberingCredentials:
    """Passes credentials through and remembers the values, so that errors can be scrubbed of them."""

    def __init__(self, provider: CredentialProvider) -> None:
        self._provider = provider
        self.values: set[str] = set()
        self.last: Credential | None = None

    async def __call__(self) -> Credential:
        credential = await self._provider()
        value = credential.value.strip()
        if len(value) >= 8:
            self.values.add(value)
        self.last = credential
        return credential

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


class PagerDutyConnector(Connector):
    kind = "pagerduty"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider, user_email: str | None,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        self.config = config
        self.base_url = base_url_for(config)
        self._credentials = _RememberingCredentials(credentials)
        self.client, self.hint = build_client(config, self._credentials, transport)
        self.actor = (config.from_email or user_email or "").strip() or None
        self.max_chars = config.max_result_chars
        self.page_size = max(1, min(100, config.page_size))
        tools = incident_tools(self) + directory_tools(self)
        self._tools = [self._guarded(t) for t in tools]

    async def write(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """A write as the actor. Refused before sending when PagerDuty would not know who makes it."""
        headers = {"Content-Type": "application/json"}
        if self.actor:
            if not valid_email(self.actor):
                raise ConnectorError(f"the PagerDuty actor {self.actor!r} is not an email address; "
                                     f"{self.hint.from_fix()}", "missing_from")
            headers["From"] = self.actor
        else:
            credential = await self._credentials()
            # A user's OAuth token names the user; API keys may be account-level, which PagerDuty refuses.
            if credential.scheme != "bearer":
                raise ConnectorError(f"PagerDuty needs to know which user makes this change: "
                                     f"{self.hint.from_fix()}.", "missing_from")
        return await self.client.json(method, path, json=body, headers=headers)

    def _scrub(self, message: str) -> str:
        for value in self._credentials.values:
            message = message.replace(value, "<redacted>")
        return message

    def follow_region(self) -> None:
        """Use the API host of the region the OAuth sign-in reported, unless the config pins one."""
        if self.config.base_url or self.config.auth != "oauth":
            return
        region = self._credentials.region()
        if region in ("us", "eu"):
            base = EU_BASE_URL if region == "eu" else US_BASE_URL
            if base != self.base_url:
                self.base_url = self.client.base_url = base

    async def _run(self, inner: ToolHandler, arguments: dict[str, Any]) -> ToolOutput:
        self.follow_region()
        try:
            return await inner(dict(arguments or {}))
        except ConnectorError as exc:
            # A 401 means the request was not carried out, so even a write may go once more with a new token.
            if exc.error_type != "http_401" or not await self._credentials.rejected():
                raise
        self.follow_region()
        return await inner(dict(arguments or {}))

    def _guarded(self, tool: RestTool) -> RestTool:
        inner: ToolHandler = tool.handler

        @functools.wraps(inner)
        async def handler(arguments: dict[str, Any]) -> ToolOutput:
            try:
                output = await self._run(inner, arguments)
            except ConnectorError as exc:
                raise ConnectorError(self._scrub(exc.message), exc.error_type) from None
            output.text = self._scrub(output.text)
            return output

        extra = {**tool.extra, "scopes": tool_scopes(tool.name)}
        return RestTool(tool.name, tool.description, tool.input_schema, handler, read_only=tool.read_only,
                        destructive=tool.destructive, idempotent=tool.idempotent, open_world=tool.open_world,
                        title=tool.title, extra=extra)

    def tools(self) -> list[RestTool]:
        return list(self._tools)

    async def aclose(self) -> None:
        await self.client.aclose()


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
        message = connector._scrub(exc.message)
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
