"""The `uptimeobserver` preset's config: defaults, the loopback-only plain-http rule, secrets by reference."""

from __future__ import annotations

import pytest

from mcp_proxy.config import ConfigError, SecretStore, parse_config
from mcp_proxy.config.load import UPTIMEOBSERVER_URL
from mcp_proxy.upstreams.uptimeobserver import UptimeObserverUpstream
from tests._support.uptimeobserver import KEY


def parse(**table) -> object:
    return parse_config({"upstreams": {"uo": {"kind": "uptimeobserver", **table}}})


def problems(**table) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(**table)
    return str(caught.value)


def test_defaults_are_the_vendor_endpoint_and_x_api_key() -> None:
    cfg = parse(api_key="keyring:uptimeobserver").upstreams["uo"]
    assert cfg.url == UPTIMEOBSERVER_URL and cfg.transport == "streamable-http"
    assert cfg.api_key_header == "x-api-key" and cfg.api_key.name == "uptimeobserver"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8123/mcp", "http://localhost:8123/mcp", "https://uo.example.com/mcp"])
def test_plain_http_is_fine_on_loopback_and_https_anywhere(url) -> None:
    assert parse(url=url, api_key="env:UO").upstreams["uo"].url == url


def test_refusals_name_the_key_and_the_fix() -> None:
    assert "plain http:// is allowed only for a loopback host" in problems(url="http://uo.example.com/mcp",
                                                                            api_key="env:UO")
    assert "upstreams.uo.api_key: required" in problems()
    text = problems(api_key=KEY)
    assert "a plain value is not allowed" in text and KEY not in text
    assert "'basic' is not one of x-api-key, bearer" in problems(api_key="env:UO", api_key_header="basic")
    assert "upstreams.uo.headers: unknown key" in problems(api_key="env:UO", headers={"X-API-Key": "env:UO"})


@pytest.mark.parametrize(("style", "expected"), [("x-api-key", {"X-API-Key": KEY}),
                                                 ("bearer", {"Authorization": f"Bearer {KEY}"})])
def test_the_key_goes_in_exactly_one_header(monkeypatch, style, expected) -> None:
    monkeypatch.setenv("UO", f"  {KEY}\n")  # pasted with a trailing newline
    cfg = parse(api_key="env:UO", api_key_header=style).upstreams["uo"]
    upstream = UptimeObserverUpstream(cfg, SecretStore("keyring"))
    assert upstream._resolve(upstream.cfg.headers) == expected
