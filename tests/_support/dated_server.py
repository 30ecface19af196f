"""A local HTTP server whose `Date` header the test sets, for the trusted-time tests: it serves one policy
document with an ETag (and 304 to a matching If-None-Match) on GET, answers every POST with 200 (a
collector), and records the If-None-Match of every GET."""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class DatedServer:
    """`date` (POSIX seconds) is what its `Date` header says; None sends the real time."""

    def __init__(self, document: bytes = b"{}", date: float | None = None) -> None:
        self.document = document
        self.date = date
        self.if_none_match: list[str | None] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="dated-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(server.date if server.date is not None else timestamp, usegmt=True)

            def _send(self, status: int, body: bytes, **headers: str) -> None:
                self.send_response(status)  # adds Date from date_time_string
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                inm = self.headers.get("If-None-Match")
                server.if_none_match.append(inm)
                tag = etag_of(server.document)
                if inm == tag:
                    self._send(304, b"", ETag=tag)
                else:
                    self._send(200, server.document, ETag=tag, **{"Content-Type": "application/jose"})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(200, b"{}", **{"Content-Type": "application/json"})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

        return Handler

    def __enter__(self) -> DatedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
