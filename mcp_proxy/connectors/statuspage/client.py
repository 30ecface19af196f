"""Statuspage HTTP specifics: base URL, `Authorization: OAuth <key>`, the 420/429 rate limit,
error bodies (`{"message": ...}`, sometimes `{"error": ...}`) turned into messages that say
what to do, and the page / organisation a call is about.

Pooling, pacing and retries are `RestClient`'s; only Statuspage quirks live here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, CredentialProvider
from mcp_proxy.connectors.errors import ErrorReply, by_status
from mcp_proxy.connectors.http import RestClient, VendorProfile, api_key_auth, client_for

DEFAULT_BASE_URL = "https://api.statuspage.io/v1"
# Statuspage allows 1 request/s per API key (rolling 60 s window); we pace to that by default.
DEFAULT_RATE_PER_SECOND = 1.0
RATE_LIMIT_STATUSES = (420, 429)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Path collection → (noun, the tool that lists valid ids).
_COLLECTIONS = {
    "components": ("component", "list_components"),
    "component-groups": ("component group", "list_component_groups"),
    "incidents": ("incident or maintenance", "list_incidents (or list_maintenances)"),
    "metrics": ("metric", "list_metrics"),
    "subscribers": ("subscriber", "list_subscribers (state 'all' includes unconfirmed and quarantined ones)"),
}
_FIXES = {
    "incidents": ("check that status fits the kind (investigating, identified, monitoring or resolved for an incident; "
                  "scheduled, in_progress, verifying or completed for a maintenance), that component ids come from "
                  "list_components, that name is at most 255 and body at most 25000 characters, and that a "
                  "maintenance ends after it starts"),
    "components": ("status must be operational, under_maintenance, degraded_performance, partial_outage or "
                   "major_outage, and the component id must come from list_components"),
    "metrics": ("timestamp must be Unix seconds within the last 28 days (not in the future) and value a number; "
                "data can be added only to metrics of a custom ('Self') metric provider"),
    "subscribers": ("give exactly one of: email (email subscriber), endpoint plus email (webhook), or phone_country "
                    "plus phone_number (SMS); component_ids, when given, must be at least one id from "
                    "list_components; an address that is already subscribed cannot be added again"),
}


# What to do about the statuses whose advice depends on nothing but the status.
_ADVICE = {409: "Statuspage reported a conflict ({what}); reload the resource (get_…) and try again."}


def base_url_for(config: UpstreamConfig) -> str:
    """`base_url` when configured (the API root, e.g. `.../v1`), else Statuspage's own."""
    return (config.base_url or DEFAULT_BASE_URL).rstrip("/")


@dataclass(frozen=True)
class SecretHint:
    """How to tell a user to fix the key, without the key."""

    upstream: str
    ref: str | None  # "keyring:NAME" / "env:NAME" / None

    def fix(self) -> str:
        where = f"upstreams.{self.upstream}.api_key"
        if self.ref and self.ref.startswith("env:"):
            return (f"set the environment variable {self.ref[4:]} (referenced by {where}) to a valid Statuspage "
                    "API key (manage.statuspage.io → your avatar → API info)")
        name = self.ref[8:] if self.ref and self.ref.startswith("keyring:") else "<name>"
        return (f"store a valid key with `mcp-access-proxy secret set {name}` (the one referenced by {where}); "
                "keys are under manage.statuspage.io → your avatar → API info")


def error_message(body: Any) -> str:
    """The vendor's message: `message`, else `error` (a string, a list of strings, or an object)."""
    if not isinstance(body, dict):
        return ""
    for key in ("message", "error", "errors"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, list) and value:
            return "; ".join(str(v) for v in value)
        if isinstance(value, dict) and value:
            return "; ".join(f"{k}: {v}" for k, v in value.items())
    return ""


def _api_parts(response: httpx.Response) -> list[str]:
    """The request path from `pages` / `organizations` on (base_url may carry a gateway prefix and
    the path may end in `.json`), as decoded segments."""
    parts = [unquote(p) for p in response.request.url.path.split("/") if p]
    for i, part in enumerate(parts):
        if part in ("pages", "organizations", "pages.json"):
            parts = parts[i:]
            break
    if parts:
        parts[-1] = parts[-1].removesuffix(".json")
    return parts


def make_error_mapper(key: str, hint: SecretHint) -> Callable[[httpx.Response], ConnectorError]:
    """The `VendorProfile.error_from_response` of Statuspage."""
    def error_from_response(response: httpx.Response) -> ConnectorError:
        reply = ErrorReply.of(response)
        status, method = reply.status, reply.method
        vendor = error_message(reply.body) or reply.reason
        parts = _api_parts(response)
        top = parts[0] if parts else ""
        page = parts[1] if top == "pages" and len(parts) > 1 else None
        collection = parts[2] if top == "pages" and len(parts) > 2 else None
        if status == 401:
            return ConnectorError(
                f"the Statuspage API key was refused (HTTP 401: {vendor}); {hint.fix()}, then try again.", "http_401")
        if status == 403:
            if top == "organizations":
                need = ("the key's user may not manage this organisation's users: use the key of an organisation "
                        "admin (user management is not available to organisations on Atlassian accounts)")
            elif page:
                need = (f"the key's user has no access to page '{page}' (or may not make this change there): use the "
                        "key of a team member of that page with the needed role, or pick a page from list_pages")
            else:
                need = "the key's user lacks the permission for this request: use the key of a page team member"
            return ConnectorError(f"Statuspage refused {method} access (HTTP 403: {vendor}): {need}.", "http_403")
        if status == 404:
            return ConnectorError(_not_found(key, parts, vendor), "http_404")
        if status in (400, 422):
            fix = _FIXES.get(collection or "", "check the arguments against the tool's description")
            return ConnectorError(
                f"Statuspage rejected the request (HTTP {status}: {vendor}). To fix it: {fix}; then try again.",
                f"http_{status}")
        if status == 405 and collection == "metrics":
            return ConnectorError(
                f"Statuspage does not accept data for this metric (HTTP 405: {vendor}): data can be added only to "
                "metrics of a custom ('Self') metric provider; list_metrics shows each metric's provider.", "http_405")
        return by_status("Statuspage", reply, f"HTTP {status}: {vendor}", _ADVICE,
                         "The change may or may not have been applied: check with the matching get_ or list_ tool "
                         "before repeating it.")

    return error_from_response


def _not_found(key: str, parts: list[str], vendor: str) -> str:
    if parts and parts[0] == "organizations":
        org = parts[1] if len(parts) > 1 else "?"
        return (f"Statuspage found no organisation '{org}' (HTTP 404: {vendor}). The organisation id is shown in "
                f"manage.statuspage.io → your avatar → API info; pass organization_id or set "
                f"upstreams.{key}.organization_id.")
    page = parts[1] if len(parts) > 1 else "?"
    if len(parts) <= 3:
        return (f"Statuspage found no page '{page}' (HTTP 404: {vendor}); list_pages shows the pages this key can "
                f"see (pass page_id, or set upstreams.{key}.page_id).")
    noun, lister = _COLLECTIONS.get(parts[2], (parts[2].rstrip("s"), "the matching list_ tool"))
    return (f"Statuspage found no {noun} '{parts[3]}' on page '{page}' (HTTP 404: {vendor}); {lister} shows the "
            "valid ids (and list_pages the page ids).")


def build_client(config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> RestClient:
    hint = SecretHint(config.key, str(config.api_key) if config.api_key is not None else None)
    profile = VendorProfile(
        name="Statuspage",
        auth_headers=api_key_auth(config.key, "Statuspage", "OAuth", hint.fix()),
        error_from_response=make_error_mapper(config.key, hint),
        rate_limit_statuses=RATE_LIMIT_STATUSES,
        default_headers={"Accept": "application/json"},
    )
    return client_for(profile, config, base_url_for(config), credentials, transport,
                      default_rate=DEFAULT_RATE_PER_SECOND)


def segment(value: Any, name: str) -> str:
    """An id as one URL path segment, refused unless it looks like a Statuspage id."""
    text = str(value or "").strip()
    if not _ID.match(text):
        raise ConnectorError(f"{name} must be a Statuspage id (letters, digits, '-' or '_'), not {text[:70]!r}",
                             "bad_argument")
    return quote(text, safe="")


@dataclass(frozen=True)
class Scope:
    """The default page and organisation of one upstream."""

    key: str
    page_id: str | None
    organization_id: str | None

    def page(self, args: dict[str, Any]) -> str:
        value = args.get("page_id") or self.page_id
        if not value:
            raise ConnectorError(
                f"no Statuspage page selected: pass page_id (list_pages shows the pages this key can see) or set "
                f"upstreams.{self.key}.page_id in the config", "missing_page_id")
        return segment(value, "page_id")

    def organization(self, args: dict[str, Any]) -> str:
        value = args.get("organization_id") or self.organization_id
        if not value:
            raise ConnectorError(
                f"no Statuspage organisation selected: pass organization_id (shown in manage.statuspage.io → your "
                f"avatar → API info) or set upstreams.{self.key}.organization_id in the config",
                "missing_organization_id")
        return segment(value, "organization_id")
