"""The catalog without a running server: for `tools`, `policy draft`, `policy explain` and `doctor`.

Built-in connectors' tools are static; MCP upstreams' come from the on-disk
cache (filled by `serve`, or by `refresh_catalog`).
"""

from __future__ import annotations

import logging
from typing import Any

from mcp_proxy.catalog.cache import load_tools, save_tools
from mcp_proxy.catalog.catalog import Entry, build_entries
from mcp_proxy.config import Config, SecretStore, UpstreamConfig
from mcp_proxy.paths import Paths
from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.upstreams.base import connection_identity

log = logging.getLogger(__name__)


def _static_tools(cfg: UpstreamConfig, config: Config) -> list[dict[str, Any]]:
    from mcp_proxy.connectors.base import ConnectorError, Credential
    from mcp_proxy.upstreams.rest import load_connector, tool_dict

    async def no_credentials() -> Credential:  # listing tools needs no credentials
        raise ConnectorError("not available offline", "offline")

    return [tool_dict(t) for t in load_connector(cfg, no_credentials, config.user_email).tools()]


def load_catalog_entries(config: Config, paths: Paths) -> tuple[list[Entry], list[str]]:
    """Every known tool, and the keys of upstreams whose tools are not known yet."""
    from mcp_proxy.config.model import REST_KINDS

    entries: list[Entry] = []
    unknown: list[str] = []
    for key, cfg in sorted(config.upstreams.items()):
        if not cfg.enabled:
            continue
        # PagerDuty's hosted MCP server (api = "mcp") is an MCP upstream: its tools are the server's, cached.
        hosted = cfg.kind == "pagerduty" and cfg.api == "mcp"
        raw: list[dict[str, Any]] | None = (
            _static_tools(cfg, config) if cfg.kind in REST_KINDS and not hosted
            else load_tools(paths.tool_cache_dir, key, connection_identity(cfg)))
        if raw is None:
            unknown.append(key)
            continue
        entries += build_entries(key, raw, kind="pagerduty-mcp" if hosted else cfg.kind)[0]
    return entries, unknown


def load_catalog_facts(config: Config, paths: Paths) -> list[ToolFacts]:
    return [e.facts for e in load_catalog_entries(config, paths)[0]]


async def refresh_catalog(config: Config, paths: Paths, store: SecretStore, timeout: float = 30.0) -> dict[str, str]:
    """Connect to each MCP upstream once, list its tools and cache them; returns a result line per upstream."""
    import anyio

    from mcp_proxy.upstreams.base import UpstreamEvents
    from mcp_proxy.upstreams.factory import build_upstreams

    results: dict[str, str] = {}
    upstreams = {k: u for k, u in build_upstreams(config, paths, store).items() if u.cache_identity()}

    async def refresh_one(key: str, upstream: Any) -> None:
        async def got(k: str, tools: list[dict[str, Any]]) -> None:
            save_tools(paths.tool_cache_dir, k, upstream.cache_identity(), tools)
            results[k] = f"{len(tools)} tools"
            scope.cancel()

        with anyio.move_on_after(timeout) as scope:
            await upstream.run(UpstreamEvents(tools_changed=got))
        results.setdefault(key, f"not reachable: {upstream.status.detail or 'timed out'}")

    async with anyio.create_task_group() as tg:
        for key, upstream in upstreams.items():
            tg.start_soon(refresh_one, key, upstream)
    return results
