"""JSM Operations HTTP specifics: Basic (email + API token) or Bearer auth, the cloud id in the path
(configured, or looked up from the site), error bodies in both envelopes, and the asynchronous
alert writes (a requestId, then poll the request status, 404 while queued).

Only JSM quirks live here; pooling, pacing and retries (429 + Retry-After) are `RestClient`'s.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, Credential, CredentialProvider
from mcp_proxy.connectors.errors import ErrorReply, by_status, json_body
from mcp_proxy.connectors.http import RestClient, VendorProfile, client_for
from mcp_proxy.connectors.opsgenie.client import WriteOutcome, await_processed, check_request_id
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused

API_HOST = "https://api.atlassian.com"
VENDOR = "JSM Operations"
SOURCE = "mcp-access-proxy"
RESULT_CAP = 20000  # offset + size must stay below it (the API refuses more)
TOKEN_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
_SITE_HOST = re.compile(r"[a-z0-9][a-z0-9.-]{0,252}")  # a site's host name as listed (shown in messages)
_NOUNS = {"alerts": ("alert", "list_alerts shows alert ids; pass identifierType 'alias' or 'tiny' for an alias or "
                              "a tiny id"),
          "schedules": ("schedule", "list_schedules shows schedule ids and names; pass identifierType 'name' for "
                                    "a name"),
          "teams": ("team or escalation", "list_teams and list_escalations show the ids")}
_ADVICE = {
    400: "JSM Operations could not read the request ({what}); check the arguments (for list_alerts and "
         "count_alerts: the query syntax, e.g. status:open AND priority:P1).",
    402: "JSM Operations refused this request because of the site's plan ({what}); the feature is not part of "
         "the current subscription.",
    409: "JSM Operations reported a conflict ({what}); reload the resource and retry.",
}


def basic_value(email: str, token: str) -> str:
    return base64.b64encode(f"{email}:{token.strip()}".encode()).decode()


def token_fix(config: UpstreamConfig) -> str:
    """How to store a valid API token; names only where it is referenced, never its value."""
    ref = str(config.api_token) if config.api_token is not None else ""
    where = f"upstreams.{config.key}.api_token"
    if ref.startswith("env:"):
        return f"create a token at {TOKEN_PAGE} and set the environment variable {ref[4:]} (referenced by {where})"
    if ref.startswith("keyring:"):
        return f"create a token at {TOKEN_PAGE} and store it with `mcp-access-proxy secret set {ref[8:]}` ({where})"
    return f"create a token at {TOKEN_PAGE}, store it and reference it as {where} = \"keyring:<name>\""


def auth_headers_for(config: UpstreamConfig) -> Callable[[Credential], dict[str, str]]:
    """Basic `email:api_token` for an API token; Bearer for an OAuth access token (3LO)."""
    def auth_headers(credential: Credential) -> dict[str, str]:
        if credential.scheme == "api_token" and config.email:
            return {"Authorization": f"Basic {basic_value(config.email, credential.value)}"}
        if credential.scheme == "bearer":
            return {"Authorization": f"Bearer {credential.value.strip()}"}
        raise ConnectorError(f"upstreams.{config.key}: JSM Operations needs email and api_token (auth = \"basic\")",
                             "no_credentials")
    return auth_headers


def vendor_message(body: Any, fallback: str) -> str:
    """The reason in either envelope: `{errors: [{title, detail|code}]}`, or `{message}` / `{code, message}`."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = []
            for e in errors[:5]:
                if isinstance(e, dict):
                    parts.append(str(e.get("title") or e.get("detail") or e.get("code") or "").strip())
            text = "; ".join(p for p in parts if p)
            if text:
                return text
        if body.get("message"):
            return str(body["message"]).strip()
    return fallback


def _api_parts(response: httpx.Response) -> list[str]:
    """The request's path from `v1` on."""
    parts = response.request.url.path.strip("/").split("/")
    return parts[parts.index("v1"):] if "v1" in parts else parts


class RequestNotProcessed(ConnectorError):
    """404 on a request status: still queued (or unknown: JSM answers both alike)."""

    def __init__(self) -> None:
        super().__init__("JSM Operations has not processed the request yet", "request_not_processed")


def make_error_mapper(config: UpstreamConfig) -> Callable[[httpx.Response], ConnectorError]:
    fix = token_fix(config)

    def error_from_response(response: httpx.Response) -> ConnectorError:
        reply = ErrorReply.of(response)
        status = reply.status
        vendor = vendor_message(reply.body, reply.reason)
        parts = _api_parts(response)
        if status == 404 and parts[:3] == ["v1", "alerts", "requests"]:
            return RequestNotProcessed()
        if status == 401 and config.auth == "oauth":
            login = f"`mcp-access-proxy login {config.key}`"
            if "scope does not match" in vendor.lower():
                return ConnectorError(
                    f"JSM Operations refused this request for lack of an OAuth scope (HTTP 401: {vendor}): the "
                    f"sign-in did not grant it. Add the scope to upstreams.{config.key}.scopes (and to the app in the "
                    f"Atlassian developer console), then run {login}.", "scope_missing")
            return ConnectorError(
                f"JSM Operations did not accept the signed-in Atlassian token (HTTP 401: {vendor}); run {login} to "
                "sign in again.", "http_401")
        if status == 401:
            if "scope does not match" in vendor.lower():
                return ConnectorError(
                    f"JSM Operations refused this request for lack of an OAuth scope (HTTP 401: {vendor}). API tokens "
                    "carry the read and write scopes but not the delete ones; this operation cannot be done with "
                    "an API token.", "scope_missing")
            return ConnectorError(
                f"JSM Operations did not accept the email and API token (HTTP 401: {vendor}); the token is wrong, "
                f"expired or revoked, or upstreams.{config.key}.email is not its account. To fix it, {fix}.",
                "http_401")
        if status == 403:
            return ConnectorError(
                f"JSM Operations refused this request (HTTP 403: {vendor}): the account needs an Operations role "
                "(a global or team role) that may see or change this resource; ask a site admin.", "http_403")
        if status == 404:
            if parts[:1] != ["v1"] or len(parts) < 3:
                return ConnectorError(
                    f"JSM Operations answered 404 for {'/'.join(parts)} ({vendor}): check cloud_id/site of "
                    f"upstreams.{config.key}, and that Operations is enabled on the site.", "http_404")
            noun, how = _NOUNS.get(parts[1], ("resource", "check the identifier"))
            return ConnectorError(f"JSM Operations found no {noun} '{parts[2] if parts[1] != 'teams' else parts[-1]}'"
                                  f" (HTTP 404: {vendor}). {how}.", "http_404")
        if status == 422:
            return ConnectorError(f"JSM Operations rejected the request (HTTP 422: {vendor}). Correct the arguments "
                                  "and try again.", "http_422")
        return by_status(VENDOR, reply, f"HTTP {status}: {vendor}", _ADVICE,
                         "If this was an alert write, check with get_alert or list_alerts before repeating it.")

    return error_from_response


def build_client(config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> RestClient:
    profile = VendorProfile(name=VENDOR, auth_headers=auth_headers_for(config),
                            error_from_response=make_error_mapper(config),
                            default_headers={"Accept": "application/json"})
    return client_for(profile, config, (config.base_url or API_HOST).rstrip("/"), credentials, transport)


def link_param(links: Any, name: str) -> str | None:
    """A parameter of `links.next` (absolute or relative), or None on the last page."""
    if not isinstance(links, dict) or not links.get("next"):
        return None
    values = parse_qs(urlsplit(str(links["next"])).query).get(name)
    return values[0] if values else None


class CloudId:
    """The site's cloud id: configured, or looked up once. With an API token (Basic), from the site
    (`/_edge/tenant_info`, no credentials) or from `resources_url` (a list, picked by the site's URL). With an
    Atlassian sign-in (OAuth 3LO), from the sites the user's token can reach (`GET
    /oauth/token/accessible-resources` with the token): `site` picks one of several; the only one is taken
    when `site` is not set."""

    def __init__(self, config: UpstreamConfig, transport: httpx.AsyncBaseTransport | None,
                 credentials: CredentialProvider | None = None) -> None:
        self.config = config
        self.value = config.cloud_id
        self.site_url: str | None = f"https://{config.site}" if config.site else None
        self._transport = transport
        self._credentials = credentials
        self._lock = anyio.Lock()

    @property
    def oauth(self) -> bool:
        return self.config.auth == "oauth"

    def lookup_url(self) -> str:
        if self.config.resources_url:
            return self.config.resources_url
        if self.oauth:
            return f"{(self.config.base_url or API_HOST).rstrip('/')}/oauth/token/accessible-resources"
        return f"https://{self.config.site}/_edge/tenant_info"

    async def get(self) -> str:
        if self.value:
            return self.value
        async with self._lock:
            if not self.value:
                self.value = await self._lookup()
        return self.value

    def _fix(self) -> str:
        where = f"upstreams.{self.config.key}"
        if self.oauth:
            return (f"check {where}.site (the site's host name, e.g. acme.atlassian.net), or set {where}.cloud_id; "
                    f"run `mcp-access-proxy login {self.config.key}` to choose the site on Atlassian's consent page")
        return f"check {where}.site, or set {where}.cloud_id (open https://<site>/_edge/tenant_info in a browser)"

    async def _fetch(self, url: str, fix: str) -> httpx.Response:
        headers = {"Accept": "application/json", "User-Agent": "mcp-access-proxy"}
        token = None
        if self.oauth and self._credentials is not None:
            credential = await self._credentials()  # SignInRequired passes through: the call starts a sign-in
            token = credential.value.strip()
            headers["Authorization"] = f"Bearer {token}"
        guard = OriginGuard(url, what="the Atlassian site" if not self.oauth else "Atlassian's accessible resources",
                            fix=fix)
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False,
                                         transport=self._transport, event_hooks=guard.async_hooks(),
                                         headers=headers) as client:
                return await client.get(url)
        except RedirectRefused as exc:
            raise ConnectorError(str(exc), exc.error_type) from None
        except httpx.HTTPError as exc:
            raise ConnectorError(f"could not look up the cloud id at {url} ({type(exc).__name__}); {fix}",
                                 "cloud_id_lookup") from None

    async def _lookup(self) -> str:
        url = self.lookup_url()
        fix = self._fix()
        response = await self._fetch(url, fix)
        if response.status_code == 401 and self.oauth and await self._retry_with_new_token():
            response = await self._fetch(url, fix)
        body = json_body(response)
        if response.status_code != 200:
            raise ConnectorError(f"the cloud id lookup at {url} answered HTTP {response.status_code}; {fix}",
                                 "cloud_id_lookup")
        found: Any = None
        if isinstance(body, dict):
            found = body.get("cloudId")
        elif isinstance(body, list):
            found = self._pick([s for s in body if isinstance(s, dict)], url, fix)
        if not isinstance(found, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", found):
            raise ConnectorError(f"the cloud id lookup at {url} gave no cloud id; {fix}", "cloud_id_lookup")
        return found

    async def _retry_with_new_token(self) -> bool:
        hook = getattr(self._credentials, "rejected", None)
        return bool(await hook()) if hook is not None else False

    def _pick(self, sites: list[dict[str, Any]], url: str, fix: str) -> Any:
        """The cloud id of the configured site among the accessible ones, or of the only one."""
        def host(entry: dict[str, Any]) -> str:
            return str(entry.get("url", "")).lower().rstrip("/").removeprefix("https://")

        hosts = sorted(h for h in (host(s) for s in sites) if _SITE_HOST.fullmatch(h))
        listed = ", ".join(hosts) or "none"
        where = f"upstreams.{self.config.key}.site"
        site = (self.config.site or "").lower()
        if site:
            match = [s for s in sites if host(s) == site]
            if not match:
                if not self.oauth and len(sites) == 1:
                    match = sites
                else:
                    raise ConnectorError(
                        f"{where} is {site}, but the {'signed-in account' if self.oauth else 'lookup'} can reach "
                        f"only these Atlassian sites: {listed}. Set {where} to one of them, or sign in with an "
                        f"account of {site} and grant the app access to it "
                        f"(`mcp-access-proxy login {self.config.key}`)", "site_not_found")
        else:
            match = sites if len(sites) == 1 else []
            if len(sites) > 1:
                raise ConnectorError(
                    f"the signed-in Atlassian account can reach several sites ({listed}); set {where} to the one "
                    f"whose JSM Operations to use, e.g. site = \"{hosts[0] if hosts else 'acme.atlassian.net'}\"",
                    "site_ambiguous")
            if not sites:
                raise ConnectorError(f"the lookup at {url} lists no Atlassian site this app may use; {fix}",
                                     "site_not_found")
        self.site_url = str(match[0].get("url") or "") or self.site_url
        return match[0].get("id")


class AsyncWrites:
    """Sends an alert write and waits (bounded) for JSM to process it."""

    def __init__(self, client: RestClient, api: Callable[[str], Any], budget: float) -> None:
        self.client = client
        self.api = api  # async: "/v1/..." -> the full path under the site's cloud id
        self.budget = budget

    async def status(self, request_id: str) -> dict[str, Any] | None:
        """The request's status, or None while JSM answers 404 (queued, or unknown)."""
        check_request_id(request_id)
        try:
            body = await self.client.json("GET", await self.api(f"/v1/alerts/requests/{request_id}"))
        except RequestNotProcessed:
            return None
        return body if isinstance(body, dict) else {}

    async def submit(self, path: str, body: dict[str, Any] | None) -> WriteOutcome:
        accepted = await self.client.json("POST", await self.api(path), json=body)
        request_id = str((accepted or {}).get("requestId") or "")
        if not request_id:
            raise ConnectorError("JSM Operations accepted the request but returned no request id; check the alert "
                                 "with get_alert or list_alerts before repeating it", "bad_response")
        return await await_processed(request_id, self.status, self.budget)
