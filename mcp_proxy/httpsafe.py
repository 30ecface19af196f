"""Where the proxy's own HTTP clients may send a request: one rule for redirects and origins.

Each outbound client the proxy builds (the policy source, the audit shipper, the OAuth token, revocation
and identity endpoints, the REST connectors) talks to one configured URL and sends it credentials: an
Authorization header, configured headers, an API-key header, a cookie, or secrets in the body. httpx,
following a redirect, drops only `Authorization` on a cross-origin hop; it keeps every other header and
follows https -> http. So, for every such client:

- a redirect from https to anything else is refused: a downgrade exposes the request to the network;
- a redirect to another origin (scheme, host, port) is refused, so no credential reaches a host nobody
  configured and no answer (a policy document!) comes from one;
- a redirect within the configured origin is followed only by a client that opts in (`follow=True`, the
  policy source); the others refuse every redirect and say where it pointed;
- a request to another origin than the configured one is refused before it is sent (a vendor's absolute
  link, a redirect that slipped through).

Refusing beats stripping credentials: these are APIs at one configured address, a redirect elsewhere is a
misconfiguration or an attack, and a document or answer from elsewhere must not be used either.

Messages show origins only (never a path, query or user info, which may carry tokens) and no header.
This module imports nothing of the proxy but `errors`, and not httpx (the objects are duck-typed), so every
part may use it and start-up does not pay for httpx.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from mcp_proxy.errors import ProxyError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int | None  # None when the URL's port cannot be read: then it matches nothing

    def __str__(self) -> str:
        if not self.scheme or not self.host:
            return "(an unreadable URL)"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is None or self.port == DEFAULT_PORTS.get(self.scheme):
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"

    def same(self, other: Origin) -> bool:
        return self.port is not None and self == other


def origin_of(url: object) -> Origin:
    """The origin of `url` (a string or an httpx.URL): scheme, lower-case host, port (the default filled in)."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return Origin("", "", None)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range or not a number
        port = None
    return Origin(scheme, (parts.hostname or "").lower(), port)


def _why(a: Origin, b: Origin) -> str | None:
    if a.scheme == "https" and b.scheme != "https":
        return f"a downgrade from https to {'plain http' if b.scheme == 'http' else b.scheme or 'an unreadable URL'}"
    if not a.same(b):
        return "another origin: nothing was sent there"
    return None


def redirect_problem(source: object, target: object) -> str | None:
    """Why a redirect from `source` to `target` must not be followed, naming both origins; None when the target
    is on the same origin."""
    a, b = origin_of(source), origin_of(target)
    why = _why(a, b)
    return None if why is None else f"{why} (from {a} to {b})"


class RedirectRefused(ProxyError):
    """A request or redirect that would leave the configured origin; each client wraps it in its own error."""

    error_type = "redirect_refused"

    def __init__(self, message: str, source: Origin, target: Origin) -> None:
        super().__init__(message)
        self.source = source
        self.target = target


class _Request(Protocol):
    @property
    def url(self) -> Any: ...


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def has_redirect_location(self) -> bool: ...
    @property
    def headers(self) -> Any: ...
    @property
    def request(self) -> Any: ...


class OriginGuard:
    """The checks of one client bound to one configured origin, as httpx event hooks.

    `what` names the server in messages ("the policy server"); `fix` tells the user what to change
    ("set [policy] source to ..."). Hooks run for every hop of a redirect chain, before it is followed.
    """

    def __init__(self, url: str, *, what: str, fix: str, follow: bool = False) -> None:
        self.origin = origin_of(url)
        self.what = what
        self.fix = fix
        self.follow = follow

    def retarget(self, url: str) -> None:
        """Bind the guard to `url`'s origin: for the proxy's own decision to move (never for a server's)."""
        self.origin = origin_of(url)

    def check_request(self, request: _Request) -> None:
        target = origin_of(request.url)
        if not self.origin.same(target):
            raise RedirectRefused(f"the proxy refused to send a request for {self.what} to {target}: only the "
                                  f"configured origin {self.origin} gets its credentials. {self.fix}",
                                  self.origin, target)

    def check_response(self, response: _Response) -> None:
        if not response.has_redirect_location:
            return
        source = origin_of(response.request.url)
        try:
            target = origin_of(urljoin(str(response.request.url), str(response.headers.get("Location", ""))))
        except ValueError:  # a Location nobody can read leads nowhere we know: refused like another origin
            target = Origin("", "", None)
        why = _why(source, target)
        if why is None and self.follow:
            return
        raise RedirectRefused(f"{self.what} at {source} answered HTTP {response.status_code} with a redirect to "
                              f"{target}, which the proxy refused ({why or 'it follows no redirect here'}). "
                              f"{self.fix}", source, target)

    def hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        """`event_hooks` for a synchronous httpx.Client."""
        return {"request": [self.check_request], "response": [self.check_response]}

    def async_hooks(self) -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
        """`event_hooks` for an httpx.AsyncClient."""
        async def request(request: Any) -> None:
            self.check_request(request)

        async def response(response: Any) -> None:
            self.check_response(response)

        return {"request": [request], "response": [response]}
