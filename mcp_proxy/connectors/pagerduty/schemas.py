"""Input-schema building blocks for the PagerDuty tools (params.py checks the arguments)."""

from __future__ import annotations

import re
from typing import Any

from mcp_proxy.connectors.schema import described, text

MAX_LIMIT = 100
# Classic pagination refuses offset + limit beyond this (PagerDuty docs, "Pagination").
MAX_WINDOW = 10000
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def ident(description: str = "") -> dict[str, Any]:
    return described({"type": "string", "pattern": ID.pattern}, description)


def ids(what: str, max_items: int = 20, description: str | None = None) -> dict[str, Any]:
    return described({"type": "array", "items": {"type": "string", "pattern": ID.pattern}, "uniqueItems": True,
                      "minItems": 1, "maxItems": max_items}, description or "")


def enums(description: str, values: list[str]) -> dict[str, Any]:
    return described({"type": "array", "items": {"type": "string", "enum": values}, "uniqueItems": True,
                      "minItems": 1}, description)


def date_time(description: str = "") -> dict[str, Any]:
    # `format: date-time` is RFC 3339: a time zone is part of it, so it need not be said again.
    return described({"type": "string", "format": "date-time", "maxLength": 40}, description)


def paging(default: int, what: str) -> dict[str, Any]:
    return {
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default},
        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW - 1, "default": 0,
                   "description": f"From next_offset; offset+limit ≤ {MAX_WINDOW}."},
    }


QUERY = text("Name contains (case-insensitive).", 200, 1)
