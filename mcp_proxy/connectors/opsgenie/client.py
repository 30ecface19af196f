"""Opsgenie HTTP specifics: base URL, `GenieKey` auth, error bodies, and the
asynchronous alert writes (202 + requestId, then poll the request status).

Only Opsgenie quirks live here; pooling, pacing and retries are `RestClient`'s.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, CredentialProvider
from mcp_proxy.connectors.errors import ErrorReply, api_key_fix, by_status
from mcp_proxy.connectors.http import (
    RestClient,
    VendorProfile,
    api_key_auth,
    client_for,
    regional_base_url,
    wait_from_headers,
)

US_BASE_URL = "https://api.opsgenie.com"
EU_BASE_URL = "https://api.eu.opsgenie.com"
SOURCE = "mcp-access-proxy"
CONFIG_KEY_REFUSAL = (
    "this key is a configuration (API Key Management) key, which Opsgenie does not accept for alert actions; "
    "use an API integration key (Teams → Integrations → API)"
)
# Opsgenie's own code for "use an API key from an API integration" (HTTP 403).
_INTEGRATION_KEY_REQUIRED = 40301
_ALERT_ACTIONS = ("acknowledge", "unacknowledge", "close", "notes", "snooze", "escalate", "assign")
_RESOURCE_WORDS = {
    "alerts": ("alert", "list_alerts shows alert ids and tiny ids; pass identifierType 'alias' or 'tiny' "
               "when the value is an alias or a tiny id"),
    "schedules": ("schedule", "list_schedules shows schedule ids and names; pass the matching identifier type"),
    "escalations": ("escalation", "list_escalations shows escalation ids and names; pass identifierType 'name' "
                    "for a name"),
    "teams": ("team", "list_teams shows team ids and names; pass identifierType 'name' for a name"),
    "users": ("user", "list_users shows user ids and usernames (emails)"),
}


# What to do about the statuses whose advice depends on nothing but the status.
_ADVICE = {
    400: "Opsgenie could not read the request ({what}); check the arguments.",
    402: "Opsgenie refused this request because of the account's plan ({what}); this feature is not available on "
         "the current subscription.",
    409: "Opsgenie reported a conflict ({what}); reload the resource and retry.",
}


def base_url_for(config: UpstreamConfig) -> str:
    """`base_url` when configured, else the documented host of the region."""
    return regional_base_url(config, "Opsgenie", US_BASE_URL, EU_BASE_URL)


def _api_path(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    """The request's path from `/v2/` on (base_url may carry a gateway prefix), and its query."""
    url = response.request.url
    path = url.path
    at = path.find("/v2/")
    query = url.query.decode() if isinstance(url.query, bytes) else url.query
    return (path[at:] if at >= 0 else path), parse_qs(query)


def is_alert_write(method: str, path: str) -> bool:
    """Create (POST /v2/alerts) or an action on one alert (POST /v2/alerts/{id}/{action})."""
    if method != "POST":
        return False
    parts = path.strip("/").split("/")
    on_alert = len(parts) == 4 and parts[:2] == ["v2", "alerts"] and parts[3] in _ALERT_ACTIONS
    return parts == ["v2", "alerts"] or on_alert


class RequestNotProcessed(ConnectorError):
    """The status of an asynchronous request is not known yet (404 + X-Opsgenie-Errortype)."""

    def __init__(self) -> None:
        super().__init__("Opsgenie has not processed the request yet", "request_not_processed")


def make_error_mapper(fix: str) -> Callable[[httpx.Response], ConnectorError]:
    """The `VendorProfile.error_from_response` of Opsgenie; `fix` says how to store a valid key."""
    def error_from_response(response: httpx.Response) -> ConnectorError:
        reply = ErrorReply.of(response)
        status, method = reply.status, reply.method
        body = reply.body if isinstance(reply.body, dict) else {}
        vendor = str(body.get("message") or "").strip() or reply.reason
        path, query = _api_path(response)
        parts = path.strip("/").split("/")
        if status == 404 and response.headers.get("x-opsgenie-errortype", "").lower() == "requestnotprocessed":
            return RequestNotProcessed()
        if status == 401:
            return ConnectorError(
                f"Opsgenie did not accept the API key (HTTP 401: {vendor}); the key is wrong, revoked, or its "
                f"integration is disabled. To fix it, {fix}, then try again.", "http_401")
        if status == 403:
            if body.get("code") == _INTEGRATION_KEY_REQUIRED or (is_alert_write(method, path)
                                                                  and "integration" in vendor.lower()):
                return ConnectorError(f"Opsgenie refused the alert action (HTTP 403: {vendor}): {CONFIG_KEY_REFUSAL}; "
                                      f"then {fix}.", "config_key_refused")
            right = {"GET": "Read", "DELETE": "Delete"}.get(method, "Create and Update")
            return ConnectorError(
                f"Opsgenie refused this request (HTTP 403: {vendor}): the API key lacks the '{right}' access right "
                f"for {method} {path}. Grant it in Settings → API Key Management, or, for a team integration key, "
                "use a key of the team that owns this resource.", "http_403")
        if status == 404:
            noun, how = _RESOURCE_WORDS.get(parts[1] if len(parts) > 1 else "", ("resource", "check the identifier"))
            if parts[:3] == ["v2", "alerts", "requests"] and len(parts) > 3:
                return ConnectorError(
                    f"Opsgenie knows no request with id '{parts[3]}' (HTTP 404: {vendor}). Request ids come from the "
                    "results of alert writes and are kept for a limited time; check the id.", "http_404")
            ident = unquote(parts[2]) if len(parts) > 2 else ""
            kind = (query.get("identifierType") or query.get("scheduleIdentifierType") or ["id"])[0]
            return ConnectorError(
                f"Opsgenie found no {noun} with {kind} '{ident}' (HTTP 404: {vendor}). {how}.", "http_404")
        if status == 422:
            errors = body.get("errors")
            detail = ""
            if isinstance(errors, dict) and errors:
                detail = " Field errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items()) + "."
            return ConnectorError(f"Opsgenie rejected the request (HTTP 422: {vendor}).{detail} "
                                  "Correct the arguments and try again.", "http_422")
        return by_status("Opsgenie", reply, f"HTTP {status}: {vendor}", _ADVICE,
                         "If this was an alert write, check with get_alert or list_alerts before repeating it.")

    return error_from_response


# Opsgenie says how long a throttle lasts in `X-RateLimit-Period-In-Sec` (Retry-After is not documented).
rate_limit_wait = wait_from_headers("retry-after", "x-ratelimit-period-in-sec")


def build_client(config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> RestClient:
    fix = api_key_fix(config.key, str(config.api_key) if config.api_key is not None else None, "Opsgenie")
    profile = VendorProfile(
        name="Opsgenie",
        auth_headers=api_key_auth(config.key, "Opsgenie", "GenieKey", fix),
        error_from_response=make_error_mapper(fix),
        wait_hint=rate_limit_wait,
        default_headers={"Accept": "application/json"},
    )
    return client_for(profile, config, base_url_for(config), credentials, transport)


def next_query(paging: Any, name: str = "offset") -> str | None:
    """A parameter of `paging.next` (an absolute URL), or None when there is no next page."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    values = parse_qs(urlsplit(str(paging["next"])).query).get(name)
    return values[0] if values else None


_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass
class WriteOutcome:
    request_id: str
    processed: bool
    data: dict[str, Any]
    poll_error: str | None = None


def check_request_id(request_id: str) -> None:
    """Refuses what cannot be a request id before it goes into a path (shared with the JSM backend)."""
    if not _REQUEST_ID.match(request_id):
        raise ConnectorError("requestId must be the id returned by an alert write (letters, digits, '-')",
                             "bad_argument")


async def await_processed(request_id: str, status: Callable[[str], Awaitable[dict[str, Any] | None]],
                          budget: float) -> WriteOutcome:
    """Polls `status` for an accepted write until it is processed or `budget` seconds have passed
    (shared with the JSM backend)."""
    data: dict[str, Any] | None = None
    delay = 0.05
    # Bounded so that the whole call ends well inside the proxy's call timeout.
    with anyio.move_on_after(budget):
        while True:
            try:
                data = await status(request_id)
            except ConnectorError as exc:
                # The write was accepted: an error now must not read as "it failed" (the model
                # would repeat it); report it as not yet known instead.
                return WriteOutcome(request_id, False, {}, poll_error=exc.message)
            if data is not None:
                break
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)
    return WriteOutcome(request_id, data is not None, data or {})


class AsyncWrites:
    """Sends an alert write and waits (bounded) for Opsgenie to process it."""

    def __init__(self, client: RestClient, budget: float) -> None:
        self.client = client
        self.budget = budget

    async def status(self, request_id: str) -> dict[str, Any] | None:
        """The request's status data, or None while Opsgenie has not processed it."""
        check_request_id(request_id)
        try:
            body = await self.client.json("GET", f"/v2/alerts/requests/{request_id}")
        except RequestNotProcessed:
            return None
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    async def submit(self, path: str, body: dict[str, Any], params: dict[str, Any] | None = None) -> WriteOutcome:
        accepted = await self.client.json("POST", path, json=body, params=params)
        request_id = str((accepted or {}).get("requestId") or "")
        if not request_id:
            raise ConnectorError("Opsgenie accepted the request but returned no request id; check the alert with "
                                 "get_alert or list_alerts before repeating it", "bad_response")
        return await await_processed(request_id, self.status, self.budget)
