"""Request bodies for each collector protocol, from spooled lines.

* otlp-json: an OTLP/HTTP `ExportLogsServiceRequest` in the OTLP JSON mapping (lowerCamelCase keys,
  64-bit integers as decimal strings, enums as integers). One LogRecord per record: `eventName` is the
  event name, `timeUnixNano` the record's time, `body` a one-line description, attribute
  `log.record.uid` the record id, `audit.record_hash` the SHA-256 of the spooled line (so the
  collector side can check each record's `prev_hash` against the one before it), and every other
  field an attribute. Records are grouped by resource (service.name, service.version,
  service.instance.id, host.name), since a batch holds several processes' records. Each record also
  carries its batch's chain attributes for its writer instance (`Encoder.body(parts, chain)`, filled in
  by the shipper): `audit.chain.head`, the `audit.record_hash` of the last record of that instance the
  collector acknowledged before this batch ("" when none), and `audit.seq.first` / `audit.seq.last`,
  the `seq` of the instance's first and last record in the batch. So the collector can check that each
  batch continues what it holds: the batch's head is the last record it has of the instance, and the
  first new record's `prev_hash` is that head. They are record attributes, not resource ones, so that
  no backend turns a per-batch value into a label or a new resource.
* otlp-protobuf: the same request as protobuf (needs the `protobuf` extra: opentelemetry-proto).
* ndjson: the spooled lines exactly as written, one per line (no chain attributes: the collector hashes
  each line itself and follows `prev_hash` and `seq`).
* splunk-hec: concatenated HEC event objects (`time`, `host`, `source`, `sourcetype`, `event`).

Encoding is per record and total: `Encoder.part` encodes one record (in the shipper's worker thread,
while the batch is read) and raises for a record it cannot encode, which the shipper sets aside on its
own; `Encoder.body` only joins parts, so it cannot fail because of one record. Every body is strict
JSON (no NaN/Infinity).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

from mcp_proxy import __version__
from mcp_proxy.audit.record import SERVICE_NAME, SEVERITY, describe, severity, unix_nanos
from mcp_proxy.errors import AuditError

RESOURCE_KEYS = ("service.name", "service.version", "service.instance.id", "host.name")
_NOT_ATTRIBUTES = frozenset({"id", "time", "event_name", "trace_id", "span_id", *RESOURCE_KEYS})
_HEX_ID = {"trace_id": re.compile(r"[0-9a-f]{32}"), "span_id": re.compile(r"[0-9a-f]{16}")}


def trace_ids(record: dict[str, Any]) -> dict[str, str]:
    """The record's W3C trace and span ids as OTLP's `traceId`/`spanId` (hex in OTLP/JSON), when valid."""
    ids = {}
    for key, field in (("trace_id", "traceId"), ("span_id", "spanId")):
        value = record.get(key)
        if isinstance(value, str) and _HEX_ID[key].fullmatch(value):
            ids[field] = value
    return ids
SCOPE = {"name": "mcp_proxy.audit", "version": __version__}
CONTENT_TYPES = {"otlp-json": "application/json", "otlp-protobuf": "application/x-protobuf",
                 "ndjson": "application/x-ndjson", "splunk-hec": "application/json"}
INT64 = (-(2 ** 63), 2 ** 63 - 1)


class ProtocolUnavailable(AuditError):
    """The configured protocol needs an optional package that is not installed."""


def any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)} if INT64[0] <= value <= INT64[1] else {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value} if value == value and value not in (float("inf"), float("-inf")) \
            else {"stringValue": str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()
                                           if v is not None]}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value if v is not None]}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


class Unencodable(AuditError):
    """One record cannot be encoded for the configured protocol."""


def log_record(record: dict[str, Any], raw: bytes, observed_ns: int) -> dict[str, Any]:
    if not isinstance(record.get("id"), str) or not isinstance(record.get("event_name"), str):
        raise Unencodable("the record's id or event_name is not a string")
    level = severity(record)
    attributes = [{"key": "log.record.uid", "value": {"stringValue": record["id"]}}]
    attributes += [{"key": k, "value": any_value(v)} for k, v in record.items()
                   if k not in _NOT_ATTRIBUTES and v is not None]
    attributes.append({"key": "audit.record_hash", "value": {"stringValue": hashlib.sha256(raw).hexdigest()}})
    try:
        ts = str(unix_nanos(record["time"]))
    except (KeyError, TypeError, ValueError):
        ts = str(observed_ns)
    # `attributes` last: Encoder.body appends the batch's chain attributes to the serialized record.
    return {"timeUnixNano": ts, "observedTimeUnixNano": str(observed_ns), "severityNumber": SEVERITY[level],
            "severityText": level, "body": {"stringValue": describe(record)}, "eventName": record["event_name"],
            **trace_ids(record), "attributes": attributes}


def chain_attributes(chain: dict[str, Any] | None) -> list[dict[str, Any]]:
    """OTLP attributes of one record's batch chain values (audit.chain.head, audit.seq.first/last)."""
    return [{"key": k, "value": any_value(v)} for k, v in (chain or {}).items() if v is not None]


def otlp_request(items: list[tuple[dict[str, Any], bytes]], observed_ns: int | None = None) -> dict[str, Any]:
    observed = time.time_ns() if observed_ns is None else observed_ns
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record, raw in items:
        key = tuple(record.get(k) for k in RESOURCE_KEYS)
        groups.setdefault(key, []).append(log_record(record, raw, observed))
    resource_logs = []
    for key, records in groups.items():
        attrs = dict(zip(RESOURCE_KEYS, key, strict=True))
        attrs["service.name"] = attrs["service.name"] or SERVICE_NAME
        resource_logs.append({
            "resource": {"attributes": [{"key": k, "value": {"stringValue": str(v)}} for k, v in attrs.items()
                                        if v is not None]},
            "scopeLogs": [{"scope": dict(SCOPE), "logRecords": records}],
        })
    return {"resourceLogs": resource_logs}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _strict(raw: bytes) -> None:
    """Raise when a spooled line is not strict JSON (a bare NaN/Infinity, from an older version)."""
    if b"NaN" in raw or b"Infinity" in raw:
        json.loads(raw, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise Unencodable(f"the record holds {constant}, which is not JSON")


def _resource_key(record: dict[str, Any]) -> tuple:
    return tuple(record.get(k) if isinstance(record.get(k), (str, type(None))) else str(record.get(k))
                 for k in RESOURCE_KEYS)


def _grouped(parts: list[tuple[tuple, Any]]) -> dict[tuple, list[Any]]:
    groups: dict[tuple, list[Any]] = {}
    for key, value in parts:
        groups.setdefault(key, []).append(value)
    return groups


def _resource(key: tuple) -> dict[str, Any]:
    attrs = dict(zip(RESOURCE_KEYS, key, strict=True))
    attrs["service.name"] = attrs["service.name"] or SERVICE_NAME
    return {"attributes": [{"key": k, "value": {"stringValue": str(v)}} for k, v in attrs.items() if v is not None]}


class Encoder:
    """Encodes records one by one (`part`), then joins the parts of a batch into a body (`body`).

    `chain`, when given, holds for each part the batch's chain attributes of its record's instance
    (`audit.chain.head`, `audit.seq.first`, `audit.seq.last`); protocols that send records as spooled
    (ndjson, Splunk HEC) leave them out."""

    def part(self, record: dict[str, Any], raw: bytes) -> Any:
        raise NotImplementedError

    def body(self, parts: list[Any], chain: list[dict[str, Any] | None] | None = None) -> bytes:
        raise NotImplementedError


def _with_chain(data: bytes, chain: dict[str, Any] | None) -> bytes:
    """A serialized OTLP/JSON LogRecord (attributes last, never empty) with the chain attributes added."""
    extra = chain_attributes(chain)
    if not extra:
        return data
    if data.endswith(b"]}"):
        return data[:-2] + b"," + b",".join(_dumps(a) for a in extra) + b"]}"
    value = json.loads(data)  # not the shape log_record makes (kept for safety): parse and add
    value["attributes"] = [*value.get("attributes", []), *extra]
    return _dumps(value)


class OtlpJson(Encoder):
    def part(self, record: dict[str, Any], raw: bytes) -> tuple[tuple, bytes]:
        return _resource_key(record), _dumps(log_record(record, raw, time.time_ns()))

    def body(self, parts: list[tuple[tuple, bytes]], chain: list[dict[str, Any] | None] | None = None) -> bytes:
        if chain:
            parts = [(key, _with_chain(data, chain[i] if i < len(chain) else None))
                     for i, (key, data) in enumerate(parts)]
        blocks = []
        scope = _dumps(SCOPE)
        for key, records in _grouped(parts).items():
            blocks.append(b'{"resource":' + _dumps(_resource(key)) + b',"scopeLogs":[{"scope":' + scope
                          + b',"logRecords":[' + b",".join(records) + b"]}]}")
        return b'{"resourceLogs":[' + b",".join(blocks) + b"]}"


class OtlpProtobuf(Encoder):
    def __init__(self) -> None:
        self.json_format, self.service = protobuf_modules()
        from opentelemetry.proto.logs.v1 import logs_pb2

        self.logs_pb2 = logs_pb2

    def part(self, record: dict[str, Any], raw: bytes) -> tuple[tuple, bytes]:
        fields = log_record(record, raw, time.time_ns())
        # OTLP/JSON writes the ids in hex where protobuf's JSON mapping expects base64: set them as bytes.
        trace_id, span_id = fields.pop("traceId", None), fields.pop("spanId", None)
        message = self.json_format.ParseDict(fields, self.logs_pb2.LogRecord())
        if trace_id and span_id:
            message.trace_id, message.span_id = bytes.fromhex(trace_id), bytes.fromhex(span_id)
        return _resource_key(record), message.SerializeToString()

    def body(self, parts: list[tuple[tuple, bytes]], chain: list[dict[str, Any] | None] | None = None) -> bytes:
        if chain:  # a serialized message followed by another one merges: repeated attributes are appended
            parts = [(key, data + self._chain(chain[i] if i < len(chain) else None))
                     for i, (key, data) in enumerate(parts)]
        request = self.service.ExportLogsServiceRequest()
        for key, records in _grouped(parts).items():
            resource_logs = request.resource_logs.add()
            self.json_format.ParseDict(_resource(key), resource_logs.resource)
            scope_logs = resource_logs.scope_logs.add()
            scope_logs.scope.name, scope_logs.scope.version = SCOPE["name"], SCOPE["version"]
            for data in records:
                scope_logs.log_records.add().MergeFromString(data)
        return request.SerializeToString()

    def _chain(self, chain: dict[str, Any] | None) -> bytes:
        extra = chain_attributes(chain)
        if not extra:
            return b""
        return bytes(self.json_format.ParseDict({"attributes": extra}, self.logs_pb2.LogRecord()).SerializeToString())


class Ndjson(Encoder):
    def part(self, record: dict[str, Any], raw: bytes) -> bytes:
        _strict(raw)  # sent exactly as spooled (the chain's hashes are over these bytes)
        return raw

    def body(self, parts: list[bytes], chain: list[dict[str, Any] | None] | None = None) -> bytes:
        return b"".join(raw + b"\n" for raw in parts)


class SplunkHec(Encoder):
    def part(self, record: dict[str, Any], raw: bytes) -> bytes:
        try:
            ts = unix_nanos(record["time"]) / 1e9
        except (KeyError, TypeError, ValueError):
            ts = time.time()
        return _dumps({"time": round(ts, 6), "host": record.get("host.name"), "source": SERVICE_NAME,
                       "sourcetype": "mcp-access-proxy:audit", "event": record})

    def body(self, parts: list[bytes], chain: list[dict[str, Any] | None] | None = None) -> bytes:
        return b"\n".join(parts)


def make_encoder(protocol: str) -> Encoder:
    """The encoder of a protocol; raises ProtocolUnavailable when it needs a package not installed."""
    return {"otlp-json": OtlpJson, "otlp-protobuf": OtlpProtobuf, "ndjson": Ndjson, "splunk-hec": SplunkHec}[protocol]()


def encode(protocol: str, items: list[tuple[dict[str, Any], bytes]]) -> bytes:
    """A whole body at once (raises for a record that cannot be encoded): for tests and tools."""
    encoder = make_encoder(protocol)
    return encoder.body([encoder.part(record, raw) for record, raw in items])


def protobuf_modules() -> tuple[Any, Any]:
    try:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    except ImportError:
        raise ProtocolUnavailable(
            "[audit] protocol = \"otlp-protobuf\" needs the protobuf extra: install "
            "'mcp-access-proxy[protobuf]' (opentelemetry-proto), or set protocol = \"otlp-json\"") from None
    from opentelemetry.proto.logs.v1 import logs_pb2

    if "event_name" not in logs_pb2.LogRecord.DESCRIPTOR.fields_by_name:
        raise ProtocolUnavailable("the installed opentelemetry-proto is too old (its LogRecord has no event_name); "
                                  "upgrade it: pip install -U 'opentelemetry-proto>=1.35'")
    return json_format, logs_service_pb2


def otlp_protobuf(items: list[tuple[dict[str, Any], bytes]]) -> bytes:
    return encode("otlp-protobuf", items)


def endpoint(collector: str, protocol: str) -> str:
    base = collector.rstrip("/")
    if protocol.startswith("otlp"):
        return base if base.endswith("/v1/logs") else base + "/v1/logs"
    if protocol == "splunk-hec":
        return base if "/services/collector" in base else base + "/services/collector/event"
    return base
