"""The collector emulator's scripted faults: one answer per request, in order, then back to `fault`."""

from __future__ import annotations

import httpx


def test_a_script_answers_one_fault_per_request_then_falls_back(collector):
    c, url = collector
    c.script, c.retry_after = ["500", "429", "413", "down", None], "2"
    statuses = [httpx.post(f"{url}/ndjson", content=b'{"id": "s1"}\n') for _ in range(6)]
    assert [r.status_code for r in statuses] == [500, 429, 413, 503, 200, 200]
    assert all(r.headers.get("retry-after") == "2" for r in statuses[:2])
    assert [q["status"] for q in c.requests] == [500, 429, 413, 503, 200, 200]
    assert c.ids == {"s1"} and c.duplicates == 1 and c.script == []
    c.script = ["500"]
    c.reset()
    assert c.script == []
