"""The console's web server: loopback only, safe by construction.

* It binds 127.0.0.1 (or ::1) and nothing else: `Console` refuses any other address.
* The URL it prints carries a one-time secret (`/?token=...`, as Jupyter does). The first request with it
  gets a session cookie (HttpOnly, SameSite=Strict, random) and a redirect that drops the token from the
  address bar; the token then no longer works.
* Every request must name this server in `Host` (`127.0.0.1:PORT` or `localhost:PORT`), so a page on
  another name that resolves to 127.0.0.1 (DNS rebinding) gets nothing.
* Every state-changing request (POST) needs the session cookie, a JSON body, the CSRF token of the page in
  `X-CSRF-Token`, and, when the browser sends one, an `Origin` of this server.
* The private key stays in this process: the page asks the server to sign and publish, and never sees it.
* Answers carry a strict Content-Security-Policy (same-origin scripts and styles only, no framing).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mcp_proxy.admin import ops
from mcp_proxy.admin.review import Review
from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.document import DocumentError

log = logging.getLogger(__name__)

STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
MAX_BODY = 1 << 20


class NotLoopback(PolicyError):
    """The console was asked to listen on an address other than loopback."""


def check_loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise NotLoopback(f"the admin console listens on 127.0.0.1 only (asked for {host!r}): it edits and signs "
                      "the organisation's policy, so it must not be reachable from the network")


@dataclass
class Publisher:
    """Where a published revision goes: the JSON source (unsigned), a file (signed when a key is given) and an
    HTTP PUT; `sign` turns the document's bytes into a compact JWS (the key stays inside it).

    `put_token` is sent as `Authorization: Bearer ...` with the PUT and nowhere else: not in a message, not in
    the log, not to another origin (the PUT follows no redirect, and says where one pointed). `token_ref` is
    what the administrator gave (`keyring:NAME`), for messages."""

    sign: Callable[[bytes], str] | None = None
    json_path: Path | None = None
    out_path: Path | None = None
    put_url: str | None = None
    put_token: str | None = field(default=None, repr=False)
    token_ref: str | None = None

    def destinations(self) -> list[str]:
        return [str(p) for p in (self.json_path, self.out_path) if p is not None] + \
            ([self.put_url] if self.put_url else [])

    def publish(self, doc: dict[str, Any]) -> list[str]:
        from mcp_proxy.fsutil import atomic_write

        payload = ops.render(doc)
        body = (self.sign(payload) + "\n").encode() if self.sign else payload
        where = []
        if self.json_path is not None:
            atomic_write(self.json_path, payload, mode=0o644)
            where.append(str(self.json_path))
        if self.out_path is not None:
            atomic_write(self.out_path, body, mode=0o644)
            where.append(str(self.out_path))
        if self.put_url:
            self._put(self.put_url, body)
            where.append(self.put_url)
        if not where:
            raise ops.OpError("nowhere to publish: start `admin` with --policy FILE, --out PATH or --publish-url URL")
        return where

    def _put(self, url: str, body: bytes) -> None:
        import httpx

        from mcp_proxy.httpsafe import OriginGuard, RedirectRefused

        headers = {"Content-Type": "application/jose" if self.sign else "application/json"}
        if self.put_token:
            headers["Authorization"] = f"Bearer {self.put_token}"
        guard = OriginGuard(url, what="the policy server", fix="give `admin --publish-url` the URL that takes the "
                                                                "PUT itself")
        try:
            with httpx.Client(timeout=20, follow_redirects=False, event_hooks=guard.hooks()) as client:
                reply = client.put(url, content=body, headers=headers)
        except RedirectRefused as exc:
            raise ops.OpError(f"publishing failed: {exc}") from None
        except httpx.HTTPError as exc:
            raise ops.OpError(f"publishing to {url} failed: {type(exc).__name__}") from None
        if reply.status_code in (401, 403):
            raise ops.OpError(f"publishing to {url} failed: HTTP {reply.status_code}, the policy server refused "
                              f"{self._credential()}")
        if not reply.is_success:
            raise ops.OpError(f"publishing to {url} failed: HTTP {reply.status_code}")

    def _credential(self) -> str:
        if self.token_ref is None and self.put_token is None:
            return ("an unauthenticated publish: start `admin` with --publish-token keyring:NAME (or env:NAME) "
                    "naming the token it expects")
        return (f"the token from {self.token_ref or '--publish-token'}: check that it is the one the server "
                "expects, and that it may publish (`mcp-access-proxy secret set NAME` replaces a keychain entry)")


class Console:
    """The console's state shared by its request handlers: the review, the secrets, the publisher."""

    def __init__(self, review: Review, publisher: Publisher, *, host: str = "127.0.0.1", port: int = 0,
                 default_days: float = 30.0) -> None:
        self.host = check_loopback(host)
        self.review = review
        self.review.warm()
        self.publisher = publisher
        self.default_days = default_days
        self.token: str | None = secrets.token_urlsafe(32)
        self.sessions: set[str] = set()
        self.csrf = secrets.token_urlsafe(32)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"console": self})
        self.httpd = ThreadingHTTPServer((self.host, port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        host_name = f"[{self.host}]" if ":" in self.host else self.host
        self.allowed_hosts = {f"{host_name}:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{h}" for h in self.allowed_hosts}
        self.cookie = f"mcp_admin_{self.port}"
        self.url = f"http://{host_name}:{self.port}/?token={self.token}"
        self.thread: threading.Thread | None = None

    def exchange(self, token: str) -> str | None:
        """A new session for the one-time token, once."""
        with self.lock:
            if self.token is None or not secrets.compare_digest(token.encode(), self.token.encode()):
                return None
            self.token = None
            session = secrets.token_urlsafe(32)
            self.sessions.add(session)
            return session

    def start(self) -> Console:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="admin-console", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def state(self) -> dict[str, Any]:
        """What the page shows: the review's rows and summary, with where a publish goes."""
        started = time.perf_counter()
        state = self.review.state()
        state["summary"]["buildMs"] = round((time.perf_counter() - started) * 1000, 1)
        state["summary"]["destinations"] = self.publisher.destinations()
        state["summary"]["signing"] = self.publisher.sign is not None
        state["summary"]["defaultDays"] = self.default_days
        return state

    def publish(self, expires_in_days: float | None) -> dict[str, Any]:
        doc, revision = self.review.finish(time.time(), expires_in_days)
        where = self.publisher.publish(doc)
        self.review.published_as(doc, where)
        log.info("published policy revision %s to %s", revision, ", ".join(where))
        return {"revision": revision, "expires_at": doc["expires_at"], "to": where,
                "signed": self.publisher.sign is not None}


def _page(console: Console) -> bytes:
    html = resources.files("mcp_proxy.admin").joinpath("static/index.html").read_text(encoding="utf-8")
    return html.replace("{{CSRF}}", console.csrf).encode()


class _Handler(BaseHTTPRequestHandler):
    console: Console
    server_version = "mcp-access-proxy-admin"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("admin console: " + format, *args)

    # -- answers -----------------------------------------------------------------
    def _send(self, status: int, body: bytes, media: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", CSP)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(),
                   "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- checks ------------------------------------------------------------------
    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.console.allowed_hosts:
            return True
        self._error(HTTPStatus.FORBIDDEN, "wrong Host header: open the console at the URL `admin` printed")
        return False

    def _session(self) -> bool:
        from http.cookies import CookieError, SimpleCookie

        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except CookieError:
            return False
        morsel = cookie.get(self.console.cookie)
        return morsel is not None and morsel.value in self.console.sessions

    def _state_change_ok(self) -> bool:
        if not self._session():
            self._error(HTTPStatus.UNAUTHORIZED, "no session: open the console at the URL `admin` printed")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.console.origins:
            self._error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
            return False
        token = self.headers.get("X-CSRF-Token", "")
        if not secrets.compare_digest(token.encode(), self.console.csrf.encode()):
            self._error(HTTPStatus.FORBIDDEN, "missing or wrong CSRF token: reload the console")
            return False
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON")
            return False
        return True

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request too large")
        value = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(value, dict):
            raise ValueError("send a JSON object")
        return value

    # -- methods -----------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        if url.path == "/" and "token" in parse_qs(url.query):
            session = self.console.exchange(parse_qs(url.query)["token"][0])
            if session is None:
                self._send(HTTPStatus.FORBIDDEN, b"This link was already used or is wrong. Restart "
                           b"`mcp-access-proxy admin` for a new one.\n", "text/plain; charset=utf-8")
                return
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {
                "Location": "/",
                "Set-Cookie": f"{self.console.cookie}={session}; HttpOnly; SameSite=Strict; Path=/"})
            return
        if not self._session():
            self._send(HTTPStatus.UNAUTHORIZED, b"Open the console at the URL `mcp-access-proxy admin` printed.\n",
                       "text/plain; charset=utf-8")
            return
        if url.path == "/":
            self._send(HTTPStatus.OK, _page(self.console), "text/html; charset=utf-8")
        elif url.path.startswith("/static/") and url.path[8:] in STATIC:
            name = url.path[8:]
            data = resources.files("mcp_proxy.admin").joinpath(f"static/{name}").read_bytes()
            self._send(HTTPStatus.OK, data, STATIC[name])
        elif url.path == "/api/state":
            self._json(HTTPStatus.OK, self.console.state())
        elif url.path == "/api/tool":
            key = (parse_qs(url.query).get("key") or [""])[0]
            self._json(HTTPStatus.OK, self.console.review.detail(key))
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET  # noqa: N815 - the base class's names

    def do_POST(self) -> None:
        if not self._host_ok() or not self._state_change_ok():
            return
        path = urlsplit(self.path).path
        try:
            body = self._body()
            if path == "/api/ops":
                self.console.review.apply(body)
                self._json(HTTPStatus.OK, self.console.state())
            elif path == "/api/explain":
                self._json(HTTPStatus.OK, self.console.review.explain(str(body.get("user") or "").strip()))
            elif path == "/api/publish":
                days = body.get("expires_in_days")
                self._json(HTTPStatus.OK, self.console.publish(float(days) if days not in (None, "") else None))
            else:
                self._error(HTTPStatus.NOT_FOUND, "not found")
        except DocumentError as exc:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "the result would not be a valid policy",
                                                         "problems": exc.problems})
        except (ops.OpError, ValueError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except OSError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"could not write: {exc.strerror or exc}")

    def _refuse(self) -> None:
        if self._host_ok():
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815 - the base class's names
