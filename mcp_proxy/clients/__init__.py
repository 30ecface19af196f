"""The desktop clients: their config files, shapes and limits; installing our entry; finding it again.

The server imports `client_for_info` on its start-up path, so this package
uses the standard library only.
"""

from mcp_proxy.clients.entry import Launcher, build_entry, find_launcher, looks_like_ours
from mcp_proxy.clients.install import ClientConfigError, Plan, apply, plan_install, plan_uninstall
from mcp_proxy.clients.installed import ClientConfigStatus, InstalledEntry, find_installed_entries, scan_client_configs
from mcp_proxy.clients.table import (
    CLIENT_CONFIG_DIR_ENV,
    CLIENTS,
    DEFAULT_SERVER_NAME,
    ClientSpec,
    client_for_info,
    config_paths,
    current_platform,
)

__all__ = [
    "CLIENTS", "CLIENT_CONFIG_DIR_ENV", "DEFAULT_SERVER_NAME", "ClientConfigError", "ClientConfigStatus", "ClientSpec",
    "InstalledEntry", "Launcher", "Plan", "apply", "build_entry", "client_for_info", "config_paths", "current_platform",
    "find_installed_entries", "find_launcher", "looks_like_ours", "plan_install", "plan_uninstall",
    "scan_client_configs",
]
