"""One POST to the collector, and what its answer means for the batch.

The retry rules are OTLP/HTTP's, used for every protocol:

| answer                                   | kind      | the shipper                                        |
|------------------------------------------|-----------|----------------------------------------------------|
| 2xx                                      | ok        | advances the checkpoint                            |
| 2xx with OTLP partialSuccess.rejected > 0| partial   | advances (MUST NOT retry), keeps a copy, reports    |
| 429, any 5xx, no answer at all           | retry     | keeps the batch, waits (Retry-After, else backoff) |
| 413                                      | too_large | splits the batch; a single record is set aside     |
| 401, 403, 404, 405, 407                  | pause     | keeps the batch; no retry until the config changes |
| any other 4xx                            | reject    | sets the batch aside in rejected/, reports, goes on|

Every 5xx is retried, 500 included, although OTLP/HTTP lists only 502, 503 and 504: a server error is
the server's fault, not the data's, so setting the batch aside would only move audit records out of the
automatic path for good. The retry is bounded in pace, never in persistence: one request per cycle, the
next no sooner than Retry-After (capped at MAX_RETRY_AFTER) or the shipper's jittered exponential
backoff (`push_interval` doubling up to `max_retry_interval`); the batch is kept until it is accepted,
and the disk quota (quota.py) is what bounds how much waits. A 500 that is really about the data costs
at most that pace, and `audit status` shows it; a re-sent batch the collector half-took is deduplicated
by record id.

Auth and address errors pause instead of rejecting: the records are fine and a
fixed config will deliver them, so moving the whole backlog aside because a
token expired would be wrong; resending them on a timer would not help either
(see shipper.py for what resumes shipping).

Header values are never logged or reported: messages never quote an exception
of the HTTP layer (its text can hold a header value, as a bytes repr), only its
type and our own words, and every text derived from a response is scrubbed of
each header value and of each whitespace-separated part of it of 8+ characters
(a collector echoing only the token of `Bearer <token>`). A header value with a
line break or another control character is a configuration error, found before
anything is sent (`check_headers`).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from mcp_proxy import __version__
from mcp_proxy.audit.encode import CONTENT_TYPES, endpoint
from mcp_proxy.errors import AuditError
from mcp_proxy.httpsafe import OriginGuard, RedirectRefused
from mcp_proxy.trusted_time import observe_http_date

RETRYABLE = frozenset({429, 502, 503, 504})
PAUSE = frozenset({401, 403, 404, 405, 407})
MAX_RESPONSE = 4 * 1024 * 1024
MAX_DETAIL = 300
MAX_RETRY_AFTER = 3600.0
PARSE_IN_THREAD = 64 * 1024  # answers larger than this are parsed in a worker thread, not on the event loop
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110 token)
_BAD_VALUE = re.compile(r"[^\t\x20-\x7e]")  # a header value: visible ASCII, spaces and tabs only


class HeaderProblem(AuditError):
    """A configured header cannot be sent; the message names the header and its secret reference."""


def check_headers(configured: dict[str, Any], resolved: dict[str, str]) -> None:
    """Raise HeaderProblem for a header name or value the HTTP stack would refuse (never quoting the value)."""
    for name, value in resolved.items():
        ref = configured.get(name)
        source = f"the secret {ref}" if ref is not None and not isinstance(ref, str) else "the value in the config"
        if not _TOKEN.match(name):
            raise HeaderProblem(f"[audit] headers: {name!r} is not a valid HTTP header name")
        bad = _BAD_VALUE.search(value)
        if bad is not None:
            what = ("a line break" if bad.group(0) in "\r\n" else
                    "a control character" if ord(bad.group(0)) < 0x20 or bad.group(0) == "\x7f" else
                    "a non-ASCII character")
            raise HeaderProblem(f"[audit] headers.{name}: {source} contains {what} (at character "
                                f"{bad.start() + 1} of {len(value)}), which cannot be sent in an HTTP header; "
                                "fix the value (a trailing newline often comes from a file or `echo`)")


def secret_parts(values: Any) -> list[str]:
    """Each header value, and each whitespace-separated part of it of 8+ characters: what to scrub."""
    out: list[str] = []
    for value in values:
        out.append(value)
        out += [part for part in value.split() if len(part) >= 8]
    return out


def endpoint_shown(collector: str, protocol: str) -> str:
    """The URL the shipper posts to, as messages and events show it."""
    return safe_url(endpoint(collector, protocol))


def safe_url(url: str) -> str:
    """`url` without user info, query or fragment (they may hold credentials), for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(an unparseable URL)"


@dataclass
class Outcome:
    kind: str  # "ok" | "partial" | "retry" | "too_large" | "pause" | "reject"
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None
    rejected: int = 0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)


def _message(body: bytes, content_type: str) -> str:
    """The collector's reason: google.rpc.Status `message`, HEC `text`, or the start of the body."""
    if "protobuf" in content_type:
        return ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:MAX_DETAIL].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        for key in ("message", "text", "error", "errorMessage"):
            if isinstance(data.get(key), str):
                return data[key]
    return json.dumps(data)[:MAX_DETAIL]


def _partial(body: bytes, content_type: str) -> tuple[int, str]:
    """(rejectedLogRecords, errorMessage) of an OTLP success answer; (0, "") for anything else."""
    if not body:
        return 0, ""
    if "protobuf" in content_type:
        try:
            from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

            msg = logs_service_pb2.ExportLogsServiceResponse.FromString(body)
        except Exception:  # noqa: BLE001 - an unparseable success answer is still a success
            return 0, ""
        return int(msg.partial_success.rejected_log_records), msg.partial_success.error_message
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 0, ""
    partial = data.get("partialSuccess") if isinstance(data, dict) else None
    if not isinstance(partial, dict):
        return 0, ""
    try:
        rejected = int(partial.get("rejectedLogRecords") or 0)
    except (TypeError, ValueError):
        rejected = 0
    return rejected, str(partial.get("errorMessage") or "")


class Sender:
    """POSTs encoded batches to the configured collector with httpx (imported here, not at start-up)."""

    def __init__(self, collector: str, protocol: str, headers: dict[str, str], *, use_gzip: bool,
                 scrub: Callable[[str], str], timeout: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        import httpx

        self.url = endpoint(collector, protocol)
        self.protocol = protocol
        self.gzip = use_gzip
        self.scrub = scrub
        self.clock = clock
        self._headers = {"Content-Type": CONTENT_TYPES[protocol], "User-Agent": f"mcp-access-proxy/{__version__}",
                         **headers}
        if protocol == "splunk-hec":
            self._headers.setdefault("X-Splunk-Request-Channel", str(uuid.uuid4()))
        if protocol == "otlp-protobuf":
            self._headers["Accept"] = "application/x-protobuf"
        # No redirect is followed, not even within the origin (mcp_proxy/httpsafe.py): the headers are
        # credentials, the body is the audit trail, and a collector that moved is a config fix.
        guard = OriginGuard(self.url, what="the collector", fix="Set [audit] collector to the collector's final "
                            "address; shipping resumes when the config changes.")
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                         follow_redirects=False, event_hooks=guard.async_hooks())
        self._httpx = httpx
        self.shown_url = safe_url(self.url)

    def _detail(self, text: str) -> str:
        text = self.scrub(" ".join(text.split()))
        return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")

    async def send(self, body: bytes) -> Outcome:
        """POST `body`; the answer's meaning. Never raises for anything the HTTP layer does."""
        headers = dict(self._headers)
        if self.gzip:
            body = await anyio.to_thread.run_sync(gzip.compress, body, 5)
            headers["Content-Encoding"] = "gzip"
        httpx = self._httpx
        try:
            async with self._client.stream("POST", self.url, content=body, headers=headers) as response:
                data = bytearray()
                async for part in response.aiter_bytes():
                    data += part
                    if len(data) > MAX_RESPONSE:
                        break
        except httpx.TransportError as exc:  # its text may quote a header: only its type is shown
            return Outcome("retry", None, f"cannot reach the collector at {self.shown_url} ({type(exc).__name__})")
        except RedirectRefused as exc:  # the records are fine; a fixed config delivers them: pause, do not reject
            return Outcome("pause", None, self._detail(str(exc)))
        except httpx.RequestError as exc:  # an answer that cannot be read (bad gzip...): it may not have arrived
            return Outcome("retry", None, f"the answer of the collector at {self.shown_url} could not be read "
                                          f"({type(exc).__name__}); the batch is sent again")
        except Exception as exc:  # noqa: BLE001 - a request httpx refuses to build: the config is wrong
            return Outcome("pause", None, f"could not send to the collector at {self.shown_url} "
                                          f"({type(exc).__name__}); check [audit] collector and headers")
        status, ctype = response.status_code, response.headers.get("content-type", "")
        observe_http_date("collector", response.headers.get("date"))  # trusted time for policy expiry
        retry_after = response.headers.get("retry-after")
        if len(data) > PARSE_IN_THREAD:
            return await anyio.to_thread.run_sync(self._classify, status, response.reason_phrase, ctype, retry_after,
                                                  bytes(data))
        return self._classify(status, response.reason_phrase, ctype, retry_after, bytes(data))

    def _classify(self, status: int, phrase: str, ctype: str, retry_after: str | None, data: bytes) -> Outcome:
        reason = f"{status} {phrase}".strip()
        if 200 <= status < 300:
            rejected, message = _partial(data, ctype) if self.protocol.startswith("otlp") else (0, "")
            if rejected > 0:
                return Outcome("partial", status, self._detail(message or "no reason given"), rejected=rejected)
            return Outcome("ok", status)
        message = _message(data, ctype)
        detail = self._detail(f"the collector answered {reason}" + (f": {message}" if message else ""))
        if status in RETRYABLE or 500 <= status <= 599:  # see the module's docstring: 5xx is never the data's fault
            return Outcome("retry", status, detail, parse_retry_after(retry_after, self.clock()))
        if status == 413:
            return Outcome("too_large", status, detail)
        if status in PAUSE:
            return Outcome("pause", status, detail)
        return Outcome("reject", status, detail)

    async def aclose(self) -> None:
        await self._client.aclose()


def resolve_headers(headers: dict[str, Any], store: Any) -> dict[str, str]:
    """Header values with secret references resolved (call in a worker thread: keychains block)."""
    out = {}
    for name, value in headers.items():
        out[name] = value if isinstance(value, str) else value.resolve(store)
    return out
