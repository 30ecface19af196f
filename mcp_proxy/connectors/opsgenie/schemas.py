"""Input-schema building blocks for the Opsgenie tools (limits from Opsgenie's docs and spec).

Shared with the JSM Operations backend, which offers the same tools with the same arguments: the shapes and
limits live here once, and each backend passes in only the descriptions it words its own way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import settled_list_output
from mcp_proxy.connectors.schema import described, enum, obj, text

MAX_LIMIT = 100


def limit(default: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default}


DATE_TIME = {"type": "string", "maxLength": 40, "description": "ISO 8601 date-time with zone."}

ALERT_IDENTIFIER = text("Alert id, alias or tiny id, per identifierType.", 512, 1)
ALERT_IDENTIFIER_TYPE = enum("", ["id", "alias", "tiny"], "id")
NAMED_IDENTIFIER_TYPE = enum("", ["id", "name"], "id")
NOTE = text("Added with this action.", 25000)


def named_identifier(what: str) -> dict[str, Any]:
    return text(f"{what.capitalize()} id or name, per identifierType.", 512, 1)


def named(what: str) -> dict[str, Any]:
    """The input schema of a tool that takes one thing by id or name."""
    return obj({"identifier": named_identifier(what), "identifierType": NAMED_IDENTIFIER_TYPE}, ("identifier",))


# One alert, by id, alias or tiny id: the arguments every alert tool starts with.
IDENT = {"identifier": ALERT_IDENTIFIER, "identifierType": ALERT_IDENTIFIER_TYPE}
IDENT_REQUIRED = ("identifier",)
RESPONDER = obj({
    "type": enum("", ["team", "user", "escalation", "schedule"]),
    "id": text("", 512),
    "name": text("Instead of id (team, escalation, schedule).", 512),
    "username": text("Instead of id (user, usually the email).", 512),
}, ("type",))
VISIBLE_TO = obj({
    "type": enum("", ["team", "user"]),
    "id": text("", 512),
    "name": text("Team name, instead of id.", 512),
    "username": text("Username, instead of id.", 512),
}, ("type",))
REQUEST_ID = obj({"requestId": {"type": "string", "minLength": 1, "maxLength": 128,
                                 "pattern": "^[A-Za-z0-9_.:-]+$"}},
                 ("requestId",))


def on_alert(fields: dict[str, Any] | None = None, required: tuple[str, ...] = IDENT_REQUIRED) -> dict[str, Any]:
    """The input schema of a tool on one alert: the identifier, then `fields` (by default an optional note)."""
    return obj({**IDENT, **({"note": NOTE} if fields is None else fields)}, required)


def new_alert(*, responders: str, details: str) -> dict[str, Any]:
    """The input schema of create_alert (Opsgenie's limits, which JSM keeps); each backend says who can be
    notified and where custom properties go."""
    return obj({"message": text("", 130, 1),
                "alias": text("Your key for de-duplication and later actions.", 512),
                "description": text("Details for responders.", 15000),
                "responders": described({"type": "array", "maxItems": 50, "items": RESPONDER}, responders),
                "visibleTo": described({"type": "array", "maxItems": 50, "items": VISIBLE_TO},
                                       "Who may see it without being notified."),
                "actions": {"type": "array", "maxItems": 10, "items": text("", 50, 1)},
                "tags": {"type": "array", "maxItems": 20, "items": text("", 50, 1)},
                "details": described({"type": "object", "maxProperties": 100,
                                      "additionalProperties": {"type": "string", "maxLength": 8000}}, details),
                "entity": text("What it is about, e.g. a host.", 512),
                "priority": enum("", ["P1", "P2", "P3", "P4", "P5"], "P3"),
                "note": text("", 25000)}, ("message",))


# add_alert_note: the note, which the vendors need non-empty.
ADD_NOTE = on_alert({"note": text("", 25000, 1)}, ("identifier", "note"))
# snooze_alert: until endTime, or for minutes (at most 30 days).
SNOOZE = on_alert({"endTime": {**DATE_TIME, "description": "Future end, ISO 8601."},
                   "minutes": {"type": "integer", "minimum": 1, "maximum": 43200, "description": "Instead of endTime."},
                   "note": NOTE})
# escalate_alert: the escalation by id or name.
ESCALATE = on_alert({"escalation": obj({"id": text("", 512), "name": text("Instead of id.", 512)}), "note": NOTE},
                    ("identifier", "escalation"))


def assign(*, account_id: str, username: str) -> dict[str, Any]:
    """The input schema of assign_alert: the new owner by id or username."""
    return on_alert({"owner": obj({"id": text(account_id, 512), "username": text(username, 512)}), "note": NOTE},
                    ("identifier", "owner"))


# The directory tools' arguments.
EMPTY = obj({})
TIMELINES = ["base", "forwarding", "override"]
ON_CALL = obj({"identifier": named_identifier("schedule"), "identifierType": NAMED_IDENTIFIER_TYPE,
               "flat": {"type": "boolean", "default": False,
                        "description": "Only the recipients' names, not the participants' details."},
               "date": {**DATE_TIME, "description": "ISO 8601 with zone; default now."}},
              ("identifier",))
TIMELINE = obj({"identifier": named_identifier("schedule"), "identifierType": NAMED_IDENTIFIER_TYPE,
                "interval": {"type": "integer", "minimum": 1, "maximum": 12, "default": 1,
                             "description": "Window length, in intervalUnit."},
                "intervalUnit": enum("", ["days", "weeks", "months"], "weeks"),
                "date": {**DATE_TIME, "description": "Window start, ISO 8601 with zone; default now."},
                "expand": {"type": "array", "maxItems": 3, "uniqueItems": True,
                           "items": {"type": "string", "enum": TIMELINES},
                           "description": "Also return these timelines."}}, ("identifier",))
LIST_SCHEDULES = obj({"expandRotations": {"type": "boolean", "default": False,
                                          "description": "Include each schedule's rotations."}})


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
