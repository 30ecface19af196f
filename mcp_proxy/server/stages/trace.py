"""Trace: the call joins the client's trace (or starts one); its ids go into the audit records and on to
the upstream (mcp_proxy/tracing.py)."""

from __future__ import annotations

from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.tracing import current_trace, trace_for


class Trace:
    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        meta = call.meta or {}
        trace = trace_for(meta.get("traceparent"), meta.get("tracestate"))
        call.audit_fields.update({"trace_id": trace.trace_id, "span_id": trace.span_id,
                                  "parent_span_id": trace.parent_span_id})
        token = current_trace.set(trace)
        try:
            return await call_next(call)
        finally:
            current_trace.reset(token)
