"""The offline catalog (`tools`, `policy draft`, `policy explain`) of a hosted-PagerDuty upstream is the
server's own tool list from the cache, never the REST connector's tools."""

from __future__ import annotations

from mcp_proxy.catalog.cache import save_tools
from mcp_proxy.catalog.offline import load_catalog_entries
from mcp_proxy.config.load import parse_config
from mcp_proxy.paths import resolve_paths
from mcp_proxy.upstreams.base import connection_identity


def test_the_hosted_servers_tools_come_from_the_cache_and_are_not_built_in(tmp_path):
    config = parse_config({"user": {"email": "a@example.com"}, "secrets": {"store": "file"},
                           "upstreams": {"pd": {"kind": "pagerduty", "api": "mcp", "api_key": "env:PD_KEY"}}})
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(tmp_path)})
    entries, unknown = load_catalog_entries(config, paths)
    assert entries == [] and unknown == ["pd"], "before it answered once, its tools are not known"
    tool = {"name": "manage_incidents", "description": "x", "inputSchema": {"type": "object"},
            "annotations": {"readOnlyHint": True}}
    save_tools(paths.tool_cache_dir, "pd", connection_identity(config.upstreams["pd"]), [tool])
    entries, unknown = load_catalog_entries(config, paths)
    assert [e.exposed for e in entries] == ["pd_manage_incidents"] and unknown == []
    assert not entries[0].facts.builtin, "the server's own claims, not the proxy's connector"
