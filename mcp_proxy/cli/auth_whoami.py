"""`whoami`: per upstream, who the vendor sees (PagerDuty answers `GET /users/me`; an Atlassian sign-in names
its account and the JSM Operations site in use), token expiry and scopes for per-user sign-in, and for shared
keys, whose identity is used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from mcp_proxy.cli.auth_expiry import describe_expiry
from mcp_proxy.errors import ProxyError

if TYPE_CHECKING:
    from mcp_proxy.auth.vault import TokenInfo
    from mcp_proxy.config import Config, SecretStore, UpstreamConfig
    from mcp_proxy.paths import Paths

LIVE_TIMEOUT = 15.0


def _oauth_details(info: TokenInfo, cfg: UpstreamConfig) -> list[str]:
    renewal = ("; refreshed automatically" if info.has_refresh_token
               else "; no refresh token: sign in again when it expires")
    details = [f"access token: {describe_expiry(info.expires_at)}{renewal}",
               f"scopes: {' '.join(info.scopes) or 'none stated'}"]
    if info.missing_scopes:
        details.append(f"MISSING scopes: {' '.join(info.missing_scopes)} (tools that need them are refused; the "
                       f"app's admin can grant them, then `mcp-access-proxy login {cfg.key}` again)")
    if info.region:
        from_token = cfg.oauth is not None and cfg.oauth.region_from_token and not cfg.base_url
        details.append(f"region: {info.region}" + (" (from the sign-in)" if from_token else ""))
    return details


async def _pagerduty(cfg: UpstreamConfig, config: Config, paths: Paths, store: SecretStore,
                     live: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"upstream": cfg.key, "kind": cfg.kind, "auth": cfg.auth, "identity": None,
                           "confirmed": False, "details": []}
    broker = None
    if cfg.auth == "oauth":
        from mcp_proxy.auth.broker import TokenBroker

        broker = TokenBroker.for_upstream(cfg, paths, store)
        if broker.token_info() is None:
            row["summary"] = f"not signed in; run `mcp-access-proxy login {cfg.key}`"
            return row
    if not live:
        info = broker.token_info() if broker else None
        row["identity"] = info.identity_email if info else None
        row["confirmed"] = bool(row["identity"])
        row["summary"] = (f"signed in as {row['identity'] or 'an unnamed user'} (stored; not checked with "
                          "PagerDuty)") if info else "API key (not checked: --offline)"
        row["details"] = _oauth_details(info, cfg) if info else []
        return row
    from mcp_proxy.connectors.base import ConnectorError
    from mcp_proxy.connectors.pagerduty import current_user
    from mcp_proxy.upstreams.factory import build_upstream
    from mcp_proxy.upstreams.rest import RestUpstream

    upstream = build_upstream(cfg, config, paths, store)
    if not isinstance(upstream, RestUpstream):  # the factory builds one for every PagerDuty upstream
        raise TypeError(f"upstreams.{cfg.key}: a PagerDuty upstream should be built as a REST upstream")
    try:
        with anyio.fail_after(LIVE_TIMEOUT):
            user = await current_user(upstream.connector)
    except ConnectorError as exc:
        row["summary"] = f"PagerDuty did not say who this is: {exc.message}"
        user = None
    except TimeoutError:
        row["summary"] = f"PagerDuty did not answer within {LIVE_TIMEOUT:g} s"
        user = None
    except ProxyError as exc:  # SignInRequired (the refresh was refused), AuthUnavailable: text fit to show
        row["summary"] = str(exc)
        user = None
    except Exception as exc:  # noqa: BLE001 - anything else may echo a request or a token: its type only
        row["summary"] = f"the check failed ({type(exc).__name__})"
        user = None
    finally:
        await upstream.connector.aclose()
    if user is not None:
        email, name, role = user.get("email"), user.get("name"), user.get("role")
        row["identity"] = email
        row["confirmed"] = cfg.auth == "oauth"
        how = "signed in as" if cfg.auth == "oauth" else "user API key of"
        row["summary"] = f"{how} {email}" + (f" ({name}{', ' + role if role else ''})" if name else "")
    elif cfg.auth != "oauth" and "account-level" in row.get("summary", ""):
        actor = cfg.from_email or config.user_email
        row["summary"] = ("account-level API key: it belongs to no user; writes are made as "
                          f"From: {actor or '(nobody: set upstreams.' + cfg.key + '.from)'}")
    if broker is not None:
        info = broker.token_info()
        if info is not None:
            row["details"] = _oauth_details(info, cfg)
    return row


async def _jsm(cfg: UpstreamConfig, config: Config, paths: Paths, store: SecretStore, live: bool) -> dict[str, Any]:
    """JSM Operations: the Atlassian account (signed in, or the API token's) and the site whose cloud id is used."""
    row: dict[str, Any] = {"upstream": cfg.key, "kind": cfg.kind, "auth": cfg.auth, "identity": None,
                           "confirmed": False, "details": []}
    configured = cfg.site or (f"cloud id {cfg.cloud_id}" if cfg.cloud_id else None)
    if cfg.auth != "oauth":
        ref = str(cfg.api_token) if cfg.api_token is not None else "not set"
        row["summary"] = (f"API token of {cfg.email} ({ref}): JSM Operations sees that Atlassian account, "
                          "not necessarily you")
        row["details"] = [f"site: {configured}",
                          f"the proxy records calls as {config.user_email or '(no [user] email)'}"]
        return row
    from mcp_proxy.auth.broker import TokenBroker

    broker = TokenBroker.for_upstream(cfg, paths, store)
    info = broker.token_info()
    if info is None:
        row["summary"] = f"not signed in; run `mcp-access-proxy login {cfg.key}`"
        return row
    who = info.identity_email or "an account the proxy could not name (GET /me failed: is read:me granted?)"
    account = info.extra.get("account_id")
    more = ", ".join(str(v) for v in (info.identity_name, f"account {account}" if account else None) if v)
    row["identity"] = info.identity_email
    row["confirmed"] = bool(info.identity_email)
    row["summary"] = f"signed in to Atlassian as {who}" + (f" ({more})" if more else "")
    row["details"] = _oauth_details(info, cfg)
    if not live:
        row["summary"] += " (stored; not checked with Atlassian)"
        row["details"].append(f"site: {configured or 'the only one the account can reach (found at the first call)'}")
        return row
    row["details"].append(f"site: {await _jsm_site(cfg, config, paths, store)}")
    return row


async def _jsm_site(cfg: UpstreamConfig, config: Config, paths: Paths, store: SecretStore) -> str:
    """The site whose cloud id the JSM upstream uses, found as a tool call would (with the signed-in token)."""
    from mcp_proxy.connectors.base import ConnectorError
    from mcp_proxy.connectors.jsm import JsmConnector
    from mcp_proxy.upstreams.factory import build_upstream
    from mcp_proxy.upstreams.rest import RestUpstream

    upstream = build_upstream(cfg, config, paths, store)
    if not isinstance(upstream, RestUpstream) or not isinstance(upstream.connector, JsmConnector):
        raise TypeError(f"upstreams.{cfg.key}: a JSM Operations upstream should be built as a REST upstream")
    connector = upstream.connector
    try:
        with anyio.fail_after(LIVE_TIMEOUT):
            cloud_id = await connector.cloud_id.get()
    except ConnectorError as exc:
        return f"not found: {connector.scrub(exc.message)}"
    except TimeoutError:
        return f"not found: Atlassian did not answer within {LIVE_TIMEOUT:g} s"
    except ProxyError as exc:  # SignInRequired (the refresh was refused), AuthUnavailable: text fit to show
        return f"not found: {exc}"
    except Exception as exc:  # noqa: BLE001 - anything else may echo a request or a token: its type only
        return f"not found: the check failed ({type(exc).__name__})"
    finally:
        await connector.aclose()
    where = (connector.cloud_id.site_url or "").removeprefix("https://") or "(as configured)"
    return f"{where} (cloud id {cloud_id})"


def _shared_key(cfg: UpstreamConfig, config: Config) -> dict[str, Any]:
    ref = str(cfg.api_key) if cfg.api_key is not None else "not set"
    vendor = {"opsgenie": "Opsgenie", "statuspage": "Statuspage", "uptimeobserver": "UptimeObserver"}.get(cfg.kind,
                                                                                                         cfg.kind)
    return {"upstream": cfg.key, "kind": cfg.kind, "auth": "api_key", "identity": None, "confirmed": False,
            "summary": f"shared API key ({ref}): {vendor} sees the key's owner or integration, not you",
            "details": [f"the proxy records calls as {config.user_email or '(no [user] email)'}"]}


def _mcp(cfg: UpstreamConfig, paths: Paths, store: SecretStore) -> dict[str, Any]:
    row: dict[str, Any] = {"upstream": cfg.key, "kind": cfg.kind, "auth": cfg.auth, "identity": None,
                           "confirmed": False, "details": []}
    if cfg.auth == "oauth" and cfg.url:
        from mcp_proxy.auth.vault import TokenStore

        info = TokenStore(cfg.key, store, paths).info()
        if info is None:
            row["summary"] = f"not signed in; run `mcp-access-proxy login {cfg.key}`"
        else:
            row["summary"] = f"signed in to {cfg.url}"
            row["details"] = [f"access token: {describe_expiry(info.expires_at)}",
                              f"scopes: {' '.join(info.scopes) or 'none stated'}"]
    elif cfg.command:
        row["summary"] = "a local command: it uses its own credentials (from its env)"
    elif cfg.headers:
        row["summary"] = f"credentials from headers ({', '.join(sorted(cfg.headers))}): shared, not yours"
    else:
        row["summary"] = "no credentials"
    return row


def describe_all(config: Config, paths: Paths, store: SecretStore, *, live: bool = True) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}

        async def one(key: str, cfg: UpstreamConfig) -> None:
            if cfg.kind == "pagerduty":
                rows[key] = await _pagerduty(cfg, config, paths, store, live)
            elif cfg.kind == "opsgenie" and cfg.api == "jsm":
                rows[key] = await _jsm(cfg, config, paths, store, live)
            elif cfg.kind == "mcp":
                rows[key] = _mcp(cfg, paths, store)
            else:
                rows[key] = _shared_key(cfg, config)

        async with anyio.create_task_group() as tg:
            for key, cfg in sorted(config.upstreams.items()):
                if cfg.enabled:
                    tg.start_soon(one, key, cfg)
        return [rows[k] for k in sorted(rows)]

    rows = anyio.run(run)
    for row in rows:
        row.setdefault("summary", "")
    return rows
