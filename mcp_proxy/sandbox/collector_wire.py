"""What the log collector emulator (sandbox/collector.py) accepts on the wire: each endpoint's body decoded
into records, and checked.

OTLP JSON is validated strictly against the OTLP JSON mapping (stricter than a real
receiver, which ignores unknown fields, so that our own mistakes show): lowerCamelCase
keys only, the resourceLogs → scopeLogs → logRecords shape, 64-bit integers
(`timeUnixNano`, `intValue`, ...) as decimal strings, enums (`severityNumber`) as
integers, AnyValue with exactly one value field, hex trace/span ids, every integer in
its field's range (int64 `intValue`, uint64 times, uint32 `droppedAttributesCount`, fixed32
`flags`). A violation is answered 400 with a google.rpc.Status body naming the path.

Two rules go beyond the specification, for our shipper's sake: every LogRecord must carry a
`log.record.uid` attribute (our shipper always sends one; a real receiver accepts records
without it), and bodies of every protocol must be strict JSON (a bare NaN or Infinity, which
Python's json module accepts, is refused: other receivers do refuse it).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

_INT64 = re.compile(r"^-?\d{1,19}$")
_UINT64 = re.compile(r"^\d{1,20}$")
INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)
UINT64_MAX = 2 ** 64 - 1
UINT32_MAX = 2 ** 32 - 1
_HEX = {"traceId": 32, "spanId": 16}

RESOURCE_LOGS_KEYS = {"resource", "scopeLogs", "schemaUrl"}
RESOURCE_KEYS = {"attributes", "droppedAttributesCount", "entityRefs"}
SCOPE_LOGS_KEYS = {"scope", "logRecords", "schemaUrl"}
SCOPE_KEYS = {"name", "version", "attributes", "droppedAttributesCount"}
LOG_RECORD_KEYS = {"timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body", "attributes",
                   "droppedAttributesCount", "flags", "traceId", "spanId", "eventName"}
ANY_VALUE_KEYS = {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue"}


class Invalid(Exception):
    """The payload breaks the OTLP JSON mapping; the message names where."""


def decode_body(kind: str, raw: bytes, content_type: str) -> list[dict[str, Any]]:
    """The records of a request body to endpoint `kind` ("otlp", "ndjson", "hec"). Raises Invalid, or
    ValueError/UnicodeDecodeError for a body that is not even text or JSON."""
    if kind == "otlp":
        if "protobuf" in content_type:
            try:
                return decode_otlp_protobuf(raw)
            except Invalid:
                raise
            except ImportError:
                raise Invalid("protobuf needs opentelemetry-proto installed in the emulator") from None
            except Exception as exc:  # noqa: BLE001 - a DecodeError of any protobuf version
                raise Invalid(f"not a valid ExportLogsServiceRequest ({type(exc).__name__})") from None
        if "json" not in content_type:
            raise Invalid(f"unsupported Content-Type {content_type!r}; use application/json or "
                          "application/x-protobuf")
        return decode_otlp(strict_json(raw))
    if kind == "hec":
        return decode_hec(raw.decode("utf-8"))
    out = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            value = strict_json(line)
            if not isinstance(value, dict) or "id" not in value:
                raise Invalid(f"line {n}: each NDJSON line must be a JSON object with an \"id\"")
            out.append(value)
    return out


def _keys(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Invalid(f"{where}: must be an object")
    for key in obj:
        if key not in allowed:
            hint = " (keys are lowerCamelCase in OTLP JSON)" if "_" in key else ""
            raise Invalid(f"{where}.{key}: unknown field{hint}")
    return obj


def _list(obj: Any, where: str) -> list[Any]:
    if not isinstance(obj, list):
        raise Invalid(f"{where}: must be an array")
    return obj


def _int64_string(value: Any, where: str, unsigned: bool = False) -> int:
    if not isinstance(value, str) or not (_UINT64 if unsigned else _INT64).match(value):
        raise Invalid(f"{where}: 64-bit integers are decimal strings in OTLP JSON, got {value!r}")
    number = int(value)
    low, high = (0, UINT64_MAX) if unsigned else INT64_RANGE
    if not low <= number <= high:
        raise Invalid(f"{where}: {value} is out of the {'uint64' if unsigned else 'int64'} range")
    return number


def _uint32(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32_MAX:
        raise Invalid(f"{where}: must be an integer from 0 to {UINT32_MAX} (32 bits, unsigned), got {value!r}")
    return value


def strict_json(raw: str | bytes) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity (not JSON, though Python accepts them)."""
    return json.loads(raw, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise Invalid(f"{constant} is not JSON")


def any_value(value: Any, where: str) -> Any:
    _keys(value, ANY_VALUE_KEYS, where)
    if len(value) > 1:
        raise Invalid(f"{where}: an AnyValue holds exactly one of {', '.join(sorted(ANY_VALUE_KEYS))}")
    if not value:
        return None
    (kind, v), = value.items()
    if kind == "stringValue":
        if not isinstance(v, str):
            raise Invalid(f"{where}.stringValue: must be a string")
        return v
    if kind == "boolValue":
        if not isinstance(v, bool):
            raise Invalid(f"{where}.boolValue: must be true or false")
        return v
    if kind == "intValue":
        return _int64_string(v, f"{where}.intValue")
    if kind == "doubleValue":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Invalid(f"{where}.doubleValue: must be a number")
        return float(v)
    if kind == "bytesValue":
        try:
            return base64.b64decode(v, validate=True)
        except (ValueError, TypeError):
            raise Invalid(f"{where}.bytesValue: must be base64") from None
    if kind == "arrayValue":
        _keys(v, {"values"}, f"{where}.arrayValue")
        return [any_value(x, f"{where}.arrayValue.values[{i}]") for i, x in enumerate(_list(v.get("values", []),
                                                                                           f"{where}.arrayValue.values"))]
    _keys(v, {"values"}, f"{where}.kvlistValue")
    return attributes(v.get("values", []), f"{where}.kvlistValue.values")


def attributes(items: Any, where: str) -> dict[str, Any]:
    out = {}
    for i, kv in enumerate(_list(items, where)):
        _keys(kv, {"key", "value"}, f"{where}[{i}]")
        if not isinstance(kv.get("key"), str):
            raise Invalid(f"{where}[{i}].key: must be a string")
        out[kv["key"]] = any_value(kv.get("value", {}), f"{where}[{i}].value")
    return out


def decode_otlp(data: Any) -> list[dict[str, Any]]:
    """Records (attributes flattened; `id` from log.record.uid) from an ExportLogsServiceRequest in JSON."""
    _keys(data, {"resourceLogs"}, "(request)")
    out = []
    for i, rl in enumerate(_list(data.get("resourceLogs", []), "resourceLogs")):
        where = f"resourceLogs[{i}]"
        _keys(rl, RESOURCE_LOGS_KEYS, where)
        resource = _keys(rl.get("resource", {}), RESOURCE_KEYS, f"{where}.resource")
        res_attrs = attributes(resource.get("attributes", []), f"{where}.resource.attributes")
        if "droppedAttributesCount" in resource:
            _uint32(resource["droppedAttributesCount"], f"{where}.resource.droppedAttributesCount")
        for j, sl in enumerate(_list(rl.get("scopeLogs", []), f"{where}.scopeLogs")):
            swhere = f"{where}.scopeLogs[{j}]"
            _keys(sl, SCOPE_LOGS_KEYS, swhere)
            scope = _keys(sl.get("scope", {}), SCOPE_KEYS, f"{swhere}.scope")
            if "attributes" in scope:
                attributes(scope["attributes"], f"{swhere}.scope.attributes")
            if "droppedAttributesCount" in scope:
                _uint32(scope["droppedAttributesCount"], f"{swhere}.scope.droppedAttributesCount")
            for k, lr in enumerate(_list(sl.get("logRecords", []), f"{swhere}.logRecords")):
                out.append(_log_record(lr, f"{swhere}.logRecords[{k}]", res_attrs))
    return out


def _log_record(lr: Any, where: str, res_attrs: dict[str, Any]) -> dict[str, Any]:
    _keys(lr, LOG_RECORD_KEYS, where)
    for key in ("timeUnixNano", "observedTimeUnixNano"):
        if key in lr:
            _int64_string(lr[key], f"{where}.{key}", unsigned=True)
    if "severityNumber" in lr:
        sev = lr["severityNumber"]
        if isinstance(sev, bool) or not isinstance(sev, int) or not 0 <= sev <= 24:
            raise Invalid(f"{where}.severityNumber: enums are integers 0..24 in OTLP JSON, got {sev!r}")
    for key in ("severityText", "eventName"):
        if key in lr and not isinstance(lr[key], str):
            raise Invalid(f"{where}.{key}: must be a string")
    for key, size in _HEX.items():
        if key in lr and lr[key] != "" and not re.fullmatch(f"[0-9a-f]{{{size}}}", str(lr[key])):
            raise Invalid(f"{where}.{key}: must be {size} lowercase hex digits (not base64) in OTLP JSON")
    for key in ("flags", "droppedAttributesCount"):
        if key in lr:
            _uint32(lr[key], f"{where}.{key}")
    attrs = attributes(lr.get("attributes", []), f"{where}.attributes")
    if not isinstance(attrs.get("log.record.uid"), str) or not attrs["log.record.uid"]:
        raise Invalid(f"{where}.attributes: no log.record.uid (a string): this emulator needs it, since "
                      "mcp-access-proxy always sends one (a real receiver would accept the record)")
    record = {**res_attrs, **attrs}
    record["id"] = attrs.get("log.record.uid")
    record["event_name"] = lr.get("eventName")
    record["time_unix_nano"] = lr.get("timeUnixNano")
    record["severity_number"] = lr.get("severityNumber")
    record["body"] = any_value(lr["body"], f"{where}.body") if "body" in lr else None
    return record


def decode_otlp_protobuf(body: bytes) -> list[dict[str, Any]]:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    message = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    return decode_otlp(json_format.MessageToDict(message, use_integers_for_enums=True))


def decode_hec(text: str) -> list[dict[str, Any]]:
    decoder, i = json.JSONDecoder(parse_constant=_not_json), 0
    out: list[dict[str, Any]] = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        event, i = decoder.raw_decode(text, i)
        if not isinstance(event, dict) or "event" not in event:
            raise Invalid("each HEC event object needs an \"event\" field")
        inner = event["event"]
        out.append(inner if isinstance(inner, dict) else {"event": inner})
