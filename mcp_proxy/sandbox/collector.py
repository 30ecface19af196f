"""A log collector emulator: OTLP/HTTP logs (JSON, protobuf), NDJSON and Splunk HEC, with faults.

    app = create_app()                       # or create_app(hec_token="...")
    c = app.state.collector
    c.records                                # received records, first copy of each id, in order
    c.duplicates                             # how many copies of an already received id arrived
    c.fault = "down"                         # None | "down" (503) | "429" | "400" | "413" | "500" | "partial"
    c.script = ["500", "429", None, "413"]   # one fault per request, in order (None: answer normally); while
                                             # it lasts it overrides `fault`
    c.retry_after = "2"                      # Retry-After sent with "down" and "429" (None: no header)
    c.reject = 2                             # how many records "partial" rejects per request
    c.fault_times = 3                        # the fault applies to this many requests, then clears
    c.max_body_bytes = 4096                  # 413 above this many (decompressed) bytes
    c.delay = 5.0                            # keep what arrived, then wait this long before answering
                                             # (a crash of the sender now = "sent but not acknowledged")
    c.chain_breaks                           # [{"instance", "kind", "id", "detail"}]: where a new record does
                                             # not continue what arrived before from its instance (below)
    c.requests                               # [{"path", "status", "records", "encoding", "content_type",
                                             #   "authorization", "at"}] (whether a header was sent, never its
                                             #   value; "at" is time.monotonic() on arrival)

    python -m mcp_proxy.sandbox.collector --port 4318     # prints what arrives

Endpoints: `POST /v1/logs` (OTLP: application/json or application/x-protobuf),
`POST /ndjson` (one JSON object with an "id" per line), `POST /services/collector/event`
(HEC: concatenated event objects; `Authorization: Splunk <token>` when `hec_token` is set).
Bodies may be gzip-compressed (`Content-Encoding: gzip`). "Connection refused" is
what a stopped server gives: stop the thread serving it.

OTLP JSON is validated strictly against the OTLP JSON mapping (stricter than a real
receiver, which ignores unknown fields, so that our own mistakes show): lowerCamelCase
keys only, the resourceLogs → scopeLogs → logRecords shape, 64-bit integers
(`timeUnixNano`, `intValue`, ...) as decimal strings, enums (`severityNumber`) as
integers, AnyValue with exactly one value field, hex trace/span ids, every integer in
its field's range (int64 `intValue`, uint64 times, uint32 `droppedAttributesCount`, fixed32
`flags`). A violation is answered 400 with a google.rpc.Status body naming the path.

The chain check (what an organisation's pipeline can do with what the shipper sends): per
`service.instance.id`, the collector keeps the `audit.record_hash` of the last new record; a new
record must carry it as `prev_hash` (or `""` when it is the instance's first), and the first new
record of an instance in a request must come with `audit.chain.head` equal to it. Anything else is
a break: records deleted or rewritten on the laptop before they were sent, a shipper that lost its
checkpoint, or records the collector refused. Duplicates (same id) are not checked again.

Two rules go beyond the specification, for our shipper's sake: every LogRecord must carry a
`log.record.uid` attribute (our shipper always sends one; a real receiver accepts records
without it), and bodies of every protocol must be strict JSON (a bare NaN or Infinity, which
Python's json module accepts, is refused: other receivers do refuse it).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

FAULTS = (None, "down", "429", "400", "413", "500", "partial")
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


@dataclass
class Collector:
    hec_token: str | None = None
    fault: str | None = None
    fault_times: int | None = None
    retry_after: str | None = None
    reject: int = 1
    max_body_bytes: int | None = None
    delay: float = 0.0
    script: list[str | None] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    chain_breaks: list[dict[str, Any]] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)  # instance -> audit.record_hash of its last record

    def reset(self) -> None:
        self.fault, self.fault_times, self.retry_after, self.reject, self.max_body_bytes = None, None, None, 1, None
        self.delay = 0.0
        self.script.clear()
        self.records.clear()
        self.ids.clear()
        self.duplicates = 0
        self.requests.clear()
        self.chain_breaks.clear()
        self.heads.clear()

    def take(self, records: list[dict[str, Any]]) -> None:
        """Keep one request's records, following each instance's chain (see the module's docstring)."""
        started: set[str] = set()
        for record in records:
            if record.get("id") not in self.ids:
                self.follow(record, started)
            self.keep(record)

    def follow(self, record: dict[str, Any], started: set[str]) -> None:
        digest, instance = record.get("audit.record_hash"), record.get("service.instance.id")
        if not isinstance(digest, str) or not isinstance(instance, str):
            return  # ndjson/HEC: records as spooled, no hash sent (a pipeline would hash the line itself)
        last = self.heads.get(instance)
        where = f"segment {record.get('audit.segment')} seq {record.get('seq')}"

        def broken(kind: str, detail: str) -> None:
            self.chain_breaks.append({"instance": instance, "kind": kind, "id": record.get("id"), "detail": detail})

        head = record.get("audit.chain.head")
        if instance not in started and isinstance(head, str) and head != (last or ""):
            broken("head", f"the batch says the last record delivered is {head[:12] or 'none'}, the collector's "
                           f"last is {(last or 'none')[:12]}")
        started.add(instance)
        prev = record.get("prev_hash")
        if last is None and prev not in ("", None):
            broken("start", f"the first record received ({where}) is not the instance's first: earlier "
                            "records never arrived")
        elif last is not None and prev != last:
            broken("link", f"{where} does not continue the last record received: records between them are "
                           "missing or were rewritten")
        self.heads[instance] = digest

    def keep(self, record: dict[str, Any]) -> None:
        rid = record.get("id")
        if rid in self.ids:
            self.duplicates += 1
            return
        if rid is not None:
            self.ids.add(rid)
        self.records.append(record)

    def active_fault(self) -> str | None:
        if self.script:  # a scripted sequence, so a test can replay a given run of hiccups exactly
            return self.script.pop(0)
        if self.fault is None:
            return None
        fault = self.fault
        if self.fault_times is not None:
            self.fault_times -= 1
            if self.fault_times <= 0:
                self.fault, self.fault_times = None, None
        return fault

    def by_event(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event_name") == event]


# -- OTLP JSON validation and decoding -------------------------------------------
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


# -- the app ---------------------------------------------------------------------
def create_app(*, hec_token: str | None = None) -> Any:
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def status(code: int, grpc: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"code": grpc, "message": message, "details": []}, status_code=code, headers=headers)

    async def handle(request: Request, kind: str) -> Response:
        c: Collector = request.app.state.collector
        entry: dict[str, Any] = {"path": request.url.path, "status": None, "records": 0, "at": time.monotonic(),
                                 "encoding": request.headers.get("content-encoding"),
                                 "content_type": request.headers.get("content-type", ""),
                                 "authorization": "authorization" in request.headers}
        c.requests.append(entry)

        def answer(response: Response) -> Response:
            entry["status"] = response.status_code
            return response

        fault = c.active_fault()
        if fault == "down":
            headers = {"Retry-After": c.retry_after} if c.retry_after else None
            return answer(status(503, 14, "collector unavailable (emulated)", headers))
        if fault == "429":
            headers = {"Retry-After": c.retry_after} if c.retry_after else None
            return answer(status(429, 8, "too many requests (emulated)", headers))
        if fault == "500":
            headers = {"Retry-After": c.retry_after} if c.retry_after else None
            return answer(status(500, 13, "internal error (emulated)", headers))
        if fault == "413":
            return answer(status(413, 8, "request body too large (emulated)"))
        if kind == "hec" and c.hec_token and request.headers.get("authorization") != f"Splunk {c.hec_token}":
            return answer(JSONResponse({"text": "Invalid token", "code": 4}, status_code=403))
        raw = await request.body()
        if entry["encoding"] == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                return answer(status(400, 3, "the body is not valid gzip"))
        if c.max_body_bytes is not None and len(raw) > c.max_body_bytes:
            return answer(status(413, 8, f"request body of {len(raw)} bytes exceeds {c.max_body_bytes}"))
        if fault == "400":
            return answer(status(400, 3, "bad data (emulated)"))
        try:
            records = _decode(kind, raw, entry["content_type"])
        except Invalid as exc:
            return answer(status(400, 3, str(exc)))
        except (ValueError, UnicodeDecodeError) as exc:
            return answer(status(400, 3, f"unparseable body ({type(exc).__name__})"))
        rejected = min(c.reject, len(records)) if fault == "partial" else 0
        c.take(records[rejected:])
        entry["records"] = len(records) - rejected
        waited = 0.0
        while waited < c.delay:
            await anyio.sleep(0.05)
            waited += 0.05
        return answer(_success(kind, entry["content_type"], rejected))

    def _success(kind: str, content_type: str, rejected: int) -> Response:
        if kind == "hec":
            return JSONResponse({"text": "Success", "code": 0})
        if kind == "ndjson":
            return JSONResponse({"accepted": True})
        body: dict[str, Any] = {}
        if rejected:
            body = {"partialSuccess": {"rejectedLogRecords": str(rejected),
                                       "errorMessage": f"{rejected} records rejected (emulated)"}}
        if "protobuf" in content_type:
            from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

            msg = logs_service_pb2.ExportLogsServiceResponse()
            if rejected:
                msg.partial_success.rejected_log_records = rejected
                msg.partial_success.error_message = body["partialSuccess"]["errorMessage"]
            return Response(msg.SerializeToString(), media_type="application/x-protobuf")
        return JSONResponse(body)

    def _decode(kind: str, raw: bytes, content_type: str) -> list[dict[str, Any]]:
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

    async def otlp(request: Request) -> Response:
        return await handle(request, "otlp")

    async def ndjson(request: Request) -> Response:
        return await handle(request, "ndjson")

    async def hec(request: Request) -> Response:
        return await handle(request, "hec")

    app = Starlette(routes=[Route("/v1/logs", otlp, methods=["POST"]), Route("/ndjson", ndjson, methods=["POST"]),
                            Route("/services/collector/event", hec, methods=["POST"])])
    app.state.collector = Collector(hec_token=hec_token)
    return app


def main() -> None:  # pragma: no cover - a manual tool
    import argparse

    from mcp_proxy.sandbox.asgi_thread import serve_in_thread

    p = argparse.ArgumentParser(description="a local log collector emulator (OTLP/HTTP, NDJSON, Splunk HEC)")
    p.add_argument("--port", type=int, default=4318)
    p.add_argument("--hec-token")
    args = p.parse_args()
    app = create_app(hec_token=args.hec_token)
    server = serve_in_thread(app, port=args.port)
    print(f"collector emulator on {server.url} (/v1/logs, /ndjson, /services/collector/event); Ctrl-C stops")
    c, shown = app.state.collector, 0
    try:
        while True:
            time.sleep(0.5)
            for record in c.records[shown:]:
                print(f"{record.get('event_name')}: {record.get('body') or record.get('id')}")
            shown = len(c.records)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
