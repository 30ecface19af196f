"""The OAuth providers the proxy knows, by upstream kind (JSM Operations: Atlassian): the only vendor facts in
`auth`.

An entry says where to send the user and the token requests, how the granted
scopes relate to each other, how to tell the account's region from the ID
token, and which API call names the signed-in user. Config keys
(`authorize_url`, `token_url`, `revoke_url`, `base_url`) override it, so the
sandbox, tests and on-premise gateways can stand in for the vendor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provider:
    name: str  # shown to users
    authorize_url: str
    token_url: str
    revoke_url: str | None  # RFC 7009-style revocation (token, client_id), if the vendor has one
    # The REST API root per region; the ID token's `aud` names one of them.
    api_by_region: dict[str, str] = field(default_factory=dict)
    # GET this (relative to the API root) with the token to learn who signed in; the email is at this path.
    identity_path: str | None = None
    identity_email: tuple[str, ...] = ()
    identity_name: tuple[str, ...] = ()
    identity_headers: dict[str, str] = field(default_factory=dict)
    implied_scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # granted X implies these
    ignored_scopes: tuple[str, ...] = ()  # granted to everyone, never requested: not worth reporting
    console_hint: str = ""  # where a user revokes the app's access by hand
    api_root: str | None = None  # the one API root, for a vendor without regions (the identity call goes there)
    authorize_params: dict[str, str] = field(default_factory=dict)  # added to every authorization URL
    token_request_json: bool = False  # the token endpoint takes a JSON body (else a form)
    identity_extra: dict[str, tuple[str, ...]] = field(default_factory=dict)  # more of the identity answer to keep


PROVIDERS: dict[str, Provider] = {
    # vendors.md §3.6. Same identity host for the EU service region.
    "pagerduty": Provider(
        name="PagerDuty",
        authorize_url="https://identity.pagerduty.com/oauth/authorize",
        token_url="https://identity.pagerduty.com/oauth/token",
        # Not in PagerDuty's docs, but what third-party clients call; a refusal is reported, not fatal.
        revoke_url="https://identity.pagerduty.com/oauth/revoke",
        api_by_region={"us": "https://api.pagerduty.com", "eu": "https://api.eu.pagerduty.com"},
        identity_path="/users/me",
        identity_email=("user", "email"),
        identity_name=("user", "name"),
        identity_headers={"Accept": "application/vnd.pagerduty+json;version=2"},
        implied_scopes={"write": ("read",)},  # classic apps: write includes read
        ignored_scopes=("openid",),
        console_hint="PagerDuty: My Profile > User Settings > (app) or the app's 'Revoke All Tokens'",
    ),
    # jsm-ops.md §2.2: Atlassian OAuth 2.0 (3LO) for JSM Operations (`kind = "opsgenie"`, `api = "jsm"`). No
    # revocation endpoint (users remove the app at id.atlassian.com); the token endpoint takes JSON and needs the
    # client secret (no PKCE-only public clients); the identity is the User Identity API's `/me` (`read:me`).
    "atlassian": Provider(
        name="Atlassian",
        authorize_url="https://auth.atlassian.com/authorize",
        token_url="https://auth.atlassian.com/oauth/token",
        revoke_url=None,
        api_root="https://api.atlassian.com",
        identity_path="/me",
        identity_email=("email",),
        identity_name=("name",),
        identity_headers={"Accept": "application/json"},
        identity_extra={"account_id": ("account_id",)},
        authorize_params={"audience": "api.atlassian.com", "prompt": "consent"},
        token_request_json=True,
        console_hint="https://id.atlassian.com/manage-profile/apps (Connected apps: remove the app's access)",
    ),
}


def provider_for(kind: str) -> Provider | None:
    return PROVIDERS.get(kind)


def provider_key(kind: str, api: str | None = None) -> str:
    """The provider table's key for an upstream: JSM Operations signs in with Atlassian, not Opsgenie."""
    return "atlassian" if kind == "opsgenie" and api == "jsm" else kind


def provider_for_upstream(cfg: Any) -> Provider | None:
    """The provider of a configured upstream (an `UpstreamConfig`)."""
    return PROVIDERS.get(provider_key(cfg.kind, getattr(cfg, "api", None)))


def granted_scopes(provider: Provider | None, scope: str | None, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes a token response grants. An absent `scope` means the requested ones (RFC 6749 §5.1)."""
    if scope is None:
        return tuple(requested)
    ignored = provider.ignored_scopes if provider else ()
    return tuple(s for s in scope.split() if s not in ignored)


def missing_scopes(provider: Provider | None, requested: tuple[str, ...], granted: tuple[str, ...]) -> tuple[str, ...]:
    """Requested scopes the token does not carry, counting implied ones (classic `write` covers `read`)."""
    have = set(granted)
    for scope in granted:
        have.update(provider.implied_scopes.get(scope, ()) if provider else ())
    return tuple(s for s in requested if s not in have)


def region_from_audience(provider: Provider | None, claims: dict) -> str | None:
    """The region whose API root the ID token's `aud` names, else its `region` claim, else None."""
    if provider is None:
        return None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    for value in audiences:
        if not isinstance(value, str):
            continue
        for region, root in provider.api_by_region.items():
            if value.rstrip("/").lower() == root.rstrip("/").lower():
                return region
    claim = claims.get("region")
    if isinstance(claim, str) and claim.lower() in provider.api_by_region:
        return claim.lower()
    return None
