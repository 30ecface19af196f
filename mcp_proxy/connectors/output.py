"""Turning vendor data into a tool result of bounded size."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp_proxy.connectors.base import ToolOutput


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, default=str)


def list_output(
    summary: str,
    key: str,
    items: list[Any],
    max_chars: int,
    *,
    extra: dict[str, Any] | None = None,
    next_hint: str | None = None,
) -> ToolOutput:
    """A list result: `{key: items, **extra}`, trimmed to `max_chars`.

    When the items do not fit, the tail is dropped and both the text and the
    structured result say how many were left out (`truncated`, `omitted`), so
    the model can ask for fewer or for the next page.
    """
    extra = dict(extra or {})
    kept = list(items)
    omitted = 0
    while True:
        structured = {key: kept, **extra}
        if omitted:
            structured["truncated"] = True
            structured["omitted"] = omitted
        text_body = _dump(structured)
        if len(text_body) <= max_chars or not kept:
            break
        # Drop in proportion to the overshoot, at least one item.
        drop = max(1, int(len(kept) * (1 - max_chars / len(text_body))))
        kept = kept[: len(kept) - drop]
        omitted += drop
    lines = [summary]
    if omitted:
        lines.append(
            f"Note: {omitted} of {len(items)} {key} were left out to keep the result under {max_chars} characters; "
            "ask for a smaller page (limit) or narrow the filters."
        )
    if next_hint:
        lines.append(next_hint)
    lines.append(text_body)
    return ToolOutput(text="\n".join(lines), structured=structured)


def settled_list_output(summary: str, key: str, items: list[Any], max_chars: int,
                        page: Callable[[int], tuple[dict[str, Any], str]]) -> ToolOutput:
    """`list_output` whose paging data (`extra`, next hint) depends on how many items it keeps:
    `page(kept)` gives both. A pointer to the next page must account for items trimmed away for
    size, so that following it never skips what the model was not shown. The pointer's own length
    barely changes the size, so this settles at once; three rounds bound it anyway."""
    kept = len(items)
    for _ in range(3):
        extra, hint = page(kept)
        out = list_output(summary, key, items, max_chars, extra=extra, next_hint=hint)
        shown = len((out.structured or {}).get(key) or [])
        if shown == kept:
            break
        kept = shown
    return out


def object_output(summary: str, data: dict[str, Any], max_chars: int) -> ToolOutput:
    """A single-object result; oversize text is cut with a note (the structured copy stays whole)."""
    body = _dump(data)
    if len(body) > max_chars:
        body = body[:max_chars] + f"\n… (cut: {len(body) - max_chars} more characters in structuredContent)"
    return ToolOutput(text=f"{summary}\n{body}", structured=data)
