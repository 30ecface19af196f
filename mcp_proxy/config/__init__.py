"""The TOML configuration: discovery, validation, secret references."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_proxy.config.load import ConfigError, find_config_file, load_config, parse_config
from mcp_proxy.config.model import AuditConfig, Config, OAuthSettings, PolicyConfig, UpstreamConfig
from mcp_proxy.config.secrets import SecretError, SecretRef, SecretStore

if TYPE_CHECKING:
    from mcp_proxy.paths import Paths

__all__ = [
    "AuditConfig", "Config", "ConfigError", "OAuthSettings", "PolicyConfig", "SecretError", "SecretRef",
    "SecretStore", "UpstreamConfig", "find_config_file", "load_config", "parse_config",
]


def secret_store_for(config: Config, paths: Paths) -> SecretStore:
    """The secret store the config selects (keychain, or the opt-in file store)."""
    return SecretStore(config.secrets_store, paths.data_dir / "secrets.json")
