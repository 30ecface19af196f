"""Building the configured upstreams, each composed with what it needs at construction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mcp_proxy.config import Config, SecretStore, UpstreamConfig
from mcp_proxy.paths import Paths
from mcp_proxy.upstreams.base import Upstream

if TYPE_CHECKING:
    from mcp_proxy.auth import AuthEvents
    from mcp_proxy.upstreams.eras import EraMemory

# The audit events of one upstream's sign-ins and tokens (serve passes them; commands run without).
AuthEventsFor = Callable[[str], "AuthEvents"]
# Where each MCP upstream's protocol-era verdict is remembered between starts (catalog.cache.era_memory).
ErasFor = Callable[[UpstreamConfig], "EraMemory"]


def build_upstream(
    cfg: UpstreamConfig,
    config: Config,
    paths: Paths,
    store: SecretStore,
    *,
    open_url: Callable[[str], Awaitable[None]] | None = None,
    auth_events: AuthEventsFor | None = None,
    eras: ErasFor | None = None,
) -> Upstream:
    events = auth_events(cfg.key) if auth_events is not None else None
    if cfg.kind == "uptimeobserver":
        from mcp_proxy.upstreams.uptimeobserver import UptimeObserverUpstream

        return UptimeObserverUpstream(cfg, store)
    if cfg.kind == "mcp":
        from mcp_proxy.upstreams.mcp_upstream import McpUpstream

        http_auth = None
        if cfg.auth == "oauth" and cfg.url:
            from mcp_proxy.auth import AuthEvents, mcp_oauth_auth

            http_auth = mcp_oauth_auth(cfg, paths, store, open_url or _open_browser, events=events or AuthEvents())
        return McpUpstream(cfg, store, http_auth=http_auth, eras=eras(cfg) if eras is not None else None)
    if cfg.kind == "pagerduty" and cfg.api == "mcp":
        from mcp_proxy.upstreams.pagerduty_mcp import PagerDutyMcpUpstream

        broker = None
        if cfg.auth == "oauth":  # the PagerDuty sign-in of the REST connector: same app, keychain entry, refresh
            from mcp_proxy.auth import AuthEvents, TokenBroker

            broker = TokenBroker.for_upstream(cfg, paths, store, events=events or AuthEvents())
        return PagerDutyMcpUpstream(cfg, store, broker=broker)
    from mcp_proxy.upstreams.rest import OAuthCredentials, RestUpstream, api_key_credentials, load_connector

    if cfg.auth == "oauth":
        from mcp_proxy.auth import AuthEvents, TokenBroker

        oauth = OAuthCredentials(TokenBroker.for_upstream(cfg, paths, store, events=events or AuthEvents()))
        return RestUpstream(cfg, load_connector(cfg, oauth, config.user_email), broker=oauth.broker)
    return RestUpstream(cfg, load_connector(cfg, api_key_credentials(cfg, store), config.user_email))


async def _open_browser(url: str) -> None:
    import webbrowser

    import anyio

    await anyio.to_thread.run_sync(webbrowser.open, url)


def build_upstreams(config: Config, paths: Paths, store: SecretStore,
                    auth_events: AuthEventsFor | None = None, *, eras: ErasFor | None = None) -> dict[str, Upstream]:
    return {key: build_upstream(cfg, config, paths, store, auth_events=auth_events, eras=eras)
            for key, cfg in config.upstreams.items() if cfg.enabled}
