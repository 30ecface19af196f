"""Building the configured upstreams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp_proxy.config import Config, SecretStore, UpstreamConfig
from mcp_proxy.connectors.base import Credential, CredentialProvider
from mcp_proxy.paths import Paths
from mcp_proxy.upstreams.base import Upstream


def _oauth_credentials(cfg: UpstreamConfig, paths: Paths, store: SecretStore) -> CredentialProvider:
    from mcp_proxy.auth import AuthUnavailable, TokenBroker
    from mcp_proxy.connectors.base import ConnectorError

    broker = TokenBroker.for_upstream(cfg, paths, store)

    async def provide() -> Credential:
        # SignInRequired passes through: the hub starts a sign-in on it. Anything else is a tool failure.
        try:
            return Credential("bearer", await broker.access_token())
        except AuthUnavailable as exc:
            raise ConnectorError(f"{exc}.", exc.error_type) from None

    async def rejected(token: str | None) -> bool:
        """The vendor refused `token` (HTTP 401): True when a new one is ready to retry with."""
        try:
            return await broker.rejected(token)
        except AuthUnavailable as exc:
            raise ConnectorError(f"{exc}.", exc.error_type) from None

    provide.broker = broker  # type: ignore[attr-defined] - the server starts sign-in through it
    provide.rejected = rejected  # type: ignore[attr-defined]
    provide.region = lambda: broker.region  # type: ignore[attr-defined] - the region the sign-in reported
    return provide


def build_upstream(
    cfg: UpstreamConfig,
    config: Config,
    paths: Paths,
    store: SecretStore,
    *,
    open_url: Callable[[str], Awaitable[None]] | None = None,
) -> Upstream:
    if cfg.kind == "uptimeobserver":
        from mcp_proxy.upstreams.uptimeobserver import UptimeObserverUpstream

        return UptimeObserverUpstream(cfg, store)
    if cfg.kind == "mcp":
        from mcp_proxy.upstreams.mcp_upstream import McpUpstream

        http_auth = None
        if cfg.auth == "oauth" and cfg.url:
            from mcp_proxy.auth import mcp_oauth_auth

            http_auth = mcp_oauth_auth(cfg, paths, store, open_url or _open_browser)
        return McpUpstream(cfg, store, http_auth=http_auth)
    from mcp_proxy.upstreams.rest import RestUpstream, api_key_credentials, load_connector

    if cfg.auth == "oauth":
        credentials = _oauth_credentials(cfg, paths, store)
    else:
        credentials = api_key_credentials(cfg, store)
    upstream = RestUpstream(cfg, load_connector(cfg, credentials, config.user_email))
    upstream.credentials = credentials  # type: ignore[attr-defined]
    return upstream


async def _open_browser(url: str) -> None:
    import anyio
    import webbrowser

    await anyio.to_thread.run_sync(webbrowser.open, url)


def build_upstreams(config: Config, paths: Paths, store: SecretStore) -> dict[str, Upstream]:
    return {key: build_upstream(cfg, config, paths, store) for key, cfg in config.upstreams.items() if cfg.enabled}
