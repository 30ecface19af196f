"""The identifiers of calls, traces and records (mcp_proxy/ids.py): the shapes their readers rely on."""

from __future__ import annotations

import random
import re

from mcp_proxy.audit.record import new_id
from mcp_proxy.ids import random_hex, trace_hex
from mcp_proxy.tracing import trace_for


def test_random_hex_has_the_asked_length_is_never_zero_and_does_not_repeat():
    for make in (random_hex, trace_hex):
        values = [make(8) for _ in range(20_000)]
        assert all(re.fullmatch(r"[0-9a-f]{16}", v) and int(v, 16) != 0 for v in values)
        assert len(set(values)) == len(values)


def _untemper(y: int) -> int:
    """Mersenne Twister's output tempering, undone: the generator's state word behind one 32-bit output."""

    def undo_right(value: int, shift: int) -> int:
        x = value
        for _ in range(32 // shift + 1):
            x = value ^ (x >> shift)
        return x

    def undo_left(value: int, shift: int, mask: int) -> int:
        x = value
        for _ in range(32 // shift + 1):
            x = value ^ ((x << shift) & mask)
        return x & 0xFFFFFFFF

    y = undo_right(y, 18)
    y = undo_left(y, 15, 0xEFC60000)
    y = undo_left(y, 7, 0x9D2C5680)
    return undo_right(y, 11)


def test_an_upstream_that_collects_trace_ids_cannot_predict_call_ids():
    # Trace ids go to every upstream. 624 of a Mersenne Twister's 32-bit outputs give away its state, so a
    # hostile upstream could predict what the same generator makes next; call and record ids must not be it.
    seen = [int(trace_hex(4), 16) for _ in range(624)]
    clone = random.Random()
    clone.setstate((3, (*(_untemper(y) for y in seen), 624), None))
    assert [clone.getrandbits(32) for _ in range(3)] == [int(trace_hex(4), 16) for _ in range(3)], \
        "the attack works on the generator it watched"
    predicted = [clone.getrandbits(32) for _ in range(50)]
    assert not set(predicted) & {int(random_hex(4), 16) for _ in range(50)}, "call ids are not predictable"


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
