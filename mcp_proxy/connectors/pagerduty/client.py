"""PagerDuty HTTP specifics: base URL per region, `Token token=` / `Bearer` auth,
the version-pinning Accept header, the `From` actor on writes, rate-limit
headers, and error bodies turned into messages that say what to do.

Pooling, pacing and retries are `RestClient`'s; only PagerDuty quirks live here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, Credential, CredentialProvider
from mcp_proxy.connectors.errors import ErrorReply, api_key_fix, by_status
from mcp_proxy.connectors.http import RestClient, VendorProfile, client_for, regional_base_url, wait_from_headers

US_BASE_URL = "https://api.pagerduty.com"
EU_BASE_URL = "https://api.eu.pagerduty.com"
ACCEPT = "application/vnd.pagerduty+json;version=2"

# The Scoped OAuth scope each operation the tools use needs: the spec's `x-pd-requires-scope`
# (tests/pagerduty checks this table against the spec). GET /users/me declares none.
SCOPES: dict[tuple[str, str], str | None] = {
    ("GET", "/incidents"): "incidents.read",
    ("POST", "/incidents"): "incidents.write",
    ("GET", "/incidents/{id}"): "incidents.read",
    ("PUT", "/incidents/{id}"): "incidents.write",
    ("GET", "/incidents/{id}/notes"): "incidents.read",
    ("POST", "/incidents/{id}/notes"): "incidents.write",
    ("GET", "/incidents/{id}/alerts"): "incidents.read",
    ("GET", "/incidents/{id}/log_entries"): "incidents.read",
    ("GET", "/services"): "services.read",
    ("GET", "/services/{id}"): "services.read",
    ("GET", "/users"): "users.read",
    ("GET", "/users/me"): None,
    ("GET", "/users/{id}"): "users.read",
    ("GET", "/schedules"): "schedules.read",
    ("GET", "/schedules/{id}"): "schedules.read",
    ("GET", "/schedules/{id}/overrides"): "schedules.read",
    ("GET", "/oncalls"): "oncalls.read",
    ("GET", "/escalation_policies"): "escalation_policies.read",
    ("GET", "/escalation_policies/{id}"): "escalation_policies.read",
    ("GET", "/teams"): "teams.read",
    ("GET", "/priorities"): "priorities.read",
}
_NOUNS = {"incidents": "incident", "services": "service", "users": "user", "schedules": "schedule",
          "escalation_policies": "escalation policy", "teams": "team", "priorities": "priority"}
_FINDERS = {"incidents": "list_incidents", "services": "list_services", "users": "list_users",
            "schedules": "list_schedules", "escalation_policies": "list_escalation_policies", "teams": "list_teams"}
# PagerDuty's error codes (developer docs, "Errors").
ALREADY_RESOLVED = 1001
ALREADY_ACKNOWLEDGED = 1002
MISSING_FROM = 2016
MALFORMED_FROM = 1028


# What to do about the statuses whose advice depends on nothing but the status.
_ADVICE = {
    400: "PagerDuty rejected the request ({what}).{detail} Correct the arguments; repeating it unchanged will fail "
         "again.",
    402: "PagerDuty refused this because the account's plan lacks the feature ({what}).",
}


def base_url_for(config: UpstreamConfig) -> str:
    """`base_url` when configured, else the documented API host of the region."""
    return regional_base_url(config, "PagerDuty", US_BASE_URL, EU_BASE_URL)


def operation_of(method: str, path: str) -> tuple[str, str] | None:
    """(METHOD, template) of a request path from SCOPES, e.g. ('GET', '/incidents/{id}')."""
    parts = [p for p in path.split("/") if p]
    for (m, template), _ in SCOPES.items():
        tparts = [p for p in template.split("/") if p]
        if m != method.upper() or len(tparts) != len(parts):
            continue
        if all(t == p or (t.startswith("{") and p != "me") for t, p in zip(tparts, parts, strict=True)):
            return m, template
    return None


class AlreadyDone(ConnectorError):
    """PagerDuty says the incident is already in (or past) the requested state: not a failure to retry."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message, f"already_{state}")
        self.state = state


@dataclass(frozen=True)
class AuthHint:
    """How to tell a user to fix credentials, without the credential."""

    upstream: str
    auth: str  # "api_key" | "oauth"
    ref: str | None  # "keyring:NAME" / "env:NAME" / None

    def fix(self) -> str:
        if self.auth == "oauth":
            return f"sign in again with `mcp-access-proxy login {self.upstream}`"
        return api_key_fix(self.upstream, self.ref, "PagerDuty")

    def from_fix(self) -> str:
        return (f"set upstreams.{self.upstream}.from (or [user] email) to the email of the PagerDuty user "
                "writes are made as")


def _error(reply: ErrorReply) -> tuple[str, int | None, list[str]]:
    """PagerDuty's error body, `{"error": {"message", "code", "errors"}}`: message, code, details."""
    err = reply.body.get("error") if isinstance(reply.body, dict) else None
    if not isinstance(err, dict):
        return reply.reason, None, []
    errors = err.get("errors")
    if isinstance(errors, dict):  # some endpoints answer {field: [reasons]}
        errors = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()]
    code = err.get("code")
    return (str(err.get("message") or reply.reason),
            code if isinstance(code, int) else None, [str(e) for e in errors or []])


def _path(response: httpx.Response, base_path: str) -> str:
    path = response.request.url.path
    return path[len(base_path):] if base_path and path.startswith(base_path) else path


def make_error_mapper(hint: AuthHint, base_url: str) -> Callable[[httpx.Response], ConnectorError]:
    """The `VendorProfile.error_from_response` of PagerDuty."""
    base_path = httpx.URL(base_url).path.rstrip("/")

    def error_from_response(response: httpx.Response) -> ConnectorError:
        reply = ErrorReply.of(response)
        status, method = reply.status, reply.method
        message, code, errors = _error(reply)
        path = _path(response, base_path)
        op = operation_of(method, path)
        parts = [unquote(p) for p in path.split("/") if p]
        detail = f" Details: {'; '.join(errors)}." if errors else ""
        vendor = f"HTTP {status}: {message}" + (f", code {code}" if code is not None else "")
        if status == 401:
            return ConnectorError(
                f"PagerDuty did not accept the credentials ({vendor}); the key or token is wrong, revoked or expired. "
                f"To fix it, {hint.fix()}, then try again.", "http_401")
        if status == 400 and (code in (MISSING_FROM, MALFORMED_FROM) or '"from"' in message.lower().replace("“", '"')
                              .replace("”", '"')):
            return ConnectorError(f"PagerDuty needs to know which user makes this change ({vendor}). To fix it, "
                                  f"{hint.from_fix()}.", "missing_from")
        if code == ALREADY_RESOLVED:
            return AlreadyDone(f"Nothing changed: the incident is already resolved (PagerDuty: {message}). "
                               "This is not an error to retry.", "resolved")
        if code == ALREADY_ACKNOWLEDGED:
            return AlreadyDone(f"Nothing changed: the incident is already acknowledged (PagerDuty: {message}). "
                               "This is not an error to retry.", "acknowledged")
        if status == 403:
            scope = SCOPES.get(op) if op else None
            what = f"{method} {op[1] if op else path}"
            if hint.auth == "oauth":
                classic = "read" if method == "GET" else "write"
                need = (f"the OAuth token lacks the scope '{scope}' (or classic '{classic}')"
                        if scope else "the signed-in user lacks the permission")
                fix = (f"add '{scope}' to upstreams.{hint.upstream}.scopes (or ask an admin to grant it) and sign in "
                       f"again with `mcp-access-proxy login {hint.upstream}`" if scope
                       else "ask a PagerDuty admin for the permission")
            else:
                need = ("the API key or its user lacks the permission"
                        + (" (a read-only account key cannot write)" if method != "GET" else ""))
                fix = ("use a key with write access or of a user whose role allows it" if method != "GET"
                       else "use a key whose user may see this resource")
                if scope:
                    need += f"; with OAuth this needs the scope '{scope}'"
            return ConnectorError(f"PagerDuty refused {what} ({vendor}): {need}. To fix it, {fix}.{detail}", "http_403")
        if status == 404:
            noun = _NOUNS.get(parts[0] if parts else "", "resource")
            ident = parts[1] if len(parts) > 1 else ""
            finder = _FINDERS.get(parts[0] if parts else "")
            how = f" {finder} shows valid ids." if finder else ""
            sub = f" (while calling {method} {op[1]})" if op and len(parts) > 2 else ""
            return ConnectorError(f"PagerDuty found no {noun} with id '{ident}'{sub} ({vendor}).{detail} "
                                  f"Check the id.{how}", "http_404")
        return by_status("PagerDuty", reply, vendor, _ADVICE,
                         "If this was a change to an incident, check it with get_incident before repeating it.",
                         detail=detail, other=f"{vendor}.{detail}")

    return error_from_response


# Seconds until the rate-limit window resets (`ratelimit-reset`), else `Retry-After`, else None.
rate_limit_wait = wait_from_headers("ratelimit-reset", "retry-after")


def auth_headers(credential: Credential) -> dict[str, str]:
    value = credential.value.strip()
    if credential.scheme == "bearer":
        return {"Authorization": f"Bearer {value}"}
    return {"Authorization": f"Token token={value}"}


def build_client(config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> tuple[RestClient, AuthHint]:
    hint = AuthHint(config.key, "oauth" if config.auth == "oauth" else "api_key",
                    str(config.api_key) if config.api_key is not None else None)
    base_url = base_url_for(config)
    profile = VendorProfile(
        name="PagerDuty",
        auth_headers=auth_headers,
        error_from_response=make_error_mapper(hint, base_url),
        wait_hint=rate_limit_wait,
        default_headers={"Accept": ACCEPT},
    )
    return client_for(profile, config, base_url, credentials, transport), hint


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def valid_email(value: Any) -> bool:
    return isinstance(value, str) and bool(_EMAIL.match(value))
