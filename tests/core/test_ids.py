"""The identifiers of calls, traces and records (mcp_proxy/ids.py): the shapes their readers rely on."""

from __future__ import annotations

import re

from mcp_proxy.audit.record import new_id
from mcp_proxy.ids import random_hex
from mcp_proxy.tracing import trace_for


def test_random_hex_has_the_asked_length_is_never_zero_and_does_not_repeat():
    values = [random_hex(8) for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", v) and int(v, 16) != 0 for v in values)
    assert len(set(values)) == len(values)


def test_trace_ids_are_w3c_shaped_and_fresh_per_call():
    first, second = trace_for(None), trace_for(None)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", first.traceparent)
    assert first.trace_id != second.trace_id and first.span_id != second.span_id
    joined = trace_for(first.traceparent)
    assert joined.trace_id == first.trace_id and joined.span_id != first.span_id


def test_record_ids_are_uuid7_and_sort_by_time():
    ids = [new_id(ns) for ns in (1_000_000_000_000_000, 1_000_000_001_000_000, 1_000_000_002_000_000)]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i) for i in ids)
    assert ids == sorted(ids)
