"""For the tests of a sign-in changing under a running `serve` (`logout` or `login` as someone else in another
process): the OAuth sandbox with a PagerDuty emulator that notes every bearer token it is shown, who owns each
token, and the records that end a tool call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp_proxy.sandbox.asgi_thread import free_port, serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthClient, OAuthServer, create_app
from mcp_proxy.sandbox.pagerduty import create_app as pagerduty_app
from tests._support.auth import CLIENT_ID, SCOPED_ID, SCOPED_SECRET, Sandbox

ALICE, BOB = "PALICE1", "PBOB002"  # the emulator's users alice@example.com and bob@example.com


class BearerLog:
    """Every bearer token the vendor emulator was shown, in order, and the user each was issued to."""

    def __init__(self, server: OAuthServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self.tokens: list[str] = []
        self.owner: dict[str, str] = {}  # token -> user id, noted at issue time (revoked tokens included)

    def validate(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            self.tokens.append(token)
        with self._server.lock:
            grant = self._server.access.get(token)
            if grant is not None:
                self.owner[token] = grant.user_id
        return self._server.bearer_validator(token)

    def issued_to(self, user_id: str) -> set[str]:
        return issued_to(self._server, user_id)

    def mark(self) -> int:
        with self._lock:
            return len(self.tokens)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.tokens[mark:]


def issued_to(server: OAuthServer, user_id: str) -> set[str]:
    """The access tokens `server` issued to `user_id` that it still knows."""
    with server.lock:
        return {t for t, g in server.access.items() if g.user_id == user_id}


def calls_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that end a tool call: `mcp.tool.call` and `mcp.tool.denied`."""
    return [r for r in records if r["event_name"] in ("mcp.tool.call", "mcp.tool.denied")]


@contextmanager
def watched_sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, BearerLog]]:
    """The sandbox of tests/auth/conftest.py, its PagerDuty emulator noting the bearer tokens it sees."""
    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    server = OAuthServer()
    server.add_client(OAuthClient(CLIENT_ID, (redirect,)))
    server.add_client(OAuthClient(SCOPED_ID, (redirect,), secret=SCOPED_SECRET, scoped=True))
    bearers = BearerLog(server)
    oauth_http = serve_in_thread(create_app(server))
    pd_http = serve_in_thread(pagerduty_app(bearer_validator=bearers.validate))
    box = Sandbox(server, oauth_http, pd_http, redirect, port, tmp_path)
    try:
        yield box, bearers
    finally:
        for running in (oauth_http, pd_http, *box.extra_servers):
            running.stop()
