"""Fetching the policy document once, from an HTTPS URL or a file.

URLs use a conditional GET (If-None-Match with the last ETag; 304 means
unchanged). Files get an ETag of their own: the SHA-256 of their content.
Errors never contain header values or the URL's query string.

Redirects are followed only within the configured origin (mcp_proxy/httpsafe.py): the configured headers
are credentials, and httpx would carry all but Authorization to another host and follow https -> http;
and a document that came from anywhere else must not be activated, signed or not.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mcp_proxy.errors import PolicyError
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused, origin_of

if TYPE_CHECKING:
    from mcp_proxy.config import PolicyConfig, SecretStore
    from mcp_proxy.paths import Paths

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    body: bytes | None  # None when not modified
    etag: str | None
    date: str | None = None  # the server's Date header: evidence of the real time (mcp_proxy/trusted_time.py)

    @property
    def not_modified(self) -> bool:
        return self.body is None


class FetchError(PolicyError):
    """The document could not be fetched; the message says why and what to do."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def safe_url(url: str) -> str:
    """The URL without credentials or query string, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def file_path(source: str, paths: Paths) -> Path:
    """A file source; relative paths are relative to the config directory (clients start us in any cwd)."""
    text = source[len("file://"):] if source.startswith("file://") else source
    path = Path(text).expanduser()
    return path if path.is_absolute() else paths.config_dir / path


def describe(source: str, paths: Paths) -> str:
    return safe_url(source) if is_url(source) else str(file_path(source, paths))


def content_etag(body: bytes) -> str:
    return '"sha256-' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None  # an HTTP date: fall back to our own back-off


def _headers(config: PolicyConfig, store: SecretStore | None) -> dict[str, str]:
    from mcp_proxy.config import SecretError, SecretRef, SecretStore

    headers: dict[str, str] = {}
    for name, value in config.headers.items():
        if isinstance(value, SecretRef):
            try:
                headers[name] = value.resolve(store or SecretStore())
            except SecretError as exc:
                raise FetchError(str(exc)) from None
        else:
            headers[name] = value
    return headers


async def fetch_file(source: str, paths: Paths, etag: str | None) -> Fetched:
    import anyio

    path = file_path(source, paths)
    try:
        body = await anyio.Path(path).read_bytes()
    except FileNotFoundError:
        raise FetchError(f"the policy file {path} does not exist; fix [policy] source or put the file there") from None
    except OSError as exc:
        raise FetchError(f"the policy file {path} cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(body) > MAX_BYTES:
        raise FetchError(f"the policy file {path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; "
                         "is it the right file?")
    tag = content_etag(body)
    return Fetched(None, tag) if tag == etag else Fetched(body, tag)


async def fetch_url(config: PolicyConfig, etag: str | None, store: SecretStore | None) -> Fetched:
    import anyio
    import httpx

    where = safe_url(config.source)
    guard = OriginGuard(config.source, what="the policy server", follow=True,
                        fix="Set [policy] source to the document's final URL (redirects are followed only "
                            "within the configured origin, so [policy] headers go nowhere else).")
    headers = {"Accept": "application/jose, application/json", **_headers(config, store)}
    if etag:
        headers["If-None-Match"] = etag
    try:
        with anyio.fail_after(config.timeout):  # a whole-request deadline: a trickling server times out too
            async with (
                httpx.AsyncClient(timeout=config.timeout, follow_redirects=True, max_redirects=5,
                                  event_hooks=guard.async_hooks()) as client,
                client.stream("GET", config.source, headers=headers) as response,
            ):
                if not guard.origin.same(origin_of(response.url)):  # the hooks refuse this; never rely on one check
                    raise FetchError(f"the policy answer came from {origin_of(response.url)}, not from the "
                                     f"configured origin {guard.origin}; it is not used. {guard.fix}")
                if response.status_code == 304:
                    return Fetched(None, etag, response.headers.get("Date"))
                if response.status_code != 200:
                    raise _status_error(where, response.status_code, response.headers.get("Retry-After"))
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise FetchError(f"the policy at {where} is larger than "
                                         f"{MAX_BYTES // (1024 * 1024)} MiB; is the URL right?")
                    chunks.append(chunk)
                return Fetched(b"".join(chunks), response.headers.get("ETag"), response.headers.get("Date"))
    except FetchError:
        raise
    except RedirectRefused as exc:
        raise FetchError(f"{exc} The last good policy stays active.") from None
    except (TimeoutError, httpx.TimeoutException):
        raise FetchError(f"the policy server {where} did not answer within {config.timeout:g} s "
                         "([policy] timeout); the last good policy stays active") from None
    except httpx.ConnectError:
        raise FetchError(f"cannot connect to the policy server {where} (down, or no network); "
                         "the last good policy stays active") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"fetching the policy from {where} failed ({type(exc).__name__}); "
                         "the last good policy stays active") from None


def _status_error(where: str, status: int, retry_after: str | None) -> FetchError:
    if status in (401, 403):
        return FetchError(f"the policy server {where} refused the request (HTTP {status}); check the credentials "
                          "in [policy] headers")
    if status == 404:
        return FetchError(f"no policy at {where} (HTTP 404); check [policy] source")
    return FetchError(f"the policy server {where} answered HTTP {status}; the last good policy stays active",
                      retry_after=_retry_after(retry_after) if status in (429, 503) else None)


async def fetch(config: PolicyConfig, paths: Paths, etag: str | None, store: SecretStore | None) -> Fetched:
    if is_url(config.source):
        return await fetch_url(config, etag, store)
    return await fetch_file(config.source, paths, etag)
