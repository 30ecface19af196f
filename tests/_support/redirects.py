"""Small real HTTP servers on 127.0.0.1 for the redirect and origin tests: each one is an origin of its own
(another port), answers its routes with a body or a redirect, and records every request it receives with its
headers, so a test can say exactly which credential reached which origin."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Route:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Origin:
    """One local HTTP server: `url` is its origin, `seen` every request it got."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="redirect-origin")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> None:
        self.routes[path] = Route(status, body, {"Content-Type": "application/json", **headers})

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = Route(status, b"", {"Location": to})

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def header_values(self) -> list[str]:
        """Every header value this server was sent, in every request."""
        return [value for seen in self.requests() for value in seen.headers.values()]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with origin._lock:
                    origin.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                            body))
                route = origin.routes.get(path, Route(404, b'{"message": "no such route"}'))
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

        return Handler

    def start(self) -> Origin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def origins(count: int = 2) -> Iterator[list[Origin]]:
    """`count` running servers, each its own origin (same host, other ports)."""
    started = [Origin().start() for _ in range(count)]
    try:
        yield started
    finally:
        for origin in started:
            origin.stop()
