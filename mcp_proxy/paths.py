"""Where the proxy keeps its files.

With `MCP_ACCESS_PROXY_HOME` set, everything (config, caches, logs, audit
spool, token fallback) lives under it; otherwise the platform's user dirs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mcp-access-proxy"
HOME_ENV = "MCP_ACCESS_PROXY_HOME"
CONFIG_ENV = "MCP_ACCESS_PROXY_CONFIG"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def default_config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def tool_cache_dir(self) -> Path:
        return self.cache_dir / "tools"

    @property
    def policy_dir(self) -> Path:
        return self.data_dir / "policy"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def tokens_dir(self) -> Path:
        return self.data_dir / "tokens"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"


def resolve_paths(env: Mapping[str, str] | None = None) -> Paths:
    environ: Mapping[str, str] = os.environ if env is None else env
    home = environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().absolute()
        return Paths(root, root / "data", root / "cache", root / "logs")
    import platformdirs

    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
