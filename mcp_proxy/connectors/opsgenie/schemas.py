"""Input-schema building blocks for the Opsgenie tools (limits from Opsgenie's docs and spec)."""

from __future__ import annotations

from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import list_output

MAX_LIMIT = 100


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def text(description: str, max_length: int, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "description": description}
    if min_length:
        schema["minLength"] = min_length
    return schema


def enum(description: str, values: list[str], default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": values, "description": description}
    if default is not None:
        schema["default"] = default
    return schema


def limit(default: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default,
            "description": f"How many {what} to return (1-{MAX_LIMIT})."}


DATE_TIME = {"type": "string", "maxLength": 40,
             "description": "ISO 8601 date-time with a time zone, e.g. 2026-11-22T09:00:00Z."}

ALERT_IDENTIFIER = text("The alert: its id (default), its alias, or its tiny id (the short number shown in the UI); "
                        "say which in identifierType.", 512, 1)
ALERT_IDENTIFIER_TYPE = enum("What `identifier` is: id, alias or tiny.", ["id", "alias", "tiny"], "id")
NAMED_IDENTIFIER_TYPE = enum("What `identifier` is: id (default) or name.", ["id", "name"], "id")
NOTE = text("An optional note to add to the alert with this action.", 25000)


def named_identifier(what: str) -> dict[str, Any]:
    return text(f"The {what}'s id, or its name when identifierType is 'name'.", 512, 1)


def segment(value: Any) -> str:
    """A user-supplied identifier as one URL path segment (an alias may contain '/', '?', spaces)."""
    value = str(value or "").strip()
    if not value:
        raise ConnectorError("identifier must not be empty", "bad_argument")
    return quote(value, safe="")


def pick(args: dict[str, Any], *names: str) -> dict[str, Any]:
    """The given arguments that are present and not None."""
    return {n: args[n] for n in names if args.get(n) is not None}


def page_limit(args: dict[str, Any], default: int) -> int:
    value = args.get("limit", default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConnectorError(f"limit must be an integer from 1 to {MAX_LIMIT}", "bad_argument")
    return max(1, min(MAX_LIMIT, value))


def non_negative(args: dict[str, Any], name: str) -> int:
    value = args.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConnectorError(f"{name} must be an integer ≥ 0 (use the value a previous result gave)", "bad_argument")
    return value


def iso_datetime(value: Any, name: str) -> str:
    """A time-zone-aware ISO 8601 date-time, normalised to UTC (`...Z`) as Opsgenie documents it."""
    raw = str(value or "").strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConnectorError(f"{name} must be an ISO 8601 date-time such as 2026-11-22T09:00:00Z, not {raw[:40]!r}",
                             "bad_argument") from None
    if parsed.tzinfo is None:
        raise ConnectorError(f"{name} needs a time zone, e.g. {raw}Z for UTC", "bad_argument")
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def paged_output(summary: str, key: str, items: list[Any], max_chars: int, *, extra: dict[str, Any],
                 next_value: Callable[[int], Any], hint: Callable[[Any], str]) -> ToolOutput:
    """`list_output` whose next-page pointer accounts for items trimmed away for size, so that
    following it never skips what the model was not shown. `next_value(kept)` gives the pointer."""
    kept = len(items)
    for _ in range(3):  # the pointer's length barely changes the size: this settles at once
        pointer = next_value(kept)
        out = list_output(summary, key, items, max_chars, extra={**extra, "next_offset": pointer},
                          next_hint=hint(pointer))
        shown = len((out.structured or {}).get(key) or [])
        if shown == kept:
            break
        kept = shown
    return out
