"""Trace context end to end, through the real process: the client's traceparent becomes the audit
records' trace and span ids, on both entry paths, and the collector receives them as OTLP ids."""

from __future__ import annotations

import json

from tests._support.audit import home_paths, spool_records
from tests._support.proxy import stdio_upstream
from tests._support.wire import converse, initialize_line, spawn

INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def _call(rid: int, meta: dict | None) -> str:
    params: dict = {"name": "f_echo", "arguments": {"text": "hi"}}
    if meta is not None:
        params["_meta"] = meta
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})


def test_the_clients_trace_is_on_every_record_of_its_call(proxy):
    proxy.write({"f": stdio_upstream()})
    p = spawn(proxy)
    converse(p, [initialize_line("2025-11-25"), INITIALIZED,
                 _call(2, {"traceparent": CLIENT}),  # fast path
                 _call(3, {"traceparent": CLIENT, "progressToken": "p3"}),  # SDK path
                 _call(4, None)], {1, 2, 3, 4})
    records = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]
    by_request: dict[str, list[dict]] = {}
    for r in records:
        by_request.setdefault(r["jsonrpc.request.id"], []).append(r)
    for rid in ("2", "3"):
        started, ended = by_request[rid]
        assert started["trace_id"] == ended["trace_id"] == TRACE
        assert started["span_id"] == ended["span_id"] and ended["parent_span_id"] == "00f067aa0ba902b7"
    assert by_request["2"][0]["span_id"] != by_request["3"][0]["span_id"], "each call has a span of its own"
    fresh = by_request["4"][1]
    assert len(fresh["trace_id"]) == 32 and fresh["trace_id"] != TRACE and "parent_span_id" not in fresh


def test_the_trace_is_passed_on_to_mcp_upstreams_and_rest_vendors(proxy, tmp_path):
    from tests.governance.test_stop_records import slow_pagerduty

    meta_log = tmp_path / "meta.jsonl"
    with slow_pagerduty(0.0) as vendor:
        proxy.write({"f": stdio_upstream(env={"FAKE_META_LOG": str(meta_log)}),
                     "pd": {"kind": "pagerduty", "base_url": vendor.url, "api_key": "env:PD_KEY"}})
        p = spawn(proxy, env=proxy.env(PD_KEY="u+abcdefghijklmnopqrst"))
        converse(p, [initialize_line("2025-11-25"), INITIALIZED, _call(2, {"traceparent": CLIENT,
                                                                          "tracestate": "vendor=abc"}),
                     json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                         "name": "pd_list_incidents", "arguments": {}, "_meta": {"traceparent": CLIENT}}})],
                 {1, 2, 3})
    records = {r["jsonrpc.request.id"]: r for r in spool_records(home_paths(proxy.home))
               if r["event_name"] == "mcp.tool.call"}
    [seen] = [json.loads(line) for line in meta_log.read_text().splitlines() if '"echo"' in line]
    assert seen["meta"]["traceparent"] == f"00-{TRACE}-{records['2']['span_id']}-01"
    assert seen["meta"]["tracestate"] == "vendor=abc"
    [headers] = vendor.headers
    assert headers["traceparent"] == f"00-{TRACE}-{records['3']['span_id']}-01"
