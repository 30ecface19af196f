"""Fixtures: the hosted PagerDuty MCP stand-in on a loopback port (API keys), and the OAuth sandbox wired to it
with the real proxy process. Helpers live in tests/_support/pd_hosted.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_proxy.sandbox import pagerduty_mcp
from tests._support.auth import AuthProxy
from tests._support.pd_hosted import oauth_sandbox


@pytest.fixture
def hosted() -> Iterator[pagerduty_mcp.Sandbox]:
    sandbox = pagerduty_mcp.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def oauth_hosted(tmp_path: Path) -> Iterator[tuple[AuthProxy, pagerduty_mcp.Sandbox]]:
    box, hosted = oauth_sandbox(tmp_path)
    try:
        yield AuthProxy(tmp_path, box), hosted
    finally:
        hosted.stop()
        box.oauth_http.stop()
