"""Fixtures for the audit tests: a collector emulator, spools in tmp, the real proxy process. Their helpers
live in tests/_support/audit.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_proxy.paths import Paths
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.collector import create_app
from tests._support.audit import Spool, home_paths
from tests._support.proxy import ProxyEnv


@pytest.fixture
def proxy(tmp_path: Path) -> ProxyEnv:
    return ProxyEnv(tmp_path)


@pytest.fixture
def collector():
    """A running collector emulator: yields (Collector state, base URL)."""
    app = create_app(hec_token="hec-test-token-123")
    server = serve_in_thread(app)
    try:
        yield app.state.collector, server.url
    finally:
        server.stop()


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return home_paths(tmp_path / "home")


@pytest.fixture
def spool(paths: Paths):
    s = Spool(paths)
    yield s
    s.close()
