"""The PagerDuty hosted-MCP preset (`kind = "pagerduty"`, `api = "mcp"`): an MCP upstream at PagerDuty's
hosted server (`https://mcp.pagerduty.com/mcp`, EU `https://mcp.eu.pagerduty.com/mcp`, or `url`).

Credentials, one per request (vendor-specs/pagerduty-hosted-mcp.md §3.1):
- `auth = "api_key"`: `Authorization: Token token=<key>`, the key from its secret reference;
- `auth = "oauth"`: `Authorization: Bearer <token>`, the user's own token from the PagerDuty sign-in the REST
  connector uses (same OAuth app, same keychain entry, same refresh: `TokenBroker`). Every request asks the
  broker, which refreshes when due; a 401 is retried once after `rejected()` (another process refreshed, or a
  forced refresh worked).

Without a stored sign-in the preset does not knock on PagerDuty's door: it waits (status: not signed in) until
a token appears, from a call's sign-in (the call pipeline's SignIn stage: `sign_in_broker()`, and
`SignInRequired` from `wait_ready`/`call_tool`) or from `mcp-access-proxy login` in a terminal. Until its first
connection it offers PagerDuty's published consolidated tool set (`HOSTED_TOOLS`, names and actions only), so a
call can start that sign-in; once connected, the server's own definitions replace it, and the call is decided
again on them (the pipeline's Recheck stage).

The proxy's `kind` for this upstream is "pagerduty-mcp", not "pagerduty": its tools are the server's claims,
not the proxy's own connector code, so their read-only hints are trusted only as the policy says.

HTTP 403 means valid credentials that the account, user or app may not use for this (§2, PagerDuty's OpenAPI):
at connect time the status says so with the advice; on one tool call (a scoped app without the tool's scope)
only that call fails, and the session stays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types

from mcp_proxy.config import SecretError, SecretRef, SecretStore, UpstreamConfig
from mcp_proxy.errors import AuthUnavailable, SignInRequired, ToolFailure, UpstreamUnavailable
from mcp_proxy.upstreams.base import ProgressRelay, SignInBroker, UpstreamEvents, connection_identity, error_result
from mcp_proxy.upstreams.mcp_failures import HttpStatusWatch
from mcp_proxy.upstreams.mcp_upstream import McpUpstream

if TYPE_CHECKING:
    from mcp_proxy.auth import TokenBroker

log = logging.getLogger(__name__)

HOSTED_URLS = {"us": "https://mcp.pagerduty.com/mcp", "eu": "https://mcp.eu.pagerduty.com/mcp"}
SIGNED_IN_POLL = 2.0  # seconds between looks for a token stored by `login` in another process

# PagerDuty's consolidated hosted tools and their `request.action` values (vendor-specs/pagerduty-hosted-mcp.md §4).
HOSTED_ACTIONS: dict[str, tuple[str, ...]] = {
    "browse_users": ("get", "list"),
    "browse_incidents": ("list", "get", "list_alerts", "get_alert", "list_notes", "context", "list_change_events",
                         "list_workflows", "get_workflow"),
    "browse_services": ("list", "get"),
    "browse_teams": ("list", "get", "list_members"),
    "browse_schedules": ("list", "get", "list_users", "list_oncalls", "list_rotations", "get_rotation",
                         "list_rotation_events", "get_rotation_event", "list_custom_shifts", "get_custom_shift",
                         "list_overrides", "get_override"),
    "browse_escalation_policies": ("list", "get"),
    "browse_event_orchestrations": ("list", "get", "get_router", "get_global", "get_service"),
    "browse_alert_grouping": ("list", "get"),
    "browse_change_events": ("list", "get", "list_service"),
    "browse_status_pages": ("list", "list_severities", "list_impacts", "list_statuses", "get_post",
                            "list_post_updates"),
    "browse_activity": ("list_log_entries", "get_log_entry"),
    "manage_incidents": ("create", "update", "add_note", "add_responders", "start_workflow"),
    "manage_services": ("create", "update"),
    "manage_schedules": ("create", "update", "create_override", "delete_schedule_v3", "create_rotation",
                         "delete_rotation", "create_rotation_event", "update_rotation_event", "delete_rotation_event",
                         "create_custom_shifts", "update_custom_shift", "delete_custom_shift", "create_overrides",
                         "update_override", "delete_override"),
    "manage_teams": ("create", "update", "delete", "add_member", "remove_member"),
    "manage_event_orchestrations": ("update_router", "append_router_rule"),
    "manage_alert_grouping": ("create", "update", "delete"),
    "manage_status_pages": ("create_post", "create_post_update"),
}


def hosted_tools() -> list[dict[str, Any]]:
    """The tool set offered before the first connection: names, the `request.action` discriminator and the
    read/write hints of PagerDuty's consolidated tools. The other fields of `request` are left open here; the
    server's own schema checks them once connected."""
    tools = []
    for name, actions in HOSTED_ACTIONS.items():
        read_only = name.startswith("browse_")
        area = name.split("_", 1)[1].replace("_", " ")
        tools.append({
            "name": name,
            "description": (f"PagerDuty {area}: {'read' if read_only else 'change'} them. Takes one argument, "
                            f"`request`, whose `action` is one of: {', '.join(actions)}; the action's other "
                            "fields sit next to it. (The proxy lists this until you have signed in to PagerDuty; "
                            "the first call signs you in.)"),
            "inputSchema": {"type": "object", "required": ["request"], "properties": {"request": {
                "type": "object", "required": ["action"],
                "properties": {"action": {"type": "string", "enum": list(actions)}}}}},
            "annotations": {"readOnlyHint": read_only, "destructiveHint": not read_only,
                            "idempotentHint": read_only, "openWorldHint": True},
        })
    return tools


class _RefusalWatch(HttpStatusWatch):
    """The parent's status watch, plus the text PagerDuty gave with its last 401/403 (`{"error": {"message",
    "errors"}}`), for the advice."""

    def __init__(self) -> None:
        super().__init__()
        self.text: str | None = None

    async def on_response(self, response: Any) -> None:
        await super().on_response(response)
        if response.status_code not in (401, 403):
            return
        self.text = None
        if not response.headers.get("content-type", "").lower().startswith("application/json"):
            return
        try:
            body = json.loads((await response.aread())[:8192])
        except (ValueError, httpx2.HTTPError):
            return
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            parts = [error.get("message"), *(error.get("errors") or [])]
            text = "; ".join(p for p in parts if isinstance(p, str) and p)
        elif isinstance(error, str):
            text = str(body.get("error_description") or error) if isinstance(body, dict) else error
        else:
            return
        self.text = text[:300] or None


class BrokerBearerAuth(httpx2.Auth):
    """`Authorization: Bearer <the user's token>` on every request, from the broker (refreshed when due); a 401
    is retried once when `rejected()` says a new token is ready. It never raises into the SDK's transport (that
    would end the session): a missing or dead sign-in is noted in `sign_in_needed` and the request goes without
    a token, which the server refuses."""

    def __init__(self, broker: TokenBroker) -> None:
        self.broker = broker
        self.sign_in_needed: SignInRequired | None = None
        self.problem: str | None = None  # why a token could not be had or renewed (keychain, token endpoint)

    async def _token(self) -> str | None:
        try:
            token = await self.broker.access_token()
        except SignInRequired as exc:
            self.sign_in_needed = exc
            return None
        except AuthUnavailable as exc:
            self.problem = str(exc)
            return None
        self.sign_in_needed = None
        self.problem = None
        return token

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self._token()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or token is None:
            return
        try:
            renewed = await self.broker.rejected(token)
        except SignInRequired as exc:
            self.sign_in_needed = exc
            return
        except AuthUnavailable as exc:
            self.problem = str(exc)
            return
        if not renewed:
            return
        token = await self._token()
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


class PagerDutyMcpUpstream(McpUpstream):
    kind = "pagerduty-mcp"

    def __init__(self, cfg: UpstreamConfig, store: SecretStore, *, broker: TokenBroker | None = None) -> None:
        self._configured = cfg
        self._broker = broker
        self._bearer = BrokerBearerAuth(broker) if broker is not None else None
        self._token_ready = anyio.Event()
        super().__init__(replace(cfg, headers={}, url=self.endpoint()), store, http_auth=self._bearer)
        self._refusal = _RefusalWatch()
        self._http_watch = self._refusal  # the parent's watch, which also keeps PagerDuty's words

    # -- where and how ---------------------------------------------------------------------
    def endpoint(self) -> str:
        """`url` if configured, else the hosted server of the region: the configured one, or with no `region` in
        the config, the one the sign-in reports (an EU account's token works only on the EU host)."""
        cfg = self._configured
        if cfg.url:
            return cfg.url
        region = cfg.region
        if self._broker is not None and self._broker.region in HOSTED_URLS:
            region = self._broker.region or region
        return HOSTED_URLS.get(region, HOSTED_URLS["us"])

    def cache_identity(self) -> str:
        return connection_identity(self._configured)

    def sign_in_broker(self) -> SignInBroker | None:
        return self._broker

    def static_tools(self) -> list[dict[str, Any]] | None:
        # Before any sign-in there is no way to ask the server: offer the published set so a call can start the
        # sign-in. Signed in (or with a key), the cached or live list is the server's own.
        if self._broker is not None and self._broker.token_info() is None:
            return hosted_tools()
        return None

    def _resolve(self, values: dict[str, str | SecretRef]) -> dict[str, str]:
        headers = super()._resolve(values)
        if self._broker is not None:
            return headers
        ref = self.cfg.api_key
        if ref is None:
            raise SecretError(f"upstreams.{self.key}.api_key: not set; see the README's section on PagerDuty's "
                              "hosted MCP server")
        headers["Authorization"] = f"Token token={ref.resolve(self.store).strip()}"
        return headers

    def _transport(self, stack: AsyncExitStack) -> Any:
        self.cfg = replace(self.cfg, url=self.endpoint())  # the sign-in may have named the account's region
        return super()._transport(stack)

    # -- connecting --------------------------------------------------------------------------
    async def _session_once(self, events: UpstreamEvents) -> None:
        if self._broker is not None:
            await self._until_signed_in()
        await super()._session_once(events)

    async def _until_signed_in(self) -> None:
        broker = self._broker
        assert broker is not None
        if broker.token_info() is not None:
            return
        self.status.state = "reconnecting"
        self.status.detail = (f"not signed in to PagerDuty; a call to one of its tools starts the sign-in, or run "
                              f"`mcp-access-proxy login {self.key}`")
        log.info("upstream %s: %s", self.key, self.status.detail)
        self._announce()
        while broker.token_info() is None:
            with anyio.move_on_after(SIGNED_IN_POLL):
                await self._token_ready.wait()
            self._token_ready = anyio.Event()
        self.status.state = "starting"
        self.status.detail = ""

    async def _signed_in(self) -> None:
        """Raise SignInRequired when there is no usable token (the pipeline then signs the user in), else make
        sure a connection is under way. A server that refused the account or app fails the call at once."""
        if self._client is None and self._credentials_refused and self._http_watch.last_error_status == 403:
            raise UpstreamUnavailable(f"the upstream '{self.key}' is not available: {self.auth_advice(403)}.")
        broker = self._broker
        if broker is None:
            return
        try:
            await broker.access_token()
        except AuthUnavailable as exc:
            raise ToolFailure(f"{exc}.", exc.error_type) from None
        self._token_ready.set()

    async def wait_ready(self, budget: float) -> None:
        await self._signed_in()
        await super().wait_ready(budget)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float
    ) -> types.CallToolResult | dict[str, Any]:
        await self._signed_in()
        return await super().call_tool(name, arguments, progress=progress, timeout=timeout)

    # -- refusals ------------------------------------------------------------------------------
    def _refused_mid_session(self) -> types.CallToolResult:
        status = self._http_watch.last_error_status or 401
        bearer = self._bearer
        if status == 401 and bearer is not None and bearer.sign_in_needed is not None:
            # The sign-in is gone (refresh refused, `logout`): sign in again; the session carries on with the
            # new token, which the auth flow asks the broker for on the next request.
            raise bearer.sign_in_needed
        if status == 403:
            # Valid credentials, not allowed for this: one tool (a scoped app without its scope) or the whole
            # server (the account or app). The session stays; the other tools may work.
            return error_result(f"The upstream '{self.key}' did not run the call: {self.auth_advice(403)}.")
        return super()._refused_mid_session()

    def auth_advice(self, status: int) -> str:
        said = f" (PagerDuty said: {self._refusal.text})" if self._refusal.text else ""
        if status == 403:
            if self._broker is not None:
                fix = (f"if upstreams.{self.key} uses a scoped OAuth app, give the app the scopes the PagerDuty tools "
                       f"need (e.g. incidents.read, incidents.write, services.read, users.read; set them in "
                       f"upstreams.{self.key}.scopes too) and sign in again with `mcp-access-proxy login {self.key}`")
            else:
                fix = ("use a user-level API key (My Profile > User Settings > Create API User Token) of a user "
                       "with the needed role: some tools refuse account-level keys")
            return (f"PagerDuty's MCP server refused access (HTTP 403){said}: the credentials are valid, but this "
                    f"PagerDuty account, user or app is not allowed to use the MCP server or this tool. Signing in "
                    f"again will not change that; {fix}, or ask a PagerDuty account admin whether the account "
                    "may use PagerDuty's hosted MCP server (and the user's role allows the action)")
        if self._broker is not None:
            bearer = self._bearer
            if bearer is not None and bearer.problem:
                return f"the proxy could not renew the PagerDuty sign-in: {bearer.problem}"
            return (f"PagerDuty's MCP server needs you to sign in (HTTP {status}){said}; call one of its tools to "
                    f"sign in, or run `mcp-access-proxy login {self.key}` in a terminal")
        ref = self.cfg.api_key
        store = (f"put it in the environment variable {ref.name}" if ref is not None and ref.scheme == "env"
                 else f"store it with `mcp-access-proxy secret set {ref.name if ref else 'NAME'}`")
        return (f"PagerDuty's MCP server refused the API key (HTTP {status}){said}: it may be revoked, mistyped or "
                f"malformed. Create a user API key (My Profile > User Settings > Create API User Token) or an "
                f"account key (Integrations > API Access Keys) and {store}; the proxy sends it as "
                "`Authorization: Token token=...`")
