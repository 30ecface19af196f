"""Opsgenie HTTP specifics: base URL, `GenieKey` auth, error bodies, and the
asynchronous alert writes (202 + requestId, then poll the request status).

Only Opsgenie quirks live here; pooling, pacing and retries are `RestClient`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, Credential, CredentialProvider
from mcp_proxy.connectors.http import RestClient, VendorProfile

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


def base_url_for(config: UpstreamConfig) -> str:
    """`base_url` when configured, else the documented host of the region."""
    if config.base_url:
        return config.base_url.rstrip("/")
    region = (config.region or "us").lower()
    if region == "eu":
        return EU_BASE_URL
    if region == "us":
        return US_BASE_URL
    raise ValueError(f"upstreams.{config.key}.region must be 'us' or 'eu' for Opsgenie, not {config.region!r}")


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _api_path(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    """The request's path from `/v2/` on (base_url may carry a gateway prefix), and its query."""
    url = response.request.url
    path = url.path
    at = path.find("/v2/")
    return (path[at:] if at >= 0 else path), parse_qs(url.query.decode() if isinstance(url.query, bytes) else url.query)


def is_alert_write(method: str, path: str) -> bool:
    """Create (POST /v2/alerts) or an action on one alert (POST /v2/alerts/{id}/{action})."""
    if method != "POST":
        return False
    parts = path.strip("/").split("/")
    return parts == ["v2", "alerts"] or (len(parts) == 4 and parts[:2] == ["v2", "alerts"] and parts[3] in _ALERT_ACTIONS)


class RequestNotProcessed(ConnectorError):
    """The status of an asynchronous request is not known yet (404 + X-Opsgenie-Errortype)."""

    def __init__(self) -> None:
        super().__init__("Opsgenie has not processed the request yet", "request_not_processed")


@dataclass(frozen=True)
class SecretHint:
    """How to tell a user to fix the key, without the key."""

    upstream: str
    ref: str | None  # "keyring:NAME" / "env:NAME" / None

    def fix(self) -> str:
        where = f"upstreams.{self.upstream}.api_key"
        if self.ref and self.ref.startswith("env:"):
            return f"set the environment variable {self.ref[4:]} (referenced by {where}) to a valid Opsgenie API key"
        if self.ref and self.ref.startswith("keyring:"):
            return f"store a valid key with `mcp-access-proxy secret set {self.ref[8:]}` (referenced by {where})"
        return f"store a key with `mcp-access-proxy secret set <name>` and reference it as {where} = \"keyring:<name>\""


def make_error_mapper(hint: SecretHint):  # noqa: ANN201 - returns the VendorProfile callback
    def error_from_response(response: httpx.Response) -> ConnectorError:
        status = response.status_code
        body = _error_body(response)
        vendor = str(body.get("message") or "").strip() or response.reason_phrase or "no message"
        method = response.request.method
        path, query = _api_path(response)
        parts = path.strip("/").split("/")
        if status == 404 and response.headers.get("x-opsgenie-errortype", "").lower() == "requestnotprocessed":
            return RequestNotProcessed()
        if status == 401:
            return ConnectorError(
                f"Opsgenie did not accept the API key (HTTP 401: {vendor}); the key is wrong, revoked, or its "
                f"integration is disabled. To fix it, {hint.fix()}, then try again.", "http_401")
        if status == 403:
            if body.get("code") == _INTEGRATION_KEY_REQUIRED or (is_alert_write(method, path) and "integration" in vendor.lower()):
                return ConnectorError(f"Opsgenie refused the alert action (HTTP 403: {vendor}): {CONFIG_KEY_REFUSAL}; "
                                      f"then {hint.fix()}.", "config_key_refused")
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
        if status == 400:
            return ConnectorError(f"Opsgenie could not read the request (HTTP 400: {vendor}); check the arguments.",
                                  "http_400")
        if status == 402:
            return ConnectorError(f"Opsgenie refused this request because of the account's plan (HTTP 402: {vendor}); "
                                  "this feature is not available on the current subscription.", "http_402")
        if status == 409:
            return ConnectorError(f"Opsgenie reported a conflict (HTTP 409: {vendor}); reload the resource and retry.",
                                  "http_409")
        if status >= 500:
            check = (" If this was an alert write, check with get_alert or list_alerts before repeating it."
                     if method != "GET" else "")
            return ConnectorError(f"Opsgenie had a server error (HTTP {status}: {vendor}); try again in a minute."
                                  f"{check}", f"http_{status}")
        return ConnectorError(f"Opsgenie answered HTTP {status}: {vendor}", f"http_{status}")

    return error_from_response


def rate_limit_wait(response: httpx.Response) -> float | None:
    """Opsgenie says how long a throttle lasts in `X-RateLimit-Period-In-Sec` (Retry-After is not documented)."""
    for name in ("retry-after", "x-ratelimit-period-in-sec"):
        value = response.headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def build_client(config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> RestClient:
    hint = SecretHint(config.key, str(config.api_key) if config.api_key is not None else None)

    def auth_headers(credential: Credential) -> dict[str, str]:
        if credential.scheme != "api_key":
            raise ConnectorError(f"upstreams.{config.key}: Opsgenie needs an API key (auth = \"api_key\"); "
                                 f"{hint.fix()}", "no_credentials")
        return {"Authorization": f"GenieKey {credential.value.strip()}"}

    profile = VendorProfile(
        name="Opsgenie",
        auth_headers=auth_headers,
        error_from_response=make_error_mapper(hint),
        wait_hint=rate_limit_wait,
        default_headers={"Accept": "application/json"},
    )
    interval = 1.0 / config.rate_limit_per_second if config.rate_limit_per_second else 0.0
    return RestClient(
        profile, base_url_for(config), credentials,
        timeout=max(1.0, config.call_timeout * 0.6),
        max_retries=config.max_retries,
        min_interval=interval,
        max_wait=min(20.0, config.call_timeout / 3),
        transport=transport,
    )


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


class AsyncWrites:
    """Sends an alert write and waits (bounded) for Opsgenie to process it."""

    def __init__(self, client: RestClient, budget: float) -> None:
        self.client = client
        self.budget = budget

    async def status(self, request_id: str) -> dict[str, Any] | None:
        """The request's status data, or None while Opsgenie has not processed it."""
        if not _REQUEST_ID.match(request_id):
            raise ConnectorError("requestId must be the id returned by an alert write (letters, digits, '-')",
                                 "bad_argument")
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
        data: dict[str, Any] | None = None
        delay = 0.05
        # Bounded so that the whole call ends well inside the proxy's call timeout.
        with anyio.move_on_after(self.budget):
            while True:
                try:
                    data = await self.status(request_id)
                except ConnectorError as exc:
                    # The write was accepted: an error now must not read as "it failed" (the model
                    # would repeat it); report it as not yet known instead.
                    return WriteOutcome(request_id, False, {}, poll_error=exc.message)
                if data is not None:
                    break
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
        return WriteOutcome(request_id, data is not None, data or {})
