"""A local OAuth authorization server that enforces what PagerDuty's identity service enforces
(vendors.md §3.6), for `demo` and the tests.

Serve it with `serve_in_thread(create_app(server))` and point `authorize_url`, `token_url` and
`revoke_url` at `<url>/oauth/authorize`, `/oauth/token`, `/oauth/revoke`. Pass
`server.bearer_validator` to the PagerDuty emulator (`create_app(bearer_validator=...)`) so the
tokens it issues work there.

Behaviour:
- Registered clients only: classic (public: no secret, PKCE required, scopes `read`/`write`) or
  scoped (confidential: `client_secret` required at the token endpoint, PKCE required, granular
  scopes). Unknown client: 400.
- `redirect_uri` must equal a registered one exactly; otherwise HTTP 400 "Invalid or missing value
  for redirect_uri parameter" (no redirect).
- `code_challenge_method=S256` with a `code_challenge` is required; the token request's
  `code_verifier` must hash to it.
- Codes are single use and live `code_ttl` seconds (30, like PagerDuty) on `clock` (injectable).
- Unknown scopes are dropped silently; the token gets `openid` plus the known requested ones and the
  response's `scope` says so. `grant_only` (a set) narrows what is granted further (an admin's app setting).
- Token responses carry `id_token`, a JWT whose `aud` is `[<API host of region>, client_id]` with
  `region`, `subdomain`, `account_id`, `user_id` claims (HS256 with a sandbox key; not for verification).
- Refresh rotates: a new refresh token each time, and the old one answers `invalid_grant`.
  `refresh_delay` (and `authorize_delay`: the user's time on the consent page) widen the window
  for concurrency tests.
- `deny_consent = True`: the user clicks "Deny" (redirect with `error=access_denied`).
- `consent_page = True`: instead of approving at once (what the stand-in browser of
  `mcp_proxy.sandbox.browser` relies on), `GET /oauth/authorize` shows the consent page of
  `mcp_proxy.sandbox.consent`, a form with two buttons, `#approve` ("Allow") and `#deny` ("Deny"),
  posted back to `/oauth/authorize`; the click decides (`consents` records each decision) and the
  answer is the 303 redirect to `redirect_uri`. A request is decided once: a second post of the same page is a 400 page.
  `tamper_state = True`: the redirect carries a different `state` (a forged or stale response).
- `POST /oauth/revoke` (`token`, `client_id`): RFC 7009, answers 200 whatever the token.
- `expires_in` (default 3600) is the access-token lifetime of new tokens; `expire_access_tokens()`
  and `revoke_all()` are the test controls; `issued` counts grants by type, `log` lists requests
  (form keys only, never values); `all_codes` lists every code issued.
- Optional RFC 8414 metadata at `/.well-known/oauth-authorization-server` and dynamic client
  registration at `/oauth/register` (`allow_registration = True`), for MCP-upstream tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from mcp_proxy.sandbox.consent import ConsentDesk, ConsentPage
from mcp_proxy.sandbox.oauth_grants import GrantTables, oauth_error, token_answer

if TYPE_CHECKING:
    from starlette.applications import Starlette

API_HOSTS = {"us": "https://api.pagerduty.com", "eu": "https://api.eu.pagerduty.com"}
CLASSIC_SCOPES = ("read", "write")
SCOPED_SCOPES = ("incidents.read", "incidents.write", "services.read", "services.write", "users.read",
                 "oncalls.read", "schedules.read", "escalation_policies.read", "teams.read", "priorities.read",
                 "abilities.read")
REDIRECT_ERROR = "Invalid or missing value for redirect_uri parameter"
_ID_TOKEN_KEY = "sandbox-id-token-signing-key-not-a-secret"


@dataclass
class OAuthClient:
    client_id: str
    redirect_uris: tuple[str, ...]
    secret: str | None = None  # scoped (confidential) apps
    scoped: bool = False

    @property
    def known_scopes(self) -> tuple[str, ...]:
        return SCOPED_SCOPES if self.scoped else CLASSIC_SCOPES


@dataclass
class Grant:
    client_id: str
    user_id: str
    scopes: tuple[str, ...]  # granted, `openid` included
    expires_at: float
    resource: str | None = None


@dataclass
class OAuthServer(GrantTables[Grant]):
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    expires_in: int = 3600
    code_ttl: float = 30.0
    region: str = "us"
    subdomain: str = "acme"
    account_id: str = "PACCT01"
    user_id: str = "PALICE1"  # who "signs in" in the browser
    deny_consent: bool = False
    tamper_state: bool = False
    grant_only: set[str] | None = None
    refresh_delay: float = 0.0
    authorize_delay: float = 0.0  # the user takes this long to click "Allow"
    consent_page: bool = False  # a real page with Allow and Deny buttons, for a real browser
    allow_registration: bool = False
    # PagerDuty's token shape by default; tests choose plain opaque strings (no recognisable shape) to check
    # that the proxy redacts the tokens it was issued by value, not only by their look.
    token_prefixes: tuple[str, str] = ("pdus+_0X", "pdus+_1X")
    token_bytes: int = 24

    def __post_init__(self) -> None:
        self._init_tables()
        self.codes: dict[str, dict[str, Any]] = {}
        self.used_refresh: set[str] = set()
        self.all_codes: list[str] = []  # every code issued, for leak checks
        self.all_verifiers: list[str] = []  # every PKCE verifier presented, for leak checks
        self.issued: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.consent_desk = ConsentDesk()
        self.consents = self.consent_desk.answers  # "allow" or "deny", one per consent page answered

    # -- set-up and test controls ----------------------------------------------------------------
    def add_client(self, client: OAuthClient) -> OAuthClient:
        self.clients[client.client_id] = client
        return client

    def revoke_all(self) -> None:
        """Like "Revoke All Tokens" on the app: every access and refresh token stops working."""
        with self.lock:
            self.access.clear()
            self.refresh.clear()

    def bearer_validator(self, token: str) -> dict[str, Any] | None:
        """For the PagerDuty emulator: the user and scopes of a live access token, else None."""
        with self.lock:
            grant = self.access.get(token)
            if grant is None or grant.expires_at <= self.clock():
                return None
            return {"user_id": grant.user_id, "scopes": [s for s in grant.scopes if s != "openid"],
                    "resource": grant.resource}

    # -- grants ------------------------------------------------------------------------------------
    def _id_token(self, client: OAuthClient, issuer: str) -> str:
        import jwt

        now = int(self.clock())
        claims = {"iss": issuer, "aud": [API_HOSTS.get(self.region, API_HOSTS["us"]), client.client_id],
                  "sub": self.user_id, "user_id": self.user_id, "region": self.region.upper(),
                  "subdomain": self.subdomain, "account_id": self.account_id, "iat": now, "exp": now + 3600}
        return jwt.encode(claims, _ID_TOKEN_KEY, algorithm="HS256")

    def issue(self, client: OAuthClient, user_id: str, scopes: tuple[str, ...], issuer: str, kind: str,
              resource: str | None) -> dict[str, Any]:
        access = self.token_prefixes[0] + secrets.token_urlsafe(self.token_bytes)
        refresh = self.token_prefixes[1] + secrets.token_urlsafe(self.token_bytes)
        expires_at = self.clock() + self.expires_in
        self.access[access] = Grant(client.client_id, user_id, scopes, expires_at, resource)
        self.refresh[refresh] = Grant(client.client_id, user_id, scopes, expires_at, resource)
        self.issued[kind] += 1
        return {"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                "scope": " ".join(scopes), "expires_in": self.expires_in,
                "id_token": self._id_token(client, issuer), "client_info": {"account_subdomain": self.subdomain}}


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def create_app(server: OAuthServer) -> Starlette:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    def issuer_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        server.log.append({"path": request.url.path, "keys": sorted(fields)})
        return fields

    async def authorize(request: Request) -> Response:
        if server.authorize_delay:
            await asyncio.sleep(server.authorize_delay)
        q = dict(request.query_params)
        server.authorize_requests.append(q)
        checked = check_request(q)
        if isinstance(checked, Response):
            return checked
        if server.consent_page:
            return server.consent_desk.open(q, consent_page(checked, q))
        if server.deny_consent:
            return back(q, {"error": "access_denied", "error_description": "The user denied access"})
        return grant(checked, q)

    async def decide(request: Request) -> Response:
        """The consent page's form: Allow or Deny."""
        answer = server.consent_desk.answer(await form(request))
        if isinstance(answer, Response):
            return answer
        q = answer.request
        if not answer.allowed:
            return back(q, {"error": "access_denied", "error_description": "The user denied access"}, 303)
        checked = check_request(q)
        return checked if isinstance(checked, Response) else grant(checked, q, 303)

    def back(q: dict[str, str], params: dict[str, str], status: int = 302) -> Response:
        redirect_uri, state = q["redirect_uri"], q.get("state")
        if state is not None:
            params["state"] = "tampered-" + state[:8] if server.tamper_state else state
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=status)

    def check_request(q: dict[str, str]) -> OAuthClient | Response:
        """The client of a well-formed request, or the answer to a bad one (a page, or a redirect with the error)."""
        client = server.clients.get(q.get("client_id", ""))
        if client is None:
            return HTMLResponse("Unknown or missing client_id", status_code=400)
        if q.get("redirect_uri", "") not in client.redirect_uris:
            return HTMLResponse(REDIRECT_ERROR, status_code=400)
        if q.get("response_type") != "code":
            return back(q, {"error": "unsupported_response_type", "error_description": "response_type must be code"})
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return back(q, {"error": "invalid_request", "error_description": "PKCE with S256 is required"})
        return client

    def granted_scopes(client: OAuthClient, q: dict[str, str]) -> list[str]:
        granted = [s for s in q.get("scope", "").split() if s in client.known_scopes]
        if server.grant_only is not None:
            granted = [s for s in granted if s in server.grant_only]
        return granted

    def grant(client: OAuthClient, q: dict[str, str], status: int = 302) -> Response:
        code = secrets.token_urlsafe(24)
        with server.lock:
            server.all_codes.append(code)
            server.codes[code] = {"client_id": client.client_id, "redirect_uri": q["redirect_uri"],
                                  "challenge": q["code_challenge"], "scopes": ("openid", *granted_scopes(client, q)),
                                  "issued_at": server.clock(), "user_id": server.user_id,
                                  "resource": q.get("resource")}
        return back(q, {"code": code, "subdomain": server.subdomain}, status)

    def consent_page(client: OAuthClient, q: dict[str, str]) -> ConsentPage:
        resource = [("For", q["resource"])] if q.get("resource") else []
        return ConsentPage(title=f"Authorize {client.client_id}", who=f"{server.user_id} ({server.subdomain})",
                           app=client.client_id, scopes=["openid", *granted_scopes(client, q)],
                           action="/oauth/authorize", notes=resource)

    def authenticate(fields: dict[str, str]) -> OAuthClient | Response:
        """The client the request names and proves, or the error to answer with."""
        client = server.clients.get(fields.get("client_id", ""))
        if client is None:
            return oauth_error(401, "invalid_client", "Unknown client")
        if client.secret is not None and not secrets.compare_digest(fields.get("client_secret", ""), client.secret):
            return oauth_error(401, "invalid_client", "Client authentication failed")
        return client

    async def token(request: Request) -> Response:
        fields = await form(request)
        client = authenticate(fields)
        if isinstance(client, Response):
            return client
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            with server.lock:
                entry = server.codes.pop(fields.get("code", ""), None)  # single use, even when it fails below
                if entry is None:
                    return oauth_error(400, "invalid_grant", "The authorization code is invalid or was already used")
                if server.clock() - entry["issued_at"] > server.code_ttl:
                    return oauth_error(400, "invalid_grant", "The authorization code has expired")
                if entry["client_id"] != client.client_id:
                    return oauth_error(400, "invalid_grant", "The code was issued to another client")
                if fields.get("redirect_uri") != entry["redirect_uri"]:
                    return oauth_error(400, "invalid_grant", REDIRECT_ERROR)
                verifier = fields.get("code_verifier", "")
                if verifier:
                    server.all_verifiers.append(verifier)
                if not verifier or not secrets.compare_digest(_s256(verifier), entry["challenge"]):
                    return oauth_error(400, "invalid_grant", "PKCE verification failed")
                body = server.issue(client, entry["user_id"], entry["scopes"], issuer_of(request),
                                    "authorization_code", entry["resource"])
            return token_answer(body)
        if grant_type == "refresh_token":
            presented = fields.get("refresh_token", "")
            async with server.rotating(presented) as grant:
                if grant is None or grant.client_id != client.client_id:
                    server.issued["refresh_refused"] += 1
                    reason = ("The refresh token was already used" if presented in server.used_refresh
                              else "The refresh token is invalid or revoked")
                    return oauth_error(400, "invalid_grant", reason)
                server.used_refresh.add(presented)
                body = server.issue(client, grant.user_id, grant.scopes, issuer_of(request), "refresh_token",
                                    fields.get("resource") or grant.resource)
            return token_answer(body)
        return oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    async def revoke(request: Request) -> Response:
        fields = await form(request)
        client = authenticate(fields)
        if isinstance(client, Response):
            return client
        value = fields.get("token", "")
        with server.lock:
            server.access.pop(value, None)
            server.refresh.pop(value, None)
            server.issued["revocation"] += 1
        return Response(status_code=200)

    async def register(request: Request) -> Response:
        if not server.allow_registration:
            return JSONResponse({"error": "invalid_request", "error_description": "registration is disabled"},
                                status_code=404)
        data = await request.json()
        client = server.add_client(OAuthClient("dcr-" + secrets.token_hex(6), tuple(data.get("redirect_uris") or ()),
                                               scoped=False))
        server.issued["registration"] += 1
        return JSONResponse({"client_id": client.client_id, "redirect_uris": list(client.redirect_uris),
                             "token_endpoint_auth_method": "none", "grant_types": ["authorization_code",
                                                                                   "refresh_token"]}, status_code=201)

    async def metadata(request: Request) -> Response:
        base = issuer_of(request)
        doc = {"issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
               "token_endpoint": f"{base}/oauth/token", "revocation_endpoint": f"{base}/oauth/revoke",
               "response_types_supported": ["code"], "grant_types_supported": ["authorization_code", "refresh_token"],
               "code_challenge_methods_supported": ["S256"], "scopes_supported": list(CLASSIC_SCOPES)}
        if server.allow_registration:
            doc["registration_endpoint"] = f"{base}/oauth/register"
        return JSONResponse(doc)

    return Starlette(routes=[
        Route("/oauth/authorize", authorize, methods=["GET"]),
        Route("/oauth/authorize", decide, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/oauth/register", register, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/.well-known/openid-configuration", metadata, methods=["GET"]),
    ])
