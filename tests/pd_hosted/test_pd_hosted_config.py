"""`kind = "pagerduty"`, `api = "mcp"`: the config's checks and the preset the factory builds from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_proxy.config import ConfigError
from mcp_proxy.config.load import parse_config
from mcp_proxy.config.secrets import SecretStore
from mcp_proxy.paths import resolve_paths
from mcp_proxy.upstreams.factory import build_upstream
from mcp_proxy.upstreams.pagerduty_mcp import PagerDutyMcpUpstream


def _config(**table: object):
    return parse_config({"upstreams": {"pd": {"kind": "pagerduty", **table}}})


def _built(tmp_path: Path, **table: object) -> PagerDutyMcpUpstream:
    config = _config(**table)
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(tmp_path)})
    upstream = build_upstream(config.upstreams["pd"], config, paths, SecretStore("file", tmp_path / "secrets.json"))
    assert isinstance(upstream, PagerDutyMcpUpstream)
    return upstream


def test_rest_stays_the_default() -> None:
    cfg = _config(api_key="env:K").upstreams["pd"]
    assert cfg.api == "rest" and cfg.url is None


@pytest.mark.parametrize(("region", "url"), [(None, "https://mcp.pagerduty.com/mcp"),
                                             ("us", "https://mcp.pagerduty.com/mcp"),
                                             ("eu", "https://mcp.eu.pagerduty.com/mcp")])
def test_the_region_picks_the_hosted_endpoint(tmp_path: Path, region: str | None, url: str) -> None:
    table = {"api": "mcp", "api_key": "env:K", **({"region": region} if region else {})}
    upstream = _built(tmp_path, **table)
    assert upstream.endpoint() == url and upstream.cfg.url == url
    assert upstream.kind == "pagerduty-mcp"  # not the built-in connector: its annotations are the server's claims
    assert upstream.static_tools() is None  # a key needs no sign-in: the live (or cached) list is used


def test_url_overrides_the_endpoint(tmp_path: Path) -> None:
    upstream = _built(tmp_path, api="mcp", api_key="env:K", url="http://127.0.0.1:9/mcp", region="eu")
    assert upstream.endpoint() == "http://127.0.0.1:9/mcp"


def test_oauth_uses_the_pagerduty_sign_in(tmp_path: Path) -> None:
    upstream = _built(tmp_path, api="mcp", auth="oauth", client_id="app")
    broker = upstream.sign_in_broker()
    assert broker is not None and broker.provider.name == "PagerDuty"
    # Not signed in: the published tool set is offered, so a call can start the sign-in.
    names = {t["name"] for t in upstream.static_tools() or []}
    assert {"browse_incidents", "manage_incidents", "browse_users"} <= names and len(names) == 18


@pytest.mark.parametrize(("table", "words"), [
    ({"api": "mcp", "api_key": "env:K", "from": "a@example.com"}, "upstreams.pd.from: only for api = \"rest\""),
    ({"api": "mcp", "api_key": "env:K", "page_size": 10}, "upstreams.pd.page_size: only for api = \"rest\""),
    ({"api_key": "env:K", "url": "https://mcp.pagerduty.com/mcp"}, "upstreams.pd.url: only for api = \"mcp\""),
    ({"api": "graphql", "api_key": "env:K"}, "upstreams.pd.api"),
    ({"api": "mcp", "api_key": "env:K", "url": "http://mcp.example.com/mcp"}, "plain http:// is allowed only"),
])
def test_mistakes_are_named_with_the_fix(table: dict, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(**table)
    assert words in str(caught.value)
