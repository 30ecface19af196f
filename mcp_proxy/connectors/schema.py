"""JSON Schema building blocks and argument checks every connector uses.

Vendor `schemas.py` modules add their own limits and shapes on top of these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp_proxy.connectors.base import ConnectorError


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: a property the tool does not know is refused before anything is sent."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """`schema` with `description`, when there is one: a property whose name, type and limits say it all goes
    without (every word of a tool list is paid in the model's context on every conversation)."""
    if description:
        schema["description"] = description
    return schema


def text(description: str, max_length: int, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = described({"type": "string", "maxLength": max_length}, description)
    if min_length:
        schema["minLength"] = min_length
    return schema


def enum(description: str, values: list[str], default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = described({"type": "string", "enum": values}, description)
    if default is not None:
        schema["default"] = default
    return schema


def pick(args: dict[str, Any], *names: str) -> dict[str, Any]:
    """The given arguments that are present and not None."""
    return {n: args[n] for n in names if args.get(n) is not None}


def utc(value: Any, name: str) -> datetime:
    """A time-zone-aware ISO 8601 date-time, as UTC. A naive one is refused: its zone would be a guess."""
    raw = str(value or "").strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConnectorError(f"{name} must be an ISO 8601 date-time such as 2026-11-22T09:00:00Z, not {raw[:40]!r}",
                             "bad_argument") from None
    if parsed.tzinfo is None:
        raise ConnectorError(f"{name} needs a time zone, e.g. {raw}Z for UTC", "bad_argument")
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    """`2026-11-22T09:00:00Z`: the form the vendors document."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_datetime(value: Any, name: str) -> str:
    """`utc(value, name)` written as `iso` does."""
    return iso(utc(value, name))
