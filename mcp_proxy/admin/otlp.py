"""OTLP/HTTP JSON logs as the inventory reads them: flat records out of `ExportLogsServiceRequest`s.

A reader, not a validator (the sandbox collector validates): whatever does not decode becomes None. Built for
volume (a collector's file of 100 MB holds a few hundred thousand tool sightings): a LogRecord of another
event is reported by its name alone, without decoding its attributes, and string values (most of them) are
taken without a call per value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def any_value(value: Any) -> Any:
    """The Python value of an OTLP JSON AnyValue."""
    if not isinstance(value, dict) or not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in value:
        return value["doubleValue"]
    if "arrayValue" in value:
        return [any_value(v) for v in _values(value["arrayValue"])]
    if "kvlistValue" in value:
        return attributes(_values(value["kvlistValue"]))
    return None


def attributes(items: Any) -> dict[str, Any]:
    """A list of OTLP KeyValues as a dict (the last of a repeated key wins)."""
    out: dict[str, Any] = {}
    for kv in items if isinstance(items, list) else []:
        if isinstance(kv, dict) and isinstance(key := kv.get("key"), str):
            value = kv.get("value")
            out[key] = value["stringValue"] if isinstance(value, dict) and "stringValue" in value \
                else any_value(value)
    return out


def _values(container: Any) -> list[Any]:
    values = container.get("values") if isinstance(container, dict) else None
    return values if isinstance(values, list) else []


def otlp_records(request: Mapping[str, Any], event: str) -> Iterator[dict[str, Any]]:
    """Flat records from one ExportLogsServiceRequest in JSON: resource attributes, then the LogRecord's
    attributes; `event_name` from `eventName`, `time` from `timeUnixNano` (Unix nanoseconds, as sent), `id`
    from `log.record.uid`.

    A LogRecord that names another event than `event` in `eventName` comes out as `{"event_name": name}`
    only: counted, not decoded."""
    for rl in request.get("resourceLogs") or []:
        if not isinstance(rl, dict):
            continue
        resource: dict[str, Any] | None = None  # decoded once, when a record of the event needs it
        for sl in rl.get("scopeLogs") or []:
            for lr in (sl or {}).get("logRecords") or [] if isinstance(sl, dict) else []:
                if not isinstance(lr, dict):
                    continue
                name = lr.get("eventName")
                if name and name != event:
                    yield {"event_name": name}
                    continue
                if resource is None:
                    resource = attributes((rl.get("resource") or {}).get("attributes"))
                record = {**resource, **attributes(lr.get("attributes"))}
                record["event_name"] = name or record.get("event.name")
                record["time"] = lr.get("timeUnixNano") or lr.get("observedTimeUnixNano")
                record["id"] = record.get("log.record.uid")
                yield record
