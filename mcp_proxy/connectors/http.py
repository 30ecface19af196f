"""HTTP plumbing shared by the REST connectors: one pooled client per upstream,
timeouts, client-side pacing, and retries that never repeat a write that the
vendor may already have carried out.

Vendor specifics (auth header, which statuses mean "too fast", how the server
says how long to wait, the error body) are passed in by each connector.

Requests go to `base_url`'s origin only and no redirect is followed
(mcp_proxy/httpsafe.py): every request carries the vendor's key or the
user's token (often in a header such as `GenieKey` that httpx would carry
across origins), a vendor's REST API does not redirect its calls, and a
write must never be re-sent somewhere else.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import ConnectorError, Credential, CredentialProvider
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused
from mcp_proxy.tracing import outbound_meta

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
TRANSIENT_STATUSES = (502, 503, 504)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def regional_base_url(config: UpstreamConfig, vendor: str, us: str, eu: str) -> str:
    """`base_url` when configured, else the documented API host of the configured region (default us)."""
    if config.base_url:
        return config.base_url.rstrip("/")
    region = (config.region or "us").lower()
    if region == "eu":
        return eu
    if region == "us":
        return us
    raise ValueError(f"upstreams.{config.key}.region must be 'us' or 'eu' for {vendor}, not {config.region!r}")


def wait_from_headers(*names: str) -> Callable[[httpx.Response], float | None]:
    """A `VendorProfile.wait_hint` reading seconds from the first of `names` that holds a number."""
    def wait_hint(response: httpx.Response) -> float | None:
        for name in names:
            value = response.headers.get(name)
            if value:
                try:
                    return max(0.0, float(value))
                except ValueError:
                    continue
        return None
    return wait_hint


def api_key_auth(upstream: str, vendor: str, scheme: str, fix: str) -> Callable[[Credential], dict[str, str]]:
    """A `VendorProfile.auth_headers` for a vendor that takes only API keys: `Authorization: <scheme> <key>`.
    Any other credential is refused with `fix`, the vendor's advice on storing a key."""
    def auth_headers(credential: Credential) -> dict[str, str]:
        if credential.scheme != "api_key":
            raise ConnectorError(f"upstreams.{upstream}: {vendor} needs an API key (auth = \"api_key\"); {fix}",
                                 "no_credentials")
        return {"Authorization": f"{scheme} {credential.value.strip()}"}
    return auth_headers


@dataclass
class VendorProfile:
    """What the shared plumbing needs to know about one vendor."""

    name: str  # "Statuspage", shown in messages
    auth_headers: Callable[[Credential], dict[str, str]]
    error_from_response: Callable[[httpx.Response], ConnectorError]
    rate_limit_statuses: tuple[int, ...] = (429,)
    # Seconds the server asks us to wait, from its headers; None when it says nothing.
    wait_hint: Callable[[httpx.Response], float | None] = lambda r: parse_retry_after(r.headers.get("retry-after"))
    default_headers: dict[str, str] = field(default_factory=dict)


class RestClient:
    """A pooled, paced, retrying JSON client for one upstream."""

    def __init__(
        self,
        profile: VendorProfile,
        base_url: str,
        credentials: CredentialProvider,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        min_interval: float = 0.0,
        max_wait: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.profile = profile
        self._guard = OriginGuard(base_url, what=profile.name,
                                  fix="Set base_url of the upstream to the API's final address (or remove it to use "
                                      "the vendor's documented one).")
        self.base_url = base_url
        self._credentials = credentials
        self._max_retries = max_retries
        self._min_interval = min_interval
        self._max_wait = max_wait
        self._pace_lock = anyio.Lock()
        self._next_slot = 0.0
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": "mcp-access-proxy", **profile.default_headers},
            transport=transport,
            follow_redirects=False,
            event_hooks=_with_trace_context(self._guard.async_hooks()),
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        """The API root; its origin is the only one the client's credentials go to. A connector may move it on
        purpose (PagerDuty follows the region of the sign-in); a vendor's answer never does."""
        self._base_url = value.rstrip("/")
        self._guard.retarget(self._base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _pace(self) -> None:
        if self._min_interval <= 0:
            return
        async with self._pace_lock:
            now = time.monotonic()
            wait = self._next_slot - now
            self._next_slot = max(now, self._next_slot) + self._min_interval
        if wait > 0:
            await anyio.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return min(8.0, 0.25 * (2**attempt)) * (0.5 + random.random() / 2)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        retry_writes: bool = False,
    ) -> httpx.Response:
        """Send one request and return a 2xx response, or raise `ConnectorError`.

        Reads are retried on rate limits, 502/503/504 and connection failures.
        Writes are retried only when the request surely did not run: a rate
        limit rejection or a connection that was never established; pass
        `retry_writes=True` for writes that are idempotent by construction.
        """
        method = method.upper()
        safe = method in SAFE_METHODS or retry_writes
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        attempt = 0
        while True:
            credential = await self._credentials()
            await self._pace()
            try:
                response = await self._client.request(
                    method, url, params=params, json=json,
                    headers={**self.profile.auth_headers(credential), **(headers or {})},
                )
            except httpx.ConnectError:
                if attempt < self._max_retries:
                    await anyio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise ConnectorError(
                    f"{self.profile.name} could not be reached at {self.base_url}; check your network "
                    "(and base_url in the config), then try again", "connect_error",
                ) from None
            except httpx.TimeoutException:
                if safe and attempt < self._max_retries:
                    attempt += 1
                    continue
                hint = "" if safe else " The write may or may not have been applied: check before repeating it."
                raise ConnectorError(
                    f"{self.profile.name} did not answer in time.{hint} Try again in a moment", "timeout"
                ) from None
            except RedirectRefused as exc:  # never retried: the address is wrong, not the moment
                raise ConnectorError(str(exc), exc.error_type) from None
            except httpx.HTTPError as exc:
                raise ConnectorError(
                    f"the request to {self.profile.name} failed ({type(exc).__name__}); try again", "http_error"
                ) from None

            status = response.status_code
            if 200 <= status < 300:
                return response
            limited = status in self.profile.rate_limit_statuses
            transient = status in TRANSIENT_STATUSES and safe
            if (limited or transient) and attempt < self._max_retries:
                wait = self.profile.wait_hint(response)
                wait = self._backoff(attempt) if wait is None else wait + random.random() * 0.1
                if wait <= self._max_wait:
                    await anyio.sleep(wait)
                    attempt += 1
                    continue
            if limited:
                wait = self.profile.wait_hint(response)
                after = f" The server asks to wait {wait:.0f} s." if wait is not None else ""
                raise ConnectorError(
                    f"{self.profile.name} is rate limiting requests (HTTP {status}).{after} "
                    "Wait a little and try again, or make fewer calls", "rate_limited",
                )
            raise self.profile.error_from_response(response)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ConnectorError(
                f"{self.profile.name} returned a response that is not JSON (HTTP {response.status_code}); "
                "try again later",
                "bad_response",
            ) from None


def client_for(profile: VendorProfile, config: UpstreamConfig, base_url: str, credentials: CredentialProvider,
               transport: httpx.AsyncBaseTransport | None, *, default_rate: float = 0.0) -> RestClient:
    """The client of one configured upstream. Its budget fits inside the proxy's call timeout: one
    request may take 60 % of it and one rate-limit wait a third, so a retry still has time to run.
    `default_rate` (requests per second; 0 = unpaced) applies when the config sets no rate."""
    rate = config.rate_limit_per_second or default_rate
    return RestClient(
        profile, base_url, credentials,
        timeout=max(1.0, config.call_timeout * 0.6),
        max_retries=config.max_retries,
        min_interval=1.0 / rate if rate > 0 else 0.0,
        max_wait=min(20.0, config.call_timeout / 3),
        transport=transport,
    )


def _with_trace_context(hooks: dict[str, list[Callable[[Any], Awaitable[None]]]]
                        ) -> dict[str, list[Callable[[Any], Awaitable[None]]]]:
    """Adds a request hook that passes the current call's W3C trace context on to the vendor as the
    `traceparent` (and `tracestate`) header, so the vendor's logs join the AI client's trace."""
    async def trace(request: httpx.Request) -> None:
        for name, value in outbound_meta().items():
            request.headers[name] = value

    return {**hooks, "request": [trace, *hooks.get("request", [])]}
