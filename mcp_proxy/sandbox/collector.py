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

What each endpoint accepts, and how strictly, is in `sandbox/collector_wire.py`.

The chain check (what an organisation's pipeline can do with what the shipper sends): per
`service.instance.id`, the collector keeps the `audit.record_hash` of the last new record; a new
record must carry it as `prev_hash` (or `""` when it is the instance's first), and the first new
record of an instance in a request must come with `audit.chain.head` equal to it. Anything else is
a break: records deleted or rewritten on the laptop before they were sent, a shipper that lost its
checkpoint, or records the collector refused. Duplicates (same id) are not checked again.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from typing import Any

from mcp_proxy.sandbox.collector_wire import Invalid, decode_body

FAULTS = (None, "down", "429", "400", "413", "500", "partial")


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
            records = decode_body(kind, raw, entry["content_type"])
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
