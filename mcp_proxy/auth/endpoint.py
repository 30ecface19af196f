"""Requests to a provider's token, revocation and identity endpoints (synchronous; callers on the event
loop run them in a worker thread).

Error texts name the endpoint's host, the HTTP status and the OAuth error code, never a token, code or secret,
and never the endpoint's own `error_description` (free text: it goes to the log only).

No redirect is followed (mcp_proxy/httpsafe.py): these requests carry the client secret, codes and tokens, an
OAuth token endpoint answers directly (RFC 6749 §3.2), and re-posting them anywhere, even on the same origin,
is not ours to decide. A redirect is refused with both origins named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp_proxy.auth.errors import TokenEndpointError, oauth_error_code
from mcp_proxy.auth.providers import Provider
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused

log = logging.getLogger(__name__)

TIMEOUT = 15.0


@dataclass(frozen=True)
class Client:
    """The OAuth app: who we are at the token endpoint."""

    token_url: str
    client_id: str
    client_secret: str | None  # scoped (confidential) apps only
    redirect_uri: str
    json_body: bool = False  # the token endpoint takes JSON (Atlassian), not a form

    def __repr__(self) -> str:
        secret = "set" if self.client_secret else "none"
        return f"Client(token_url={self.token_url!r}, client_id={self.client_id!r}, secret={secret})"


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    refresh_token: str | None
    expires_in: int | None
    scope: str | None
    id_token: str | None

    def __repr__(self) -> str:
        return f"TokenResponse(expires_in={self.expires_in}, scope={self.scope!r})"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _post(url: str, data: dict[str, str], what: str, setting: str = "token_url", as_json: bool = False) -> Any:
    """POST a form (or, `as_json`, a JSON object) to `url` (configured as the upstream's `setting`) and return its
    JSON object."""
    import httpx

    guard = OriginGuard(url, what=f"the OAuth server (the {what})",
                        fix=f"Set the upstream's {setting} to the endpoint's final address.")
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, event_hooks=guard.hooks()) as http:
            if as_json:
                response = http.post(url, json=data, headers={"Accept": "application/json"})
            else:
                response = http.post(url, data=data, headers={"Accept": "application/json"})
    except RedirectRefused as exc:
        raise TokenEndpointError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise TokenEndpointError(f"could not reach {_host(url)} for the {what} ({type(exc).__name__}); check "
                                 "your network and try again") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        error = oauth_error_code(body.get("error")) if isinstance(body, dict) else None
        description = body.get("error_description") if isinstance(body, dict) else None
        if description:  # the vendor's own words: for the log only, never in a message a model reads
            log.warning("%s refused the %s (HTTP %s, %s): %s", _host(url), what, response.status_code,
                        error or "no error code", _printable(description))
        detail = f"{error}, HTTP {response.status_code}" if error else f"HTTP {response.status_code}"
        raise TokenEndpointError(f"{_host(url)} refused the {what} ({detail})", error, response.status_code)
    return body


def _printable(value: Any) -> str:
    return "".join(c if c.isprintable() else " " for c in str(value)[:200])


def _token_response(body: dict[str, Any], url: str) -> TokenResponse:
    from mcp.shared.auth import OAuthToken
    from pydantic import ValidationError

    try:
        token = OAuthToken.model_validate(body)
    except ValidationError:
        raise TokenEndpointError(f"{_host(url)} sent a token response the proxy cannot read (no bearer "
                                 "access_token); try again, and report it if it persists") from None
    id_token = body.get("id_token")
    return TokenResponse(token.access_token, token.refresh_token, token.expires_in, token.scope,
                         id_token if isinstance(id_token, str) else None)


def exchange_code(client: Client, code: str, verifier: str) -> TokenResponse:
    data = {"grant_type": "authorization_code", "client_id": client.client_id, "code": code,
            "redirect_uri": client.redirect_uri, "code_verifier": verifier}
    if client.client_secret:
        data["client_secret"] = client.client_secret
    return _token_response(_post(client.token_url, data, "sign-in code", as_json=client.json_body), client.token_url)


def refresh(client: Client, refresh_token: str) -> TokenResponse:
    data = {"grant_type": "refresh_token", "client_id": client.client_id, "refresh_token": refresh_token}
    if client.client_secret:
        data["client_secret"] = client.client_secret
    return _token_response(_post(client.token_url, data, "token refresh", as_json=client.json_body),
                           client.token_url)


def revoke(url: str, client: Client, token: str, hint: str) -> str | None:
    """Revoke one token (RFC 7009). None when the server accepted it, else why not."""
    data = {"client_id": client.client_id, "token": token, "token_type_hint": hint}
    if client.client_secret:
        data["client_secret"] = client.client_secret
    try:
        _post(url, data, "revocation", "revoke_url")
    except TokenEndpointError as exc:
        if exc.status == 200:  # RFC 7009 answers 200 with an empty body
            return None
        return str(exc)
    return None


def id_token_claims(id_token: str | None) -> dict[str, Any]:
    """The ID token's claims, without checking its signature: it came straight from the token endpoint over
    TLS, which OpenID Connect Core §3.1.3.7 accepts in place of the signature check. Only the region and
    account are taken from it, never authorisation decisions."""
    if not id_token:
        return {}
    import jwt

    try:
        claims = jwt.decode(id_token, options={"verify_signature": False, "verify_aud": False,
                                               "verify_exp": False})
    except jwt.PyJWTError:
        log.warning("the ID token in the token response is not a readable JWT; the region comes from the config")
        return {}
    return claims if isinstance(claims, dict) else {}


def fetch_identity(provider: Provider, api_root: str, access_token: str) -> tuple[str | None, str | None]:
    """(email, name) of the signed-in user from the provider's identity call, or (None, None) on failure."""
    email, name, _ = fetch_identity_details(provider, api_root, access_token)
    return email, name


def fetch_identity_details(provider: Provider, api_root: str,
                           access_token: str) -> tuple[str | None, str | None, dict[str, str]]:
    """(email, name, the provider's `identity_extra` fields found) of the signed-in user, or (None, None, {})."""
    if not provider.identity_path:
        return None, None, {}
    import httpx

    url = api_root.rstrip("/") + provider.identity_path
    guard = OriginGuard(url, what="the identity call", fix="Check the upstream's base_url.")
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, event_hooks=guard.hooks()) as http:
            response = http.get(url, headers={**provider.identity_headers, "Authorization": f"Bearer {access_token}",
                                              "User-Agent": "mcp-access-proxy"})
        body = response.json() if response.status_code == 200 else None
    except RedirectRefused as exc:
        log.warning("%s", exc)
        return None, None, {}
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("could not ask %s who signed in (%s)", _host(url), type(exc).__name__)
        return None, None, {}
    if body is None:
        log.warning("%s answered HTTP %s when asked who signed in", _host(url), response.status_code)
        return None, None, {}
    extra = {key: value for key, path in provider.identity_extra.items() if (value := _dig(body, path))}
    return _dig(body, provider.identity_email), _dig(body, provider.identity_name), extra


def _dig(body: Any, path: tuple[str, ...]) -> str | None:
    for part in path:
        body = body.get(part) if isinstance(body, dict) else None
    return body if isinstance(body, str) and path else None
