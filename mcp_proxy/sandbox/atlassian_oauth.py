"""A local stand-in for Atlassian's OAuth 2.0 (3LO) service and API gateway (auth.atlassian.com and
api.atlassian.com in one server), enforcing what ../shared/vendor-specs/jsm-ops.md §1-2.3 says, for `demo`
and the tests. It fronts the JSM Operations emulator (`mcp_proxy.sandbox.jsm`).

Serve it with `serve_in_thread(create_app(server))` and point the upstream at it: `base_url = <url>` (the
gateway), `authorize_url = <url>/authorize`, `token_url = <url>/oauth/token`; the accessible resources are at
`<url>/oauth/token/accessible-resources` (the default under `base_url`).

Behaviour:
- One registered app (`client_id`, `client_secret`, exact `redirect_uris`); an unknown client or redirect URI
  is a 400 page, no redirect. `audience=api.atlassian.com` and `response_type=code` are required (400 page
  otherwise); `prompt` is recorded (`authorize_requests`). PKCE parameters are ignored (Atlassian does not
  support PKCE; harmless).
- The user consents to every requested scope the app has (`APP_SCOPES`); others are dropped. A refresh token
  is issued only when `offline_access` was granted. Without `consent_page` the user approves at once, on every
  site of the account (what the stand-in browser of `mcp_proxy.sandbox.browser` relies on).
- `consent_page = True`: `GET /authorize` shows the consent page of `mcp_proxy.sandbox.consent` instead, as
  Atlassian's does: the user (`name`, `email`), the app (`app_name`), the scopes, and "Use app on", a site picker
  (no site chosen) when the account has several sites; `#approve` ("Allow") and `#deny` ("Deny") post it back to
  `/authorize`. Allow grants the app the chosen site and answers the 303 redirect with the code; Deny the 303
  redirect with `error=access_denied`. `consents` records each decision; a page is answered once.
- The sites the user has allowed the app on (`granted_sites`, cloud ids, over every sign-in) are the ones the
  accessible resources list and the gateway lets a token reach, as at Atlassian.
- Token endpoint: JSON body (form accepted too; `token_requests` records the content type and the keys,
  never values). Without the right `client_secret`: 401 `{"error":"access_denied","error_description":
  "Unauthorized"}`. Codes are single use and live `code_ttl` s.
- Rotating refresh tokens: each refresh returns a new refresh token and retires the presented one. A
  retired token presented again (outside `reuse_leeway`, default 0) revokes the whole family (every access and
  refresh token of that sign-in); an unknown or retired one answers 403 `{"error":"invalid_grant",
  "error_description":"Unknown or invalid refresh token."}`. `refresh_delay` widens the race window.
- `GET /oauth/token/accessible-resources` (Bearer): of the account's `sites`, those the user allowed the app on
  (`{id, name, url, scopes, avatarUrl}`).
  `GET /me` (Bearer, needs `read:me`): `{account_id, email, name, ...}`.
- `/ex/jira/{cloudId}/jsm/ops/api/...` (Bearer): the gateway. A live token for a site the user allowed the app
  on is passed on to the JSM emulator as `/jsm/ops/api/{cloudId}/...` with the emulator's own bearer token
  (another site is a 404); anything else is 401 `{"code":401,"message":"Unauthorized"}`. `gateway_log` records
  (method, path, account_id, status).
- Test controls: `expire_access_tokens()`, `issued` (grants by type, `refresh_refused`, `family_revoked`),
  `active_refresh_tokens`, `all_secrets()`, `consents`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mcp_proxy.sandbox.consent import ConsentDesk, ConsentPage
from mcp_proxy.sandbox.oauth_grants import GrantTables, oauth_error, token_answer

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp

AUDIENCE = "api.atlassian.com"
JSM_SCOPES = ("read:ops-alert:jira-service-management", "write:ops-alert:jira-service-management",
              "delete:ops-alert:jira-service-management", "read:ops-config:jira-service-management",
              "write:ops-config:jira-service-management", "delete:ops-config:jira-service-management")
APP_SCOPES = (*JSM_SCOPES, "read:me", "offline_access")
AVATAR = "https://site-admin-avatar-cdn.prod.public.atl-paas.net/a.png"


def site(cloud_id: str, host: str, scopes: tuple[str, ...] = JSM_SCOPES[:4]) -> dict[str, Any]:
    """One accessible resource, as Atlassian lists it."""
    return {"id": cloud_id, "name": host.split(".")[0], "url": f"https://{host}", "scopes": list(scopes),
            "avatarUrl": AVATAR}


@dataclass
class Grant:
    family: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class AtlassianOAuth(GrantTables[Grant]):
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    sites: list[dict[str, Any]]
    jsm_app: ASGIApp | None = None  # the JSM Operations emulator behind the gateway
    jsm_bearer: str = ""  # the token the emulator accepts from the gateway
    account_id: str = "5b10ac8d82e05b22cc7d4ef5"
    email: str = "alice@example.com"
    name: str = "Alice Atlassian"
    app_name: str = "MCP Access Proxy (sandbox)"  # as the app is named in the developer console
    consent_page: bool = False  # a real page with the site picker, Allow and Deny, for a real browser
    clock: Callable[[], float] = time.time
    expires_in: int = 3600
    code_ttl: float = 600.0
    reuse_leeway: float = 0.0
    refresh_delay: float = 0.0

    def __post_init__(self) -> None:
        self._init_tables()
        self.codes: dict[str, dict[str, Any]] = {}
        self.granted_sites: set[str] = set()  # cloud ids the user allowed the app on
        self.consent_desk = ConsentDesk()
        self.consents = self.consent_desk.answers  # "allow" or "deny", one per consent page answered
        self.retired: dict[str, tuple[str, float]] = {}  # refresh token -> (family, when it was rotated)
        self.issued: Counter[str] = Counter()
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.gateway_log: list[dict[str, Any]] = []
        self._all: set[str] = {self.client_secret}

    # -- test controls ----------------------------------------------------------------------------
    def all_secrets(self) -> set[str]:
        """Every token and code issued, and the client secret: none may appear in a file or a log."""
        with self.lock:
            return set(self._all)

    # -- grants ------------------------------------------------------------------------------------
    def remember(self, value: str) -> None:
        self._all.add(value)

    def _new(self, prefix: str) -> str:
        value = prefix + secrets.token_urlsafe(24)
        self.remember(value)
        return value

    def issue(self, family: str, scopes: tuple[str, ...], kind: str) -> dict[str, Any]:
        access = self._new("atl-at-")
        expires_at = self.clock() + self.expires_in
        self.access[access] = Grant(family, scopes, expires_at)
        body: dict[str, Any] = {"access_token": access, "expires_in": self.expires_in, "token_type": "Bearer",
                                "scope": " ".join(scopes)}
        if "offline_access" in scopes:
            refresh = self._new("atl-rt-")
            self.refresh[refresh] = Grant(family, scopes, expires_at)
            body["refresh_token"] = refresh
        self.issued[kind] += 1
        return body

    def revoke_family(self, family: str) -> None:
        for table in (self.access, self.refresh):
            for token in [t for t, g in table.items() if g.family == family]:
                del table[token]
        self.issued["family_revoked"] += 1

    def reachable_sites(self) -> list[dict[str, Any]]:
        """The account's sites the user allowed the app on."""
        with self.lock:
            return [s for s in self.sites if s["id"] in self.granted_sites]

    def live(self, token: str) -> Grant | None:
        with self.lock:
            grant = self.access.get(token)
            return grant if grant is not None and grant.expires_at > self.clock() else None


def _unauthorized(message: str = "Unauthorized") -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"code": 401, "message": message}, status_code=401)


def create_app(server: AtlassianOAuth) -> Starlette:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    async def authorize(request: Request) -> Response:
        q = dict(request.query_params)
        server.authorize_requests.append(q)
        if q.get("client_id") != server.client_id:
            return HTMLResponse("Invalid client_id", status_code=400)
        if q.get("redirect_uri", "") not in server.redirect_uris:
            return HTMLResponse("The redirect_uri does not match the app's callback URL", status_code=400)
        if q.get("audience") != AUDIENCE:
            return HTMLResponse(f"audience must be {AUDIENCE}", status_code=400)
        if q.get("response_type") != "code":
            return HTMLResponse("response_type must be code", status_code=400)
        if server.consent_page:
            return server.consent_desk.open(q, consent_page(q))
        return grant(q, [s["id"] for s in server.sites])

    async def decide(request: Request) -> Response:
        """The consent page's form: Allow (on the chosen site) or Deny."""
        answer = server.consent_desk.answer({k: str(v) for k, v in (await request.form()).items()})
        if isinstance(answer, Response):
            return answer
        if not answer.allowed:
            return back(answer.request, {"error": "access_denied",
                                         "error_description": "User did not authorize the request"}, 303)
        return grant(answer.request, [answer.site] if answer.site else [], 303)

    def scopes_of(q: dict[str, str]) -> tuple[str, ...]:
        return tuple(s for s in q.get("scope", "").split() if s in APP_SCOPES)

    def consent_page(q: dict[str, str]) -> ConsentPage:
        sites = [(s["id"], s["url"].removeprefix("https://")) for s in server.sites]
        return ConsentPage(title=f"{server.app_name} is requesting access to your Atlassian account",
                           who=f"{server.name} ({server.email})", app=server.app_name, scopes=scopes_of(q),
                           action="/authorize", sites=sites)

    def grant(q: dict[str, str], sites: list[str], status: int = 302) -> Response:
        """The user allowed the app on `sites`: the redirect with a new code."""
        code = secrets.token_urlsafe(24)
        with server.lock:
            server.granted_sites.update(sites)
            server.remember(code)
            server.codes[code] = {"redirect_uri": q["redirect_uri"], "scopes": scopes_of(q),
                                  "issued_at": server.clock()}
        return back(q, {"code": code}, status)

    def back(q: dict[str, str], params: dict[str, str], status: int) -> Response:
        if "state" in q:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=status)

    async def token(request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        fields: dict[str, Any]
        if content_type == "application/json":
            try:
                fields = json.loads(raw or b"{}")
            except ValueError:
                return oauth_error(400, "invalid_request", "Malformed JSON")
        else:
            fields = dict((await request.form()).items())
        fields = {k: str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
        server.token_requests.append({"content_type": content_type, "keys": sorted(fields),
                                      "grant_type": fields.get("grant_type")})
        if fields.get("client_id") != server.client_id or not secrets.compare_digest(
                fields.get("client_secret", ""), server.client_secret):
            return oauth_error(401, "access_denied", "Unauthorized")
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            with server.lock:
                entry = server.codes.pop(fields.get("code", ""), None)
                if entry is None or server.clock() - entry["issued_at"] > server.code_ttl:
                    return oauth_error(403, "invalid_grant", "Invalid authorization code")
                if fields.get("redirect_uri") != entry["redirect_uri"]:
                    return oauth_error(403, "invalid_grant", "redirect_uri does not match")
                body = server.issue(secrets.token_hex(8), entry["scopes"], "authorization_code")
            return token_answer(body)
        if grant_type == "refresh_token":
            presented = fields.get("refresh_token", "")
            async with server.rotating(presented) as grant:
                if grant is None:
                    server.issued["refresh_refused"] += 1
                    retired = server.retired.get(presented)
                    if retired is not None and server.clock() - retired[1] > server.reuse_leeway:
                        server.revoke_family(retired[0])  # reuse of a rotated token: the family is compromised
                    return oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
                server.retired[presented] = (grant.family, server.clock())
                body = server.issue(grant.family, grant.scopes, "refresh_token")
            return token_answer(body)
        return oauth_error(400, "unsupported_grant_type", "grant_type not supported")

    def bearer(request: Request) -> Grant | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return server.live(value.strip()) if scheme.lower() == "bearer" else None

    async def accessible_resources(request: Request) -> Response:
        if bearer(request) is None:
            return _unauthorized()
        return JSONResponse(server.reachable_sites())

    async def me(request: Request) -> Response:
        grant = bearer(request)
        if grant is None:
            return _unauthorized()
        if "read:me" not in grant.scopes:
            return _unauthorized("Unauthorized; scope does not match")
        return JSONResponse({"account_type": "atlassian", "account_id": server.account_id, "email": server.email,
                             "name": server.name, "picture": AVATAR, "account_status": "active",
                             "nickname": server.name.split()[0], "locale": "en-US", "email_verified": True})

    async def gateway(request: Request) -> Response:
        import httpx

        cloud_id = request.path_params["cloudId"]
        rest = request.path_params["rest"]
        grant = bearer(request)
        entry = {"method": request.method, "path": request.url.path, "account_id": None, "status": 401}
        server.gateway_log.append(entry)
        if grant is None:
            return _unauthorized()
        entry["account_id"] = server.account_id
        if cloud_id not in {s["id"] for s in server.reachable_sites()} or server.jsm_app is None:
            entry["status"] = 404
            return JSONResponse({"errors": [{"title": "Site not found", "code": "NOT_FOUND"}]}, status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "host",
                                                                                 "content-length")}
        headers["Authorization"] = f"Bearer {server.jsm_bearer}"
        transport = httpx.ASGITransport(app=server.jsm_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jsm.internal") as client:
            answer = await client.request(request.method, f"/jsm/ops/api/{cloud_id}/{rest}",
                                          params=list(request.query_params.multi_items()),
                                          content=await request.body(), headers=headers)
        entry["status"] = answer.status_code
        passed = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")}
        return Response(answer.content, status_code=answer.status_code, headers=passed)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[
        Route("/authorize", authorize, methods=["GET"]),
        Route("/authorize", decide, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/token/accessible-resources", accessible_resources, methods=["GET"]),
        Route("/me", me, methods=["GET"]),
        Route("/ex/jira/{cloudId}/jsm/ops/api/{rest:path}", gateway, methods=methods),
    ])
