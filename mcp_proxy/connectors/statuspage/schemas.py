"""Input-schema building blocks and paged results for the Statuspage tools (limits from the spec)."""

from __future__ import annotations

from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import settled_list_output

MAX_PAGE_SIZE = 100  # Statuspage's default and cap for most lists since 2023-02-28
ID_PATTERN = "^[A-Za-z0-9_-]+$"
COMPONENT_STATUSES = ["operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"]
INCIDENT_STATUSES = ["investigating", "identified", "monitoring", "resolved"]
MAINTENANCE_STATUSES = ["scheduled", "in_progress", "verifying", "completed"]
IMPACTS = ["none", "maintenance", "minor", "major", "critical"]


def ident(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 64, "pattern": ID_PATTERN, "description": description}


def flag(description: str, default: bool | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "boolean", "description": description}
    if default is not None:
        schema["default"] = default
    return schema


PAGE_ID = ident("Default: the configured page.")
ORGANIZATION_ID = ident("Default: the configured organization.")
DELIVER_NOTIFICATIONS = flag("true notifies the subscribers (email, SMS, webhooks); false is silent.")
# `format: date-time` is RFC 3339: a time zone is part of it, so it need not be said again.
DATE_TIME = {"type": "string", "format": "date-time", "maxLength": 40}
COMPONENT_MAP = {
    "type": "object", "maxProperties": 50,
    "propertyNames": {"pattern": ID_PATTERN, "maxLength": 64},
    "additionalProperties": {"type": "string", "enum": COMPONENT_STATUSES},
    "description": "{component_id: status} to set.",
}


def page_arg(zero_based: bool = False) -> dict[str, Any]:
    # The minimum says where pages start (0 or 1).
    first = 0 if zero_based else 1
    return {"type": "integer", "minimum": first, "maximum": 100000, "default": first}


def size_arg(default: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": min(default, MAX_PAGE_SIZE)}


def integer(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConnectorError(f"{name} must be an integer from {low} to {high}", "bad_argument")
    return value


def required_flag(args: dict[str, Any], name: str = "deliver_notifications") -> bool:
    value = args.get(name)
    if not isinstance(value, bool):
        raise ConnectorError(f"{name} is required and must be true or false: true notifies the page's subscribers, "
                             "false does not; decide which is intended", "bad_argument")
    return value


def required_text(args: dict[str, Any], name: str, max_length: int) -> str:
    value = str(args.get(name) or "").strip()
    if not value:
        raise ConnectorError(f"{name} must not be empty", "bad_argument")
    if len(value) > max_length:
        raise ConnectorError(f"{name} may have at most {max_length} characters (it has {len(value)})", "bad_argument")
    return value


def optional_text(body: dict[str, Any], args: dict[str, Any], name: str, max_length: int) -> None:
    """Puts `name` into `body` when the tool was given it (checked as `required_text` does)."""
    if args.get(name):
        body[name] = required_text(args, name, max_length)


def component_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConnectorError("components must be an object {component_id: status}", "bad_argument")
    out = {}
    for cid, status in value.items():
        if status not in COMPONENT_STATUSES:
            raise ConnectorError(f"components[{cid!r}] must be one of {', '.join(COMPONENT_STATUSES)}", "bad_argument")
        out[str(cid)] = status
    return out


def compact(item: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The listed fields that carry a value (Statuspage sends many nulls and empty strings)."""
    if not isinstance(item, dict):
        return {}
    return {f: item[f] for f in fields if item.get(f) not in (None, "", [])}


def paged_output(summary: str, key: str, items: list[Any], max_chars: int, *, tool: str, page: int, size: int,
                 size_name: str = "per_page", zero_based: bool = False) -> ToolOutput:
    """A page of a bare-array list. Statuspage gives no totals or links, so a full page means more may
    exist. When items are trimmed for size, the next pointer asks for a smaller page that starts at or
    before the first item left out, so following it never skips anything."""
    full = len(items) >= size
    first = page if zero_based else page - 1  # 0-based page number, to compute item positions

    def pointer(kept: int) -> tuple[dict[str, Any], str]:
        nxt: dict[str, int] | None
        if kept < len(items):
            start = first * size + kept  # the first item left out, 0-based over the whole list
            smaller = max(1, kept)
            nxt = {"page": start // smaller + (0 if zero_based else 1), size_name: smaller}
            hint = (f"{len(items) - kept} items of this page were left out for size; to see them call {tool} with "
                    f"page={nxt['page']} and {size_name}={smaller} (it may repeat a few items already shown).")
        elif full:
            nxt = {"page": page + 1, size_name: size}
            hint = f"The page is full, so more may exist: call {tool} again with page={page + 1} ({size_name}={size})."
        else:
            nxt = None
            hint = "This is the last page."
        return {"page": page, size_name: size, "more_may_exist": full or kept < len(items), "next": nxt}, hint

    return settled_list_output(summary, key, items, max_chars, pointer)
