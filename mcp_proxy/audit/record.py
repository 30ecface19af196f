"""The audit record: identity context, ids, times, severity, and a one-line description.

A record is one JSON object on one line of a segment file. Its keys follow the
OpenTelemetry MCP/GenAI conventions where one exists (`mcp.method.name`,
`gen_ai.tool.name`, `jsonrpc.request.id`, `error.type`, `user.email`,
`service.*`, `host.name`); the rest are ours and documented here:

    id                   UUIDv7: unique across processes and machines; the collector's dedup key
                         (OTLP attribute `log.record.uid`); a re-sent record keeps its id
    seq                  1, 2, ... within one segment file
    time                 RFC 3339 UTC with microseconds, when the record was made
    event_name           mcp.tool.call, mcp.tool.denied, tools.discovered, policy.*, access.requested,
                         auth.*, tool.definition_changed, audit.* (the spool's own events)
    mcp.client.name/version   what the client said in `initialize` (proxy-defined names)
    policy.governed      false when the config has no [policy]: every tool is exposed (on every record)
    policy.revision      the policy revision in force when the record was made
    gen_ai.tool.call.arguments  the call's arguments after redaction (see redact.py)
    audit.redactions     where and why something was removed ("arguments.password:key-name")
    audit.segment        the segment's number for this instance (1, 2, ... across rotations)
    prev_hash            SHA-256 (hex) of the previous record's line as written, without the newline;
                         the first record of an instance has "". It continues across rotations, so a
                         missing, inserted or edited line breaks the chain (see verify.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_proxy.ids import random_bits

SERVICE_NAME = "mcp-access-proxy"

# Keys the spool writes itself; a caller's field of the same name is dropped rather than trusted.
RESERVED = frozenset({"id", "seq", "time", "event_name", "prev_hash", "audit.segment", "service.name",
                      "service.version", "service.instance.id", "host.name", "policy.governed"})

SEVERITY = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}


@dataclass
class AuditContext:
    """Who and what every record of this process is about. The hub updates the mutable parts."""

    proxy_version: str
    instance_id: str
    host: str
    user: str | None = None
    governed: bool = False
    client_name: str | None = None
    client_version: str | None = None
    policy_revision: str | None = None
    _cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_cache":
            object.__setattr__(self, "_cache", None)

    def fields(self) -> dict[str, Any]:
        """The context part of a record (a shared dict: copy before changing it)."""
        if self._cache is None:
            out: dict[str, Any] = {"user.email": self.user, "host.name": self.host, "service.name": SERVICE_NAME,
                                   "service.version": self.proxy_version, "service.instance.id": self.instance_id,
                                   "mcp.client.name": self.client_name, "mcp.client.version": self.client_version,
                                   "policy.governed": self.governed, "policy.revision": self.policy_revision}
            self._cache = {k: v for k, v in out.items() if v is not None}
        return self._cache




def new_id(now_ns: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Sorts by time."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = random_bits(80)  # 74 of them used: a collision across every machine's records is vanishingly unlikely
    value = ((ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (((rand >> 64) & 0xFFF) << 64) \
        | (0b10 << 62) | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def rfc3339(ts: float) -> str:
    seconds = int(ts)
    micros = round((ts - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    if _second[0] != seconds:
        _second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second[1]}.{micros:06d}Z"


def unix_nanos(text: str) -> int:
    """`time` of a record (RFC 3339, as rfc3339() writes it, or any offset) as Unix nanoseconds."""
    from datetime import UTC, datetime

    if not isinstance(text, str):
        raise TypeError(f"a record's time is an RFC 3339 string, not {type(text).__name__}")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def severity(record: dict[str, Any]) -> str:
    event = record.get("event_name", "")
    if event == "mcp.tool.call":
        return {"ok": "INFO", "tool_error": "WARN"}.get(record.get("outcome", ""), "ERROR")
    if event in ("mcp.tool.denied", "policy.rejected", "policy.expired", "tool.definition_changed",
                 "access.requested"):
        return "WARN"
    if event.startswith("audit."):
        return "ERROR"
    return "INFO"


def _describe_call(record: dict[str, Any], who: str, tool: str) -> str:
    outcome = record.get("outcome", "?")
    err = f" ({record['error.type']})" if record.get("error.type") and record["error.type"] != outcome else ""
    return f"{who} called {tool}: {outcome}{err} in {record.get('duration_ms', '?')} ms"


#: event name -> (record, user, tool) -> its line; `auth.*` and the other `audit.*` events follow a pattern.
_DESCRIBE: dict[str, Callable[[dict[str, Any], str, str], str]] = {
    "mcp.tool.call": _describe_call,
    "mcp.tool.denied": lambda r, who, tool: (
        f"{who} was denied {tool} ({r.get('policy.decision.code', '?')}): {r.get('reason', '')}"),
    "tools.discovered": lambda r, _who, _tool: f"upstream {r.get('upstream')} lists {r.get('tool_count')} tools",
    "policy.activated": lambda r, _who, _tool: (
        f"policy revision {r.get('policy.revision')} active (from the {r.get('origin', '?')})"),
    "policy.rejected": lambda r, _who, _tool: f"policy refused: {r.get('reason', '')}",
    "policy.expired": lambda r, _who, _tool: (
        f"policy revision {r.get('policy.revision')} expired: nothing is exposed"),
    "tool.definition_changed": lambda _r, _who, tool: f"the definition of {tool} changed since review: pending again",
    "access.requested": lambda r, who, tool: f"{who} requests access to {tool}: {r.get('reason', '')}",
    "audit.dropped": lambda r, _who, _tool: (
        f"disk quota: dropped {r.get('audit.dropped.records')} unsent records "
        f"({r.get('audit.dropped.bytes')} bytes)"),
}


def describe(record: dict[str, Any]) -> str:
    """One human-readable line about a record (the OTLP body, `audit tail`)."""
    event = record.get("event_name", "?")
    who = record.get("user.email") or "unknown user"
    tool = record.get("gen_ai.tool.name") or record.get("tool.key") or ""
    if event in _DESCRIBE:
        return _DESCRIBE[event](record, who, tool)
    if event.startswith("auth."):
        return f"{event.split('.', 1)[1].replace('_', ' ')} at {record.get('upstream')} as {who}"
    if event.startswith("audit."):
        return f"{event}: {record.get('audit.reason') or record.get('reason') or ''}".rstrip(": ")
    return event
