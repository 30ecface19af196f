"""Input-schema building blocks for the PagerDuty tools (params.py checks the arguments)."""

from __future__ import annotations

import re
from typing import Any

from mcp_proxy.connectors.schema import text

MAX_LIMIT = 100
# Classic pagination refuses offset + limit beyond this (PagerDuty docs, "Pagination").
MAX_WINDOW = 10000
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def ident(what: str) -> dict[str, Any]:
    return {"type": "string", "pattern": ID.pattern, "description": f"The {what}'s id (e.g. PABC123)."}


def ids(what: str, max_items: int = 20, description: str | None = None) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "pattern": ID.pattern}, "uniqueItems": True,
            "minItems": 1, "maxItems": max_items, "description": description or f"Only these {what} ids."}


def enums(description: str, values: list[str]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "enum": values}, "uniqueItems": True, "minItems": 1,
            "description": description}


def date_time(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "maxLength": 40,
            "description": f"{description} ISO 8601 with a time zone, e.g. 2026-11-22T09:00:00Z."}


def paging(default: int, what: str) -> dict[str, Any]:
    return {
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default,
                  "description": f"How many {what} per page (1-{MAX_LIMIT})."},
        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW - 1, "default": 0,
                   "description": "Where the page starts; use next_offset from the previous result. "
                                  f"offset + limit may not exceed {MAX_WINDOW}."},
    }


QUERY = text("Only those whose name contains this text (case-insensitive).", 200, 1)
