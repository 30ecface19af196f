"""The collector emulator: strict OTLP JSON validation, google.rpc.Status errors, protocols, faults, dedup."""

from __future__ import annotations

import copy
import gzip
import json

import httpx
import pytest

from mcp_proxy.audit.encode import otlp_request
from mcp_proxy.sandbox.collector_wire import Invalid, decode_otlp


def _request() -> dict:
    record = {"id": "r1", "seq": 1, "time": "2026-11-22T09:00:00.000001Z", "event_name": "mcp.tool.call",
              "service.name": "mcp-access-proxy", "service.version": "0.1.0", "service.instance.id": "i",
              "host.name": "h", "outcome": "ok", "n": 3, "ratio": 0.5, "flag": True, "tags": ["a", 1],
              "gen_ai.tool.call.arguments": {"q": {"deep": [1, 2]}}}
    return otlp_request([(record, json.dumps(record).encode())], observed_ns=1)


def test_our_encoding_passes_strict_validation_and_round_trips():
    (record,) = decode_otlp(_request())
    assert record["id"] == "r1" and record["event_name"] == "mcp.tool.call"
    assert record["n"] == 3 and record["ratio"] == 0.5 and record["flag"] is True and record["tags"] == ["a", 1]
    assert record["gen_ai.tool.call.arguments"] == {"q": {"deep": [1, 2]}}
    assert record["time_unix_nano"] == "1795338000000001000"
    assert record["service.instance.id"] == "i" and record["body"].startswith("unknown user called")


def _lr(doc: dict) -> dict:
    return doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]


@pytest.mark.parametrize("damage,where", [
    (lambda d: _lr(d).__setitem__("time_unix_nano", _lr(d).pop("timeUnixNano")), "time_unix_nano: unknown field"),
    (lambda d: _lr(d).__setitem__("timeUnixNano", 1795338000000001000), "timeUnixNano: 64-bit integers"),
    (lambda d: _lr(d).__setitem__("severityNumber", "SEVERITY_NUMBER_INFO"), "severityNumber: enums are integers"),
    (lambda d: _lr(d)["attributes"][1]["value"].__setitem__("intValue", 1), "intValue: 64-bit integers"),
    (lambda d: _lr(d)["attributes"][1]["value"].update({"boolValue": True}), "exactly one of"),
    (lambda d: _lr(d).__setitem__("traceId", "AAECAwQFBgcICQoLDA0ODw=="), "traceId: must be 32 lowercase hex"),
    (lambda d: d.__setitem__("resource_logs", d.pop("resourceLogs")), "(request).resource_logs"),
    (lambda d: d["resourceLogs"][0].__setitem__("scopeLogs", {}), "scopeLogs: must be an array"),
    (lambda d: _lr(d)["attributes"][1]["value"].__setitem__("intValue", "9999999999999999999"),
     "intValue: 9999999999999999999 is out of the int64 range"),
    (lambda d: _lr(d).__setitem__("timeUnixNano", "99999999999999999999"), "timeUnixNano: .* uint64 range"),
    (lambda d: _lr(d).__setitem__("droppedAttributesCount", -5), "droppedAttributesCount: must be an integer from 0"),
    (lambda d: _lr(d).__setitem__("flags", 2**40), "flags: must be an integer from 0 to 4294967295"),
    (lambda d: _lr(d).__setitem__("attributes", [a for a in _lr(d)["attributes"] if a["key"] != "log.record.uid"]),
     "attributes: no log.record.uid"),
])
def test_violations_name_the_path(damage, where):
    doc = copy.deepcopy(_request())
    damage(doc)
    with pytest.raises(Invalid, match=".*" + where.replace("(", r"\(").replace(")", r"\)")):
        decode_otlp(doc)


def test_http_answers_400_with_a_google_rpc_status(collector):
    c, url = collector
    bad = _request()
    _lr(bad)["severityNumber"] = "9"
    r = httpx.post(f"{url}/v1/logs", json=bad)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 3 and "severityNumber" in body["message"] and body["details"] == []
    r = httpx.post(f"{url}/v1/logs", content=b"not gzip", headers={"Content-Encoding": "gzip",
                                                                    "Content-Type": "application/json"})
    assert r.status_code == 400 and "gzip" in r.json()["message"]
    r = httpx.post(f"{url}/v1/logs", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type" in r.json()["message"]
    assert c.records == []


def test_gzip_dedup_and_faults(collector):
    c, url = collector
    body = gzip.compress(json.dumps(_request()).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert httpx.post(f"{url}/v1/logs", content=body, headers=headers).json() == {}
    assert httpx.post(f"{url}/v1/logs", content=body, headers=headers).status_code == 200
    assert len(c.records) == 1 and c.duplicates == 1
    c.fault, c.retry_after, c.fault_times = "429", "3", 1
    r = httpx.post(f"{url}/v1/logs", content=body, headers=headers)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert httpx.post(f"{url}/v1/logs", content=body, headers=headers).status_code == 200  # fault_times ran out
    c.max_body_bytes = 100
    assert httpx.post(f"{url}/v1/logs", content=body, headers=headers).status_code == 413
    c.max_body_bytes, c.fault = None, "partial"
    r = httpx.post(f"{url}/v1/logs", content=body, headers=headers)
    assert r.json()["partialSuccess"]["rejectedLogRecords"] == "1"


def test_hec_needs_the_token_and_ndjson_needs_ids(collector):
    c, url = collector
    events = b'{"event": {"id": "a", "event_name": "x"}}\n{"event": {"id": "b", "event_name": "y"}}'
    assert httpx.post(f"{url}/services/collector/event", content=events).status_code == 403
    ok = httpx.post(f"{url}/services/collector/event", content=events,
                    headers={"Authorization": "Splunk hec-test-token-123"})
    assert ok.json() == {"text": "Success", "code": 0} and [r["id"] for r in c.records] == ["a", "b"]
    assert c.requests[-1]["authorization"] is True and "hec-test-token-123" not in json.dumps(c.requests)
    assert httpx.post(f"{url}/ndjson", content=b'{"no_id": 1}\n').status_code == 400
    assert httpx.post(f"{url}/ndjson", content=b'{"id": "c"}\n{"id": "a"}\n').status_code == 200
    assert c.duplicates == 1


def test_protobuf_requests_are_decoded():
    pytest.importorskip("opentelemetry.proto")
    from mcp_proxy.audit.encode import otlp_protobuf
    from mcp_proxy.sandbox.collector_wire import decode_otlp_protobuf

    record = {"id": "p1", "time": "2026-11-22T09:00:00.000000Z", "event_name": "mcp.tool.denied", "n": 2**40}
    (decoded,) = decode_otlp_protobuf(otlp_protobuf([(record, b"{}")]))
    assert decoded["id"] == "p1" and decoded["event_name"] == "mcp.tool.denied" and decoded["n"] == 2**40
    assert decoded["severity_number"] == 13


@pytest.mark.parametrize("path,body", [
    ("/v1/logs", b'{"resourceLogs": [], "x": NaN}'),
    ("/ndjson", b'{"id": "n1", "ratio": Infinity}\n'),
    ("/services/collector/event", b'{"event": {"id": "h1", "ratio": -Infinity}}'),
])
def test_bare_nan_and_infinity_are_refused_on_every_protocol(collector, path, body):
    c, url = collector
    r = httpx.post(f"{url}{path}", content=body, headers={"Content-Type": "application/json",
                                                          "Authorization": "Splunk hec-test-token-123"})
    assert r.status_code == 400 and "is not JSON" in r.text
    assert c.records == []
