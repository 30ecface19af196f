"""W3C trace context for a call: joins the AI client's trace with the audit record and the vendor's logs.

A `traceparent` (and `tracestate`) in the client's request `_meta` is continued; without one a new trace
starts. The call gets a span of its own: its id is the audit record's `span_id`, and it is the parent
passed on to the upstream (in `_meta` to MCP servers, as the `traceparent` header to REST vendors). The
current call's context is a context variable, so the upstream code that sends a request reads it without
every signature in between carrying it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from mcp_proxy.ids import trace_hex

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
MAX_TRACESTATE = 512  # W3C: at most 32 members; a longer header is dropped rather than trusted


@dataclass(frozen=True)
class Trace:
    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex: this call's span
    parent_span_id: str | None  # the client's span, when it sent one
    flags: str = "01"
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        """The header value naming this call's span as the parent of what the upstream does."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: object) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid version-00 traceparent, else None."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == _ZERO_TRACE or match.group(2) == _ZERO_SPAN:
        return None
    return match.group(1), match.group(2), match.group(3)


def trace_for(traceparent: object, tracestate: object = None) -> Trace:
    """This call's trace: the client's continued when its traceparent is valid, else a new one."""
    parent = parse_traceparent(traceparent)
    state = tracestate if isinstance(tracestate, str) and len(tracestate) <= MAX_TRACESTATE else None
    if parent is None:
        return Trace(trace_hex(16), trace_hex(8), None)
    trace_id, parent_span, flags = parent
    return Trace(trace_id, trace_hex(8), parent_span, flags, state)


current_trace: ContextVar[Trace | None] = ContextVar("mcp_access_proxy_trace", default=None)


def outbound_meta() -> dict[str, str]:
    """The `_meta` trace fields for a request sent upstream on behalf of the current call ({} outside one)."""
    trace = current_trace.get()
    if trace is None:
        return {}
    meta = {"traceparent": trace.traceparent}
    if trace.tracestate:
        meta["tracestate"] = trace.tracestate
    return meta
