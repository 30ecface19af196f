"""`auth = "oauth"` for JSM Operations in the config: the Atlassian OAuth app (client_id, client_secret), the
JSM Ops scopes with offline_access by default, `site` optional, the endpoint overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mcp_proxy.auth.providers import provider_for_upstream
from mcp_proxy.config import ConfigError
from mcp_proxy.config.load import parse_config


def _parse(table: str):
    data = tomllib.loads('[user]\nemail = "alice@example.com"\n[upstreams.og]\nkind = "opsgenie"\napi = "jsm"\n'
                        'auth = "oauth"\n' + table)
    return parse_config(data, Path("c.toml")).upstreams["og"]


def test_oauth_with_the_app_and_a_site() -> None:
    cfg = _parse('client_id = "abc"\nclient_secret = "keyring:atlassian-app"\nsite = "acme.atlassian.net"\n')
    assert (cfg.auth, cfg.site, cfg.cloud_id, cfg.email, cfg.api_token) == ("oauth", "acme.atlassian.net", None,
                                                                              None, None)
    assert cfg.oauth is not None and cfg.oauth.client_id == "abc" and str(cfg.oauth.client_secret) == \
        "keyring:atlassian-app"
    assert "offline_access" in cfg.oauth.scopes and "read:ops-alert:jira-service-management" in cfg.oauth.scopes
    assert "read:me" in cfg.oauth.scopes and not cfg.oauth.region_from_token
    provider = provider_for_upstream(cfg)
    assert provider is not None and provider.name == "Atlassian"
    assert provider.authorize_params == {"audience": "api.atlassian.com", "prompt": "consent"}


def test_oauth_needs_no_site_and_takes_the_overrides() -> None:
    cfg = _parse('client_id = "abc"\nclient_secret = "env:S"\nauthorize_url = "http://127.0.0.1:9/authorize"\n'
                 'token_url = "http://127.0.0.1:9/oauth/token"\n'
                 'resources_url = "http://127.0.0.1:9/oauth/token/accessible-resources"\n'
                 'scopes = ["read:ops-alert:jira-service-management", "offline_access"]\n')
    assert cfg.oauth is not None and cfg.oauth.authorize_url == "http://127.0.0.1:9/authorize"
    assert cfg.oauth.scopes == ("read:ops-alert:jira-service-management", "offline_access")
    assert cfg.resources_url == "http://127.0.0.1:9/oauth/token/accessible-resources"


@pytest.mark.parametrize(("table", "says"), [
    ('client_secret = "env:S"\n', "client_id: required"),
    ('client_id = "abc"\n', "client_secret: required"),
    ('client_id = "abc"\nclient_secret = "env:S"\napi_token = "env:T"\n', 'api_token: not used with auth = "oauth"'),
    ('client_id = "abc"\nclient_secret = "env:S"\nemail = "a@b.co"\n', 'email: not used with auth = "oauth"'),
])
def test_oauth_refusals(table: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _parse(table)
    assert says in str(exc.value)


def test_pagerduty_keeps_its_provider() -> None:
    data = tomllib.loads('[user]\nemail = "a@b.co"\n[upstreams.pd]\nkind = "pagerduty"\nauth = "oauth"\n'
                        'client_id = "x"\n')
    provider = provider_for_upstream(parse_config(data, Path("c.toml")).upstreams["pd"])
    assert provider is not None and provider.name == "PagerDuty" and provider.authorize_params == {}


def test_a_jsm_api_token_is_among_the_secrets_the_audit_redacts():
    from mcp_proxy.config.load import parse_config
    from mcp_proxy.server.secrets_in_use import secret_refs

    config = parse_config({"user": {"email": "a@example.com"}, "secrets": {"store": "file"},
                           "upstreams": {"jsm": {"kind": "opsgenie", "api": "jsm", "auth": "basic",
                                                 "cloud_id": "c1", "email": "a@example.com",
                                                 "api_token": "env:JSM_TOKEN"}}})
    assert any(ref.name == "JSM_TOKEN" for ref in secret_refs(config))
