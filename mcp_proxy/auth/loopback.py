"""The one-shot listener at the registered redirect URI (RFC 8252 loopback redirect).

It binds exactly the host and port of `redirect_uri` (vendors such as PagerDuty match redirect URIs
exactly, so no random port), answers only its path, checks `state`, hands the code over at once,
and shows the browser a short page that says whether sign-in worked and, if not, why. Nothing here
logs the request line: it carries the authorization code.

`localhost` binds both 127.0.0.1 and ::1, since a browser may send it to either: if another program
holds the port on one of them, the sign-in stops with the port and address named, because that
program would otherwise receive the authorization code whenever the browser picks its address. Only
a machine without IPv6 at all (binding ::1 fails with EADDRNOTAVAIL or EAFNOSUPPORT) is served on
127.0.0.1 alone. A literal `127.0.0.1` or `[::1]` redirect binds just that address.

Any local web page can point a browser at the callback, so nothing in a request counts before its
`state` matches: a request without it, or with another, gets an error page and the listener goes on
waiting for the genuine redirect. The vendor's (or the page's) free text never reaches a message:
an `error` becomes the proxy's own wording. Each connection gets its own thread and a short read
timeout, so a socket a browser opens ahead and never uses cannot hold up the redirect or `close()`.
"""

from __future__ import annotations

import errno
import html
import logging
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from mcp_proxy.auth.errors import SignInError, oauth_error_code

log = logging.getLogger(__name__)

_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), 10048}
_DENIED = {errno.EACCES, getattr(errno, "WSAEACCES", -1), 10013}
# The address family is missing on this machine (IPv6 switched off, or no ::1 on the loopback interface):
# nobody else can be listening there, and no browser can reach it. Any other failure is a real one.
_NO_FAMILY = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, 10049, 10047}  # 10049/10047: the Windows codes

READ_TIMEOUT = 5.0  # a connection that sends no request within this is dropped
CLOSE_WAIT = 5.0  # `close()` waits at most this long for the listening threads to stop


@dataclass
class Outcome:
    ok: bool
    message: str  # for the user; says why not, and what to do
    code: str | None = None
    iss: str | None = None

    def __repr__(self) -> str:
        return f"Outcome(ok={self.ok}, message={self.message!r})"


# Called with (code, iss) in the listener thread; returns the success text for the page or raises SignInError.
CodeHandler = Callable[[str, str | None], str]


def port_busy_message(port: int, where: str, redirect_uri: str, denied: bool = False,
                      address: str | None = None) -> str:
    alt = redirect_uri.replace(f":{port}", f":{port + 1}", 1)
    on = f" on {address}" if address else ""
    what = (f"port {port} is reserved or not permitted{on} on this machine (on Windows, Hyper-V and WSL reserve port "
            f"ranges: `netsh interface ipv4 show excludedportrange protocol=tcp` lists them)" if denied else
            f"port {port} is already in use{on} by another program (`lsof -i :{port}` on macOS/Linux, "
            f"`netstat -ano | findstr :{port}` on Windows shows which)")
    if address and urlsplit(redirect_uri).hostname == "localhost":
        what += ("; the browser may send `localhost` to 127.0.0.1 or to ::1, so the proxy must listen on both, "
                 "or that program could receive your sign-in")
    return (f"the sign-in callback cannot listen: {what}. Close that program and try again, or register another "
            f"redirect URI such as {alt} on the OAuth app and set {where} = \"{alt}\"")


def error_message(error: object, vendor: str, upstream_where: str) -> str:
    """The proxy's own words for an OAuth `error` the browser came back with (RFC 6749 §4.1.2.1, OpenID
    Connect §3.1.2.6). `upstream_where` is the config table, e.g. `upstreams.pd`."""
    code = oauth_error_code(error)
    if code == "access_denied":
        return (f"you declined the access {vendor} asked you to grant, so the proxy cannot act as you. To use it, "
                "sign in again and choose Allow")
    if code == "invalid_scope":
        return (f"{vendor} refused the scopes the proxy asked for (invalid_scope); check {upstream_where}.scopes "
                "against what the OAuth app may grant, then sign in again")
    if code in ("unauthorized_client", "invalid_client"):
        return (f"{vendor} does not let this OAuth app sign in this way ({code}); check {upstream_where}.client_id "
                "and the app's settings, then sign in again")
    if code in ("invalid_request", "unsupported_response_type"):
        return (f"{vendor} refused the sign-in request ({code}); check {upstream_where}.client_id, redirect_uri "
                "and authorize_url, then sign in again")
    if code in ("server_error", "temporarily_unavailable"):
        return f"{vendor} could not complete the sign-in just now ({code}); sign in again in a moment"
    if code in ("login_required", "consent_required", "interaction_required", "account_selection_required"):
        return f"{vendor} needs you to sign in and approve the app in the browser ({code}); sign in again"
    if code is not None:
        return f"{vendor} refused the sign-in (error code {code}); sign in again"
    return f"{vendor} refused the sign-in (with an error code the proxy does not recognise); sign in again"


def _same(given: str | None, expected: str) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters, and a query can carry any.
    return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def page(title: str, message: str, ok: bool) -> bytes:
    colour = "#1a7f37" if ok else "#cf222e"
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
            f"<body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:4em auto\">"
            f"<h1 style=\"color:{colour}\">{html.escape(title)}</h1><p>{html.escape(message)}</p>"
            f"<p style=\"color:#57606a\">mcp-access-proxy</p></body></html>").encode()


class CallbackListener:
    def __init__(self, redirect_uri: str, state: str, on_code: CodeHandler | None, *, where: str,
                 vendor: str = "the vendor") -> None:
        parts = urlsplit(redirect_uri)
        self.redirect_uri = redirect_uri
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.state = state
        self.on_code = on_code
        self.where = where
        self.vendor = vendor
        self.done = threading.Event()
        self.outcome: Outcome | None = None
        self.foreign = 0  # responses refused for a missing or wrong state
        self._lock = threading.Lock()
        self._servers: list[tuple[HTTPServer, threading.Thread]] = []

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve in background threads. Raises SignInError (naming the port and address) when it cannot
        bind. Every address is bound before any is served, so a failure leaves nothing listening."""
        bound: list[HTTPServer] = []
        try:
            for family, address in _addresses(self.host):
                try:
                    bound.append(_make_server(family, address, self.port, self))
                except OSError as exc:
                    number = getattr(exc, "winerror", None) or exc.errno
                    if family == socket.AF_INET6 and self.host == "localhost" and number in _NO_FAMILY and bound:
                        log.debug("sign-in callback: no IPv6 on this machine (binding ::1 failed: %s); listening "
                                  "on 127.0.0.1:%d only", exc.strerror or type(exc).__name__, self.port)
                        continue
                    raise SignInError(self._cannot_listen(address, number, exc)) from None
        except BaseException:
            for server in bound:
                server.server_close()
            raise
        for server in bound:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                      name=f"oauth-callback-{self.port}")
            self._servers.append((server, thread))
            thread.start()

    def _cannot_listen(self, address: str, number: int | None, exc: OSError) -> str:
        if number in _IN_USE or number in _DENIED:
            return port_busy_message(self.port, self.where, self.redirect_uri, denied=number in _DENIED,
                                     address=address)
        shown = f"[{address}]" if ":" in address else address
        return (f"the sign-in callback cannot listen on {shown}:{self.port} ({exc.strerror or type(exc).__name__}); "
                f"check {self.where}")

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Stop listening; the port is free when this returns. Waits at most `wait` seconds (the listening
        loops stop within a poll interval, since requests run in threads of their own); past that the
        shutdown finishes in the background and the port is freed when it does."""
        servers, self._servers = self._servers, []
        stoppers = [threading.Thread(target=_shutdown, args=(server,), daemon=True,
                                     name=f"oauth-callback-{self.port}-close") for server, _thread in servers]
        for stopper in stoppers:
            stopper.start()
        deadline = time.monotonic() + wait
        for stopper in stoppers:
            stopper.join(max(0.0, deadline - time.monotonic()))
        if any(stopper.is_alive() for stopper in stoppers):
            log.warning("the sign-in callback on port %d did not stop within %.0f s; it stops in the background",
                        self.port, wait)

    def foreign_note(self) -> str:
        """For a sign-in that timed out: what was refused meanwhile, if anything."""
        if not self.foreign:
            return ""
        return ("; meanwhile the browser brought back a sign-in response that did not belong to it (state "
                "mismatch), probably from an older sign-in tab, and it was refused: use the tab of the newest sign-in")

    def fail(self, message: str) -> None:
        """End the wait from outside (time limit, cancellation)."""
        self._finish(Outcome(False, message))

    # -- the request -------------------------------------------------------------
    def _finish(self, outcome: Outcome) -> bool:
        with self._lock:
            if self.outcome is not None:
                return False
            self.outcome = outcome
        self.done.set()
        return True

    def handle(self, target: str) -> tuple[int, bytes]:
        parts = urlsplit(target)
        if parts.path != self.path:
            return 404, page("Not found", "This address only receives the sign-in redirect.", False)
        query = parse_qs(parts.query)
        one = {k: v[0] for k, v in query.items() if v}
        # Nothing counts before the state matches: not an error, not a code. Any local web page can send a
        # request here (an <img> pointing at the callback), and an old tab can come back late; neither may end
        # or steer the sign-in that is waiting.
        if not _same(one.get("state"), self.state):
            self.foreign += 1  # not under _lock: that is held during a code exchange; only "any?" matters
            return 200, page("Sign-in response refused", "This response does not belong to the sign-in the proxy "
                             "is waiting for (state mismatch), so it was ignored; it may come from an older "
                             "sign-in tab. The sign-in that is waiting goes on: finish it in the tab the proxy "
                             "opened last, or start a new sign-in.", False)
        if self.done.is_set() and self.outcome is not None:
            return 200, page("Sign-in already finished", "This sign-in has already finished; you can close this "
                             "tab. To sign in again, start a new sign-in.", self.outcome.ok)
        if "error" in one:
            message = error_message(one["error"], self.vendor, self.where.rsplit(".", 1)[0])
            self._finish(Outcome(False, message))
            return 200, page("Sign-in did not complete", message[0].upper() + message[1:] + ".", False)
        code = one.get("code")
        if not code:
            message = f"{self.vendor} sent the browser back without an authorization code; start the sign-in again"
            self._finish(Outcome(False, message))
            return 200, page("Sign-in did not complete", message[0].upper() + message[1:] + ".", False)
        if self.on_code is None:
            self._finish(Outcome(True, "code received", code=code, iss=one.get("iss")))
            return 200, page("Signed in", "The proxy received your sign-in and finishes it now. You can close this "
                             "tab and return to your terminal or AI client.", True)
        with self._lock:  # one exchange only, even if the browser retries the redirect
            if self.outcome is not None:
                return 200, page("Sign-in already finished", "You can close this tab.", self.outcome.ok)
            try:
                text = self.on_code(code, one.get("iss"))
                outcome = Outcome(True, text)
            except SignInError as exc:
                outcome = Outcome(False, str(exc))
            except Exception as exc:  # noqa: BLE001 - the page must answer; the type only, never the text
                log.error("sign-in failed after the redirect (%s)", type(exc).__name__)
                outcome = Outcome(False, f"the proxy could not finish the sign-in ({type(exc).__name__}); try again")
            self.outcome = outcome
        self.done.set()
        if outcome.ok:
            return 200, page("Signed in", outcome.message + " You can close this tab and return to your AI client "
                             "or terminal.", True)
        return 200, page("Sign-in did not complete", outcome.message[0].upper() + outcome.message[1:] + ".", False)


class _Handler(BaseHTTPRequestHandler):
    server_version = "mcp-access-proxy"
    sys_version = ""
    timeout = READ_TIMEOUT  # per socket operation: an idle or trickling connection is dropped

    def do_GET(self) -> None:  # the name http.server calls
        listener: CallbackListener = self.server.listener  # type: ignore[attr-defined]
        status, body = listener.handle(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - never log: the URL holds the code
        return


def _addresses(host: str) -> list[tuple[int, str]]:
    """Where a redirect URI's host is served: `localhost` on both loopback families, a literal on itself."""
    if host == "localhost":
        return [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host.strip("[]"))]


def _make_server(family: int, address: str, port: int, listener: CallbackListener) -> HTTPServer:
    class Server(socketserver.ThreadingMixIn, HTTPServer):
        address_family = family
        # A thread per connection: one that sends nothing must not hold up the redirect or the shutdown.
        # Daemon threads, not joined on close: each ends by itself within READ_TIMEOUT of going quiet.
        daemon_threads = True
        block_on_close = False
        # POSIX: rebinding right after a previous sign-in must not fail on TIME_WAIT. Windows: SO_REUSEADDR
        # would let two processes bind the same port, so it stays off there.
        allow_reuse_address = sys.platform != "win32"

        def server_bind(self) -> None:
            if family == socket.AF_INET6:
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sys.platform == "win32" and hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # pragma: no cover
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            # TCPServer's bind, not HTTPServer's: that one does a reverse DNS lookup (getfqdn), which can stall.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = address, port

    server = Server((address, port), _Handler)
    server.listener = listener  # type: ignore[attr-defined]
    return server


def _shutdown(server: HTTPServer) -> None:
    server.shutdown()
    server.server_close()
