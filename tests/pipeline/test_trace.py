"""Trace context (mcp_proxy/tracing.py and the Trace stage), in-process."""

from __future__ import annotations

import pytest

from mcp_proxy.server.call import CallResult, ToolCall
from mcp_proxy.server.stages.trace import Trace
from mcp_proxy.tracing import current_trace, outbound_meta, parse_traceparent, trace_for
from tests._support.pipeline_fakes import call_of

CLIENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("value, parsed", [
    (CLIENT, ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")),
    (CLIENT.upper(), ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "01")),
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # all-zero trace id is invalid
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),  # all-zero span id is invalid
    ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),  # only version 00 is understood
    ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", None),
    ("garbage", None), (None, None), (42, None),
])
def test_traceparent_parsing(value, parsed):
    assert parse_traceparent(value) == parsed


def test_a_call_continues_the_clients_trace_with_a_span_of_its_own():
    trace = trace_for(CLIENT, "vendor=abc")
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and trace.parent_span_id == "00f067aa0ba902b7"
    assert len(trace.span_id) == 16 and trace.span_id != "00f067aa0ba902b7"
    assert trace.traceparent == f"00-{trace.trace_id}-{trace.span_id}-01" and trace.tracestate == "vendor=abc"


def test_without_a_valid_traceparent_a_new_trace_starts_and_a_huge_tracestate_is_dropped():
    first, second = trace_for(None), trace_for("nonsense", "x" * 10_000)
    assert first.trace_id != second.trace_id and first.parent_span_id is None and second.tracestate is None


@pytest.mark.anyio
async def test_the_stage_records_the_ids_and_gives_the_upstream_its_context():
    seen: list[dict[str, str]] = []

    async def forward(call: ToolCall) -> CallResult:
        seen.append(outbound_meta())
        return {"content": [], "isError": False}

    call = call_of()
    call.meta = {"traceparent": CLIENT, "tracestate": "vendor=abc"}
    await Trace()(call, forward)
    fields = call.audit_fields
    assert fields["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and fields["parent_span_id"] == "00f067aa0ba902b7"
    assert seen == [{"traceparent": f"00-{fields['trace_id']}-{fields['span_id']}-01", "tracestate": "vendor=abc"}]
    assert current_trace.get() is None and outbound_meta() == {}, "the context ends with the call"
