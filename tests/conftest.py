"""Shared test fixtures. Area-specific fixtures live in each tests/<area>/conftest.py; helpers the tests share
live in tests/_support/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._support.proxy import ProxyEnv


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def proxy_home(tmp_path, monkeypatch):
    """An isolated MCP_ACCESS_PROXY_HOME for one test, with the file secret store."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MCP_ACCESS_PROXY_HOME", str(home))
    monkeypatch.delenv("MCP_ACCESS_PROXY_CONFIG", raising=False)
    return home


@pytest.fixture
def proxy(tmp_path):
    """A config, home and client for the real `mcp-access-proxy` process (tests/_support/proxy.py: ProxyEnv)."""
    return ProxyEnv(tmp_path)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium for the sign-in tests (tests/_support/chromium.py); a skip where it is not installed."""
    from tests._support.chromium import chromium

    with chromium() as running:
        yield running
