"""One POST to the collector, and what its answer means for the batch.

The retry rules are OTLP/HTTP's, used for every protocol:

| answer                                   | kind      | the shipper                                        |
|------------------------------------------|-----------|----------------------------------------------------|
| 2xx                                      | ok        | advances the checkpoint                            |
| 2xx with OTLP partialSuccess.rejected > 0| partial   | advances (MUST NOT retry), keeps a copy, reports    |
| 429, 502, 503, 504, no answer at all     | retry     | keeps the batch, waits (Retry-After, else backoff) |
| 413                                      | too_large | splits the batch; a single record is set aside     |
| 401, 403, 404, 405, 407                  | pause     | keeps the batch, waits long: our config is wrong   |
| any other 4xx/5xx                        | reject    | sets the batch aside in rejected/, reports, goes on|

Auth and address errors pause instead of rejecting: the records are fine and a
fixed config will deliver them, so moving the whole backlog aside because a
token expired would be wrong. Header values are never logged or reported.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from mcp_proxy import __version__
from mcp_proxy.audit.encode import CONTENT_TYPES, endpoint

RETRYABLE = frozenset({429, 502, 503, 504})
PAUSE = frozenset({401, 403, 404, 405, 407})
MAX_RESPONSE = 4 * 1024 * 1024
MAX_DETAIL = 300
MAX_RETRY_AFTER = 3600.0


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
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                         follow_redirects=False)
        self._httpx = httpx

    def _detail(self, text: str) -> str:
        text = self.scrub(" ".join(text.split()))
        return text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")

    async def send(self, body: bytes) -> Outcome:
        headers = dict(self._headers)
        if self.gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        httpx = self._httpx
        try:
            async with self._client.stream("POST", self.url, content=body, headers=headers) as response:
                data = b""
                async for part in response.aiter_bytes():
                    data += part
                    if len(data) > MAX_RESPONSE:
                        break
        except httpx.TransportError as exc:
            return Outcome("retry", None, self._detail(f"cannot reach the collector at {self.url} "
                                                       f"({type(exc).__name__}: {exc})"))
        status, ctype = response.status_code, response.headers.get("content-type", "")
        reason = f"{status} {response.reason_phrase}".strip()
        if 200 <= status < 300:
            rejected, message = _partial(data, ctype) if self.protocol.startswith("otlp") else (0, "")
            if rejected > 0:
                return Outcome("partial", status, self._detail(message or "no reason given"), rejected=rejected)
            return Outcome("ok", status)
        message = _message(data, ctype)
        detail = self._detail(f"the collector answered {reason}" + (f": {message}" if message else ""))
        if status in RETRYABLE:
            return Outcome("retry", status, detail, parse_retry_after(response.headers.get("retry-after"),
                                                                      self.clock()))
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
