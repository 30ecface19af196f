"""Fixtures for the OAuth tests: the sandbox OAuth server and the PagerDuty emulator wired together over
real loopback HTTP, the real proxy process configured against them, and a remote MCP server behind OAuth.
Their helpers live in tests/_support/auth.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_proxy.sandbox.asgi_thread import free_port, serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthClient, OAuthServer, create_app
from mcp_proxy.sandbox.pagerduty import create_app as pagerduty_app
from tests._support.auth import CLIENT_ID, SCOPED_ID, SCOPED_SECRET, AuthProxy, Sandbox
from tests.auth.mcp_oauth_server import start_mcp_server


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    server = OAuthServer()
    server.add_client(OAuthClient(CLIENT_ID, (redirect,)))
    server.add_client(OAuthClient(SCOPED_ID, (redirect,), secret=SCOPED_SECRET, scoped=True))
    oauth_http = serve_in_thread(create_app(server))
    pd_http = serve_in_thread(pagerduty_app(bearer_validator=server.bearer_validator))
    box = Sandbox(server, oauth_http, pd_http, redirect, port, tmp_path)
    try:
        yield box
    finally:
        for running in (oauth_http, pd_http, *box.extra_servers):
            running.stop()


@pytest.fixture
def aproxy(tmp_path: Path, sandbox: Sandbox) -> AuthProxy:
    return AuthProxy(tmp_path, sandbox)


# -- a remote MCP server behind OAuth (tests/auth/mcp_oauth_server.py) ----------------------------------
@pytest.fixture
def mcp_server(sandbox: Sandbox) -> Any:
    sandbox.oauth.add_client(OAuthClient("mcp-static-client", (sandbox.redirect_uri,)))
    running, verifier, url = start_mcp_server(sandbox.oauth, sandbox.oauth_http.url)
    sandbox.extra_servers.append(running)
    return verifier, url
