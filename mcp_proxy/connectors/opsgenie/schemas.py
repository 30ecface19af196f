"""Input-schema building blocks for the Opsgenie tools (limits from Opsgenie's docs and spec)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import settled_list_output
from mcp_proxy.connectors.schema import enum, text

MAX_LIMIT = 100


def limit(default: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default}


DATE_TIME = {"type": "string", "maxLength": 40, "description": "ISO 8601 date-time with zone."}

ALERT_IDENTIFIER = text("Alert id, alias or tiny id (the short number in the UI), per identifierType.", 512, 1)
ALERT_IDENTIFIER_TYPE = enum("", ["id", "alias", "tiny"], "id")
NAMED_IDENTIFIER_TYPE = enum("", ["id", "name"], "id")
NOTE = text("Optional note added with this action.", 25000)


def named_identifier(what: str) -> dict[str, Any]:
    return text(f"The {what}'s id, or name per identifierType.", 512, 1)


def segment(value: Any) -> str:
    """A user-supplied identifier as one URL path segment (an alias may contain '/', '?', spaces)."""
    value = str(value or "").strip()
    if not value:
        raise ConnectorError("identifier must not be empty", "bad_argument")
    return quote(value, safe="")


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


def paged_output(summary: str, key: str, items: list[Any], max_chars: int, *, extra: dict[str, Any],
                 next_value: Callable[[int], Any], hint: Callable[[Any], str]) -> ToolOutput:
    """`list_output` whose next-page pointer, `next_value(kept)`, accounts for items trimmed away for size."""
    def page(kept: int) -> tuple[dict[str, Any], str]:
        pointer = next_value(kept)
        return {**extra, "next_offset": pointer}, hint(pointer)
    return settled_list_output(summary, key, items, max_chars, page)
