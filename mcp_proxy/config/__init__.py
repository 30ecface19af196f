"""The TOML configuration: discovery, validation, secret references."""

from mcp_proxy.config.load import ConfigError, find_config_file, load_config, parse_config
from mcp_proxy.config.model import AuditConfig, Config, OAuthSettings, PolicyConfig, UpstreamConfig
from mcp_proxy.config.secrets import SecretError, SecretRef, SecretStore

__all__ = [
    "AuditConfig", "Config", "ConfigError", "OAuthSettings", "PolicyConfig", "SecretError", "SecretRef",
    "SecretStore", "UpstreamConfig", "find_config_file", "load_config", "parse_config",
]


def secret_store_for(config: Config, paths) -> SecretStore:
    """The secret store the config selects (keychain, or the opt-in file store)."""
    return SecretStore(config.secrets_store, paths.data_dir / "secrets.json")
