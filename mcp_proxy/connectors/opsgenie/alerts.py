"""Alert tools: search, read, and the asynchronous alert writes."""

from __future__ import annotations

from typing import Any, Protocol

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.opsgenie.client import AsyncWrites, next_query
from mcp_proxy.connectors.opsgenie.schemas import (
    ALERT_IDENTIFIER,
    ALERT_IDENTIFIER_TYPE,
    DATE_TIME,
    NOTE,
    limit,
    non_negative,
    page_limit,
    paged_output,
    segment,
)
from mcp_proxy.connectors.opsgenie.writes import action_body, recipients, with_actor, write_result
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.schema import enum, obj, pick, text
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

SORT_FIELDS = ["createdAt", "updatedAt", "tinyId", "alias", "message", "status", "acknowledged", "isSeen",
               "snoozed", "snoozedUntil", "count", "lastOccurredAt", "source", "owner", "integration.name",
               "integration.type", "report.ackTime", "report.closeTime", "report.acknowledgedBy",
               "report.closedBy"]
# What a list shows per alert; get_alert has the rest (responders, integration, report, details).
LIST_FIELDS = ("id", "tinyId", "alias", "message", "status", "acknowledged", "snoozed", "snoozedUntil", "priority",
               "count", "owner", "tags", "source", "createdAt", "updatedAt", "lastOccurredAt")
QUERY = text("Opsgenie alert search query, e.g. `status:open AND priority:P1`, `tag:db`, `message:\"disk full\"`, "
             "`createdAt > 1700000000000`. Leave out to list every alert (open and closed).", 2000)
SEARCH_ID = text("Instead of `query`: a saved search's id (or name with searchIdentifierType 'name').", 512)
SEARCH_ID_TYPE = enum("What searchIdentifier is.", ["id", "name"], "id")
RESPONDER = obj({
    "type": enum("Who to route to.", ["team", "user", "escalation", "schedule"]),
    "id": text("The responder's id.", 512),
    "name": text("Team, escalation or schedule name (instead of id).", 512),
    "username": text("A user's username, usually the email (instead of id).", 512),
}, ("type",))
VISIBLE_TO = obj({
    "type": enum("Team or user.", ["team", "user"]),
    "id": text("The team's or user's id.", 512),
    "name": text("Team name (instead of id).", 512),
    "username": text("User's username (instead of id).", 512),
}, ("type",))
IDENT = {"identifier": ALERT_IDENTIFIER, "identifierType": ALERT_IDENTIFIER_TYPE}
IDENT_REQUIRED = ("identifier",)
PAGER = {"offset": text("Opaque paging token: the next_offset of a previous result; leave out for the start.", 200),
         "direction": enum("Page direction from offset.", ["next", "prev"], "next"),
         "limit": limit(20, "entries"), "order": enum("Sort by creation time.", ["asc", "desc"], "desc")}
WAITS = ("Writes are asynchronous in Opsgenie: this waits briefly for the outcome and reports it; if Opsgenie is "
         "slow it returns a requestId to check with get_request_status.")


class Context(Protocol):
    client: RestClient
    writes: AsyncWrites
    user: str | None
    max_chars: int
    page_size: int


TOOLS: ToolTable[Context] = ToolTable()


def _ident_params(args: Args) -> dict[str, Any]:
    return {"identifierType": args.get("identifierType") or "id"}


def _alert_path(args: Args, suffix: str = "") -> str:
    return f"/v2/alerts/{segment(args.get('identifier'))}{suffix}"


def _matching(args: Args) -> str:
    return f" matching {args['query']!r}" if args.get("query") else ""


@TOOLS.tool("list_alerts", "Search Opsgenie alerts, newest first. Use to find open or recent alerts "
            "(`query`, e.g. status:open AND priority:P1). Returns the alerts (id, tinyId, alias, message, status, "
            "acknowledged, priority, owner, tags, timestamps) and next_offset for the next page.",
            lambda ctx: obj({"query": QUERY, "searchIdentifier": SEARCH_ID, "searchIdentifierType": SEARCH_ID_TYPE,
                             "offset": {"type": "integer", "minimum": 0, "maximum": 20000, "default": 0,
                                        "description": "Start position; use next_offset from the previous page."},
                             "limit": limit(min(ctx.page_size, 100), "alerts"),
                             "sort": enum("Field to sort by.", SORT_FIELDS, "createdAt"),
                             "order": enum("Sort order.", ["asc", "desc"], "desc")}),
            read_only=True, title="List alerts")
async def list_alerts(ctx: Context, args: Args) -> ToolOutput:
    offset = non_negative(args, "offset")
    page = page_limit(args, min(ctx.page_size, 100))
    params = {**pick(args, "query", "searchIdentifier", "searchIdentifierType", "sort", "order"),
              "offset": offset, "limit": page}
    body = await ctx.client.json("GET", "/v2/alerts", params=params)
    alerts = [{k: a[k] for k in LIST_FIELDS if k in a} for a in body.get("data") or []]
    nxt = next_query(body.get("paging"))
    api_next = int(nxt) if nxt and nxt.isdigit() else None

    def hint(pointer: Any) -> str:
        return (f"More alerts match: call list_alerts again with offset={pointer} (same query)."
                if pointer is not None else "This is the last page.")

    return paged_output(f"{len(alerts)} alerts{_matching(args)} (offset {offset}); get_alert shows one in full.",
                        "alerts", alerts, ctx.max_chars, extra={"offset": offset}, hint=hint,
                        next_value=lambda kept: api_next if kept == len(alerts) else offset + kept)


@TOOLS.tool("count_alerts", "Count Opsgenie alerts matching a search query (same syntax as list_alerts), "
            "without fetching them. Returns the number.",
            obj({"query": QUERY, "searchIdentifier": SEARCH_ID, "searchIdentifierType": SEARCH_ID_TYPE}),
            read_only=True, title="Count alerts")
async def count_alerts(ctx: Context, args: Args) -> ToolOutput:
    params = pick(args, "query", "searchIdentifier", "searchIdentifierType")
    body = await ctx.client.json("GET", "/v2/alerts/count", params=params)
    count = (body.get("data") or {}).get("count", 0)
    return ToolOutput(text=f"{count} alerts{_matching(args)}.", structured={"count": count, "query": args.get("query")})


@TOOLS.tool("get_alert", "Get one Opsgenie alert in full: message, description, status, priority, responders, "
            "tags, details, entity, actions, owner and report (ack/close times). Identify it by id, alias or "
            "tiny id.", obj(IDENT, IDENT_REQUIRED), read_only=True, title="Get alert")
async def get_alert(ctx: Context, args: Args) -> ToolOutput:
    body = await ctx.client.json("GET", _alert_path(args), params=_ident_params(args))
    alert = body.get("data") or {}
    state = "acknowledged" if alert.get("acknowledged") else alert.get("status", "?")
    return object_output(f"Alert #{alert.get('tinyId')} {alert.get('priority', '')} {state}: "
                         f"{alert.get('message', '')}", alert, ctx.max_chars)


@TOOLS.tool("create_alert", "Create an Opsgenie alert (notifies the responders). An open alert with the same "
            "alias is de-duplicated instead (its count goes up). " + WAITS + " Returns the alert id and alias.",
            obj({"message": text("Short alert text shown everywhere (≤130 characters).", 130, 1),
                 "alias": text("Client-defined key for de-duplication and later actions.", 512),
                 "description": text("Details for responders.", 15000),
                 "responders": {"type": "array", "maxItems": 50, "items": RESPONDER,
                                "description": "Teams, users, escalations or schedules to notify."},
                 "visibleTo": {"type": "array", "maxItems": 50, "items": VISIBLE_TO,
                               "description": "Teams and users who may see it without being notified."},
                 "actions": {"type": "array", "maxItems": 10, "items": text("Custom action name.", 50, 1)},
                 "tags": {"type": "array", "maxItems": 20, "items": text("A tag.", 50, 1)},
                 "details": {"type": "object", "maxProperties": 100,
                             "additionalProperties": {"type": "string", "maxLength": 8000},
                             "description": "Custom key-value properties (≤8000 characters in total)."},
                 "entity": text("The domain the alert is about, e.g. a host or service.", 512),
                 "priority": enum("P1 (critical) to P5 (informational).", ["P1", "P2", "P3", "P4", "P5"], "P3"),
                 "note": text("A note added on creation.", 25000)}, ("message",)),
            read_only=False, title="Create alert")
async def create_alert(ctx: Context, args: Args) -> ToolOutput:
    body = pick(args, "message", "alias", "description", "actions", "tags", "details", "entity", "priority", "note")
    if args.get("responders"):
        body["responders"] = recipients(args["responders"], "responders")
    if args.get("visibleTo"):
        body["visibleTo"] = recipients(args["visibleTo"], "visibleTo")
    details = body.get("details") or {}
    if sum(len(str(k)) + len(str(v)) for k, v in details.items()) > 8000:
        raise ConnectorError("details may hold at most 8000 characters in total (keys and values)", "bad_argument")
    outcome = await ctx.writes.submit("/v2/alerts", with_actor(body, ctx.user))
    return write_result("create the alert", outcome)


def _action(suffix: str, verb: str, fields: tuple[str, ...] = ("note",)) -> BoundHandler[Context]:
    """The handler of an action on one alert: POST /v2/alerts/{identifier}{suffix} with `fields`."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        body = with_actor(action_body(args, fields), ctx.user)
        outcome = await ctx.writes.submit(_alert_path(args, suffix), body, _ident_params(args))
        return write_result(f"{verb} alert {args.get('identifier')}", outcome)
    return handler


TOOLS.add("acknowledge_alert", "Acknowledge an Opsgenie alert: stops its escalation and tells others someone "
          "is on it. " + WAITS, obj({**IDENT, "note": NOTE}, IDENT_REQUIRED), _action("/acknowledge", "acknowledge"),
          read_only=False, idempotent=True, title="Acknowledge alert")
TOOLS.add("unacknowledge_alert", "Undo the acknowledgement of an Opsgenie alert, so it escalates again. "
          + WAITS, obj({**IDENT, "note": NOTE}, IDENT_REQUIRED), _action("/unacknowledge", "unacknowledge"),
          read_only=False, idempotent=True, title="Unacknowledge alert")
TOOLS.add("close_alert", "Close an Opsgenie alert (resolved). A closed alert cannot be reopened; a new one "
          "with the same alias starts fresh. " + WAITS, obj({**IDENT, "note": NOTE}, IDENT_REQUIRED),
          _action("/close", "close"), read_only=False, destructive=True, idempotent=True, title="Close alert")
TOOLS.add("add_alert_note", "Add a note (comment) to an Opsgenie alert, e.g. findings or next steps. " + WAITS,
          obj({**IDENT, "note": text("The note text.", 25000, 1)}, ("identifier", "note")),
          _action("/notes", "add a note to"), read_only=False, title="Add alert note")
TOOLS.add("snooze_alert", "Snooze an Opsgenie alert: no notifications until the end time, then it notifies "
          "again. Give either endTime or minutes. " + WAITS,
          obj({**IDENT, "endTime": {**DATE_TIME, "description": "When the snooze ends (ISO 8601, future)."},
               "minutes": {"type": "integer", "minimum": 1, "maximum": 43200,
                           "description": "Instead of endTime: snooze for this many minutes from now."},
               "note": NOTE}, IDENT_REQUIRED),
          _action("/snooze", "snooze", ("endTime", "minutes", "note")), read_only=False, idempotent=True,
          title="Snooze alert")
TOOLS.add("escalate_alert", "Escalate an Opsgenie alert to the next level of an escalation policy now. " + WAITS,
          obj({**IDENT, "escalation": obj({"id": text("Escalation id.", 512), "name": text("Escalation name "
               "(instead of id).", 512)}), "note": NOTE}, ("identifier", "escalation")),
          _action("/escalate", "escalate", ("escalation", "note")), read_only=False, title="Escalate alert")
TOOLS.add("assign_alert", "Make a user the owner of an Opsgenie alert. " + WAITS,
          obj({**IDENT, "owner": obj({"id": text("User id.", 512), "username": text("Username (email) "
               "(instead of id).", 512)}), "note": NOTE}, ("identifier", "owner")),
          _action("/assign", "assign", ("owner", "note")), read_only=False, idempotent=True, title="Assign alert")


async def _notes_or_logs(ctx: Context, args: Args, kind: str) -> ToolOutput:
    page = page_limit(args, 20)
    params = {**_ident_params(args), **pick(args, "offset", "direction", "order"), "limit": page}
    body = await ctx.client.json("GET", _alert_path(args, f"/{kind}"), params=params)
    items = body.get("data") or []
    api_next = next_query(body.get("paging")) if items else None
    direction = params.get("direction", "next")

    def next_value(kept: int) -> Any:
        if kept == len(items) or direction != "next":
            return api_next
        # Entries come with their own opaque offset: continue after the last one shown.
        return items[kept - 1].get("offset") if kept else args.get("offset")

    def hint(pointer: Any) -> str:
        return (f"More {kind} exist: call again with offset=\"{pointer}\" and direction=\"{direction}\"."
                if pointer else f"No more {kind} in this direction.")

    return paged_output(f"{len(items)} {kind} of alert {args.get('identifier')}.", kind, items, ctx.max_chars,
                        extra={"direction": direction}, next_value=next_value, hint=hint)


@TOOLS.tool("list_alert_notes", "List the notes of an Opsgenie alert, newest first by default. Returns the "
            "notes (note, owner, createdAt) and next_offset, an opaque token for the next page.",
            obj({**IDENT, **PAGER}, IDENT_REQUIRED), read_only=True, title="List alert notes")
async def list_alert_notes(ctx: Context, args: Args) -> ToolOutput:
    return await _notes_or_logs(ctx, args, "notes")


@TOOLS.tool("list_alert_logs", "List an Opsgenie alert's activity log (created, notified, acknowledged, closed, "
            "…), newest first by default. Returns log entries and next_offset, an opaque token for the next "
            "page.", obj({**IDENT, **PAGER}, IDENT_REQUIRED), read_only=True, title="List alert logs")
async def list_alert_logs(ctx: Context, args: Args) -> ToolOutput:
    return await _notes_or_logs(ctx, args, "logs")


@TOOLS.tool("get_request_status", "Check the outcome of an asynchronous Opsgenie alert write by its requestId "
            "(given by a write that had not finished). Returns whether it was processed, succeeded, the alert "
            "id and Opsgenie's status text.",
            obj({"requestId": {"type": "string", "minLength": 1, "maxLength": 128,
                               "pattern": "^[A-Za-z0-9_.:-]+$", "description": "The requestId to check."}},
                ("requestId",)),
            read_only=True, title="Get request status")
async def get_request_status(ctx: Context, args: Args) -> ToolOutput:
    rid = str(args.get("requestId") or "").strip()
    data = await ctx.writes.status(rid)
    if data is None:
        return ToolOutput(text=f"Opsgenie has not processed request {rid} yet; ask again in a few seconds.",
                          structured={"requestId": rid, "processed": False})
    ok = "succeeded" if data.get("isSuccess") else "failed"
    return ToolOutput(text=f"Request {rid} ({data.get('action', '?')}) {ok}: {data.get('status', '')}; "
                           f"alert {data.get('alertId', '?')}.",
                      structured={"requestId": rid, "processed": True, **data})
