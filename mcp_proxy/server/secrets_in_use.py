"""The values of the secrets a config references (for redaction in the audit log)."""

from __future__ import annotations

from mcp_proxy.config import Config, SecretRef, SecretStore
from mcp_proxy.errors import ProxyError


def secret_refs(config: Config) -> list[SecretRef]:
    refs: list[SecretRef] = []
    for cfg in config.upstreams.values():
        refs += [v for v in (*cfg.env.values(), *cfg.headers.values()) if isinstance(v, SecretRef)]
        if cfg.api_key:
            refs.append(cfg.api_key)
        if cfg.api_token:  # JSM Operations, auth = "basic"
            refs.append(cfg.api_token)
        if cfg.oauth and cfg.oauth.client_secret:
            refs.append(cfg.oauth.client_secret)
    refs += [v for v in config.audit.headers.values() if isinstance(v, SecretRef)]
    if config.policy:
        refs += [v for v in config.policy.headers.values() if isinstance(v, SecretRef)]
    return refs


def known_secret_values(config: Config, store: SecretStore) -> list[str]:
    values = []
    for ref in secret_refs(config):
        try:
            values.append(ref.resolve(store))
        except ProxyError:  # an unresolvable secret cannot leak either
            continue
    return values
