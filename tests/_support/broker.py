"""Token brokers on a sandbox OAuth server, with an injected clock, for the broker tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp_proxy.auth.broker import TokenBroker
from mcp_proxy.auth.events import NO_EVENTS, AuthEvents
from mcp_proxy.config import SecretStore
from mcp_proxy.config.load import parse_config
from mcp_proxy.paths import resolve_paths
from tests._support.auth import Sandbox, open_in_stand_in_browser


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_broker(sandbox: Sandbox, home: Path, clock: Any = None, *, events: AuthEvents = NO_EVENTS,
                **table: Any) -> TokenBroker:
    upstream = sandbox.upstream(**table)
    config = parse_config({"user": {"email": "alice@example.com"}, "secrets": {"store": "file"},
                           "upstreams": {"pd": upstream}})
    paths = resolve_paths({"MCP_ACCESS_PROXY_HOME": str(home)})
    store = SecretStore("file", paths.data_dir / "secrets.json")
    return TokenBroker.for_upstream(config.upstreams["pd"], paths, store, events=events,
                                    **({"clock": clock} if clock else {}))


def sign_in(broker: TokenBroker) -> Any:
    session = broker.begin_sign_in_blocking(lifetime=30)
    browser = open_in_stand_in_browser(session.url)
    assert browser.returncode == 0, browser.stderr
    info = session.wait_blocking(20)
    session.close()
    return info
