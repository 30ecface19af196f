"""PagerDuty request parameters from tool arguments (ids, time windows, arrays, classic paging),
and paged results whose next offset never skips what was trimmed for size."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import settled_list_output
from mcp_proxy.connectors.pagerduty.schemas import ID, MAX_LIMIT, MAX_WINDOW
from mcp_proxy.connectors.schema import iso_datetime


def segment(value: Any, name: str = "id") -> str:
    """An id as one URL path segment."""
    raw = str(value or "").strip()
    if not ID.match(raw):
        raise ConnectorError(f"{name} must be a PagerDuty id such as PABC123 (letters and digits), not {raw[:40]!r}",
                             "bad_argument")
    return quote(raw, safe="")


def window(args: dict[str, Any], params: list[tuple[str, Any]], *, required: bool = False) -> None:
    """Adds `since`/`until` (checked, UTC) to params; both required when `required`."""
    for name in ("since", "until"):
        if args.get(name) is not None:
            params.append((name, iso_datetime(args[name], name)))
        elif required:
            raise ConnectorError(f"{name} is required (an ISO 8601 date-time such as 2026-11-22T09:00:00Z)",
                                 "bad_argument")
    given = dict(params)
    if "since" in given and "until" in given and given["since"] > given["until"]:
        raise ConnectorError("since must be before until", "bad_argument")


def add_list(params: list[tuple[str, Any]], name: str, values: Any) -> None:
    """Array parameters as PagerDuty wants them: `name[]=a&name[]=b` (literal brackets)."""
    for value in values or []:
        params.append((f"{name}[]", value))


def page_args(args: dict[str, Any], default: int) -> tuple[int, int]:
    limit = args.get("limit", default)
    offset = args.get("offset", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ConnectorError(f"limit must be an integer from 1 to {MAX_LIMIT}", "bad_argument")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ConnectorError("offset must be an integer ≥ 0 (use next_offset from a previous result)", "bad_argument")
    if offset + limit > MAX_WINDOW:
        raise ConnectorError(
            f"offset + limit is {offset + limit}, but PagerDuty's classic pagination stops at {MAX_WINDOW} records "
            "(offset + limit may not exceed it). Narrow the search instead, e.g. a shorter since/until window or "
            "more filters, and page through that.", "bad_argument")
    return limit, offset


def paged_output(summary: str, key: str, items: list[Any], max_chars: int, *, tool: str, offset: int,
                 more: bool, total: Any = None) -> ToolOutput:
    """A page of a classic-paginated list; its next offset accounts for items trimmed for size."""
    def page(kept: int) -> tuple[dict[str, Any], str]:
        has_next = more or kept < len(items)
        pointer = offset + kept if has_next else None
        if pointer is not None and pointer >= MAX_WINDOW:
            hint = (f"More {key} match, but PagerDuty cannot page past {MAX_WINDOW} records: narrow the filters "
                    "(e.g. a shorter since/until window).")
            pointer = None
        elif pointer is not None:
            hint = f"More {key} match: call {tool} again with offset={pointer} (same filters)."
        else:
            hint = "This is the last page."
        extra: dict[str, Any] = {"offset": offset, "more": has_next, "next_offset": pointer}
        if total is not None:
            extra["total"] = total
        return extra, hint
    return settled_list_output(summary, key, items, max_chars, page)
