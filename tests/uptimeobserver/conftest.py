"""Fixtures: the UptimeObserver MCP emulator on a loopback port, and the real proxy process. Their helpers
(keys, proxy configs pointing at the emulator) live in tests/_support/uptimeobserver.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_proxy.sandbox import uptimeobserver
from tests._support.proxy import ProxyEnv
from tests._support.uptimeobserver import KEY, OTHER_KEY


@pytest.fixture
def uo() -> Iterator[uptimeobserver.Sandbox]:
    sandbox = uptimeobserver.start([KEY, OTHER_KEY])
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def proxy(tmp_path: Path) -> ProxyEnv:
    return ProxyEnv(tmp_path)
