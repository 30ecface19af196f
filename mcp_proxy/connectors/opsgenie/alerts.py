"""Alert tools: search, read, and the asynchronous alert writes."""

from __future__ import annotations

from typing import Any, Protocol

from mcp_proxy.connectors.base import ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.opsgenie.client import AsyncWrites, next_query
from mcp_proxy.connectors.opsgenie.common import (
    add_alert_history,
    add_request_status,
    alert_output,
    checked_details,
    count_output,
    matching,
)
from mcp_proxy.connectors.opsgenie.schemas import (
    ADD_NOTE,
    ESCALATE,
    SNOOZE,
    assign,
    limit,
    new_alert,
    non_negative,
    on_alert,
    page_limit,
    paged_output,
    segment,
)
from mcp_proxy.connectors.opsgenie.writes import action_body, recipients, with_actor, write_result
from mcp_proxy.connectors.schema import enum, obj, pick, text
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

SORT_FIELDS = ["createdAt", "updatedAt", "tinyId", "alias", "message", "status", "acknowledged", "isSeen",
               "snoozed", "snoozedUntil", "count", "lastOccurredAt", "source", "owner", "integration.name",
               "integration.type", "report.ackTime", "report.closeTime", "report.acknowledgedBy",
               "report.closedBy"]
# What a list shows per alert; get_alert has the rest (responders, integration, report, details).
LIST_FIELDS = ("id", "tinyId", "alias", "message", "status", "acknowledged", "snoozed", "snoozedUntil", "priority",
               "count", "owner", "tags", "source", "createdAt", "updatedAt", "lastOccurredAt")
QUERY = text("Opsgenie search query, e.g. `status:open AND priority:P1`; leave out for all.", 2000)
SEARCH_ID = text("Instead of query: a saved search's id or name.", 512)
SEARCH_ID_TYPE = enum("", ["id", "name"], "id")
PAGER = {"offset": text("From next_offset.", 200),
         "direction": enum("", ["next", "prev"], "next"),
         "limit": limit(20, "entries"), "order": enum("By creation time.", ["asc", "desc"], "desc")}
WAITS = "If Opsgenie is slow, returns a requestId for get_request_status."


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


@TOOLS.tool("list_alerts", "Search Opsgenie alerts, newest first: open or recent alerts and their ids, a page "
            "at a time.",
            lambda ctx: obj({"query": QUERY, "searchIdentifier": SEARCH_ID, "searchIdentifierType": SEARCH_ID_TYPE,
                             "offset": {"type": "integer", "minimum": 0, "maximum": 20000, "default": 0,
                                        "description": "From next_offset."},
                             "limit": limit(min(ctx.page_size, 100), "alerts"),
                             "sort": enum("", SORT_FIELDS, "createdAt"),
                             "order": enum("", ["asc", "desc"], "desc")}),
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

    return paged_output(f"{len(alerts)} alerts{matching(args)} (offset {offset}); get_alert shows one in full.",
                        "alerts", alerts, ctx.max_chars, extra={"offset": offset}, hint=hint,
                        next_value=lambda kept: api_next if kept == len(alerts) else offset + kept)


@TOOLS.tool("count_alerts", "Count Opsgenie alerts matching a search query (as list_alerts), without fetching them.",
            obj({"query": QUERY, "searchIdentifier": SEARCH_ID, "searchIdentifierType": SEARCH_ID_TYPE}),
            read_only=True, title="Count alerts")
async def count_alerts(ctx: Context, args: Args) -> ToolOutput:
    params = pick(args, "query", "searchIdentifier", "searchIdentifierType")
    body = await ctx.client.json("GET", "/v2/alerts/count", params=params)
    return count_output((body.get("data") or {}).get("count", 0), args)


@TOOLS.tool("get_alert", "Get one Opsgenie alert in full (responders, tags, details, actions, ack/close times).",
            on_alert({}), read_only=True, title="Get alert")
async def get_alert(ctx: Context, args: Args) -> ToolOutput:
    body = await ctx.client.json("GET", _alert_path(args), params=_ident_params(args))
    return alert_output(body.get("data") or {}, ctx.max_chars)


@TOOLS.tool("create_alert", "Create an Opsgenie alert, notifying its responders; an open alert with the same alias is "
            "de-duplicated instead. " + WAITS,
            new_alert(responders="Who to notify.", details="Custom properties, ≤8000 characters in all."),
            read_only=False, title="Create alert")
async def create_alert(ctx: Context, args: Args) -> ToolOutput:
    body = pick(args, "message", "alias", "description", "actions", "tags", "details", "entity", "priority", "note")
    if args.get("responders"):
        body["responders"] = recipients(args["responders"], "responders")
    if args.get("visibleTo"):
        body["visibleTo"] = recipients(args["visibleTo"], "visibleTo")
    checked_details(args)
    outcome = await ctx.writes.submit("/v2/alerts", with_actor(body, ctx.user))
    return write_result("create the alert", outcome)


def _action(suffix: str, verb: str, fields: tuple[str, ...] = ("note",)) -> BoundHandler[Context]:
    """The handler of an action on one alert: POST /v2/alerts/{identifier}{suffix} with `fields`."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        body = with_actor(action_body(args, fields), ctx.user)
        outcome = await ctx.writes.submit(_alert_path(args, suffix), body, _ident_params(args))
        return write_result(f"{verb} alert {args.get('identifier')}", outcome)
    return handler


TOOLS.add("acknowledge_alert", "Acknowledge an Opsgenie alert: stops its escalation. "
          + WAITS, on_alert(), _action("/acknowledge", "acknowledge"),
          read_only=False, idempotent=True, title="Acknowledge alert")
TOOLS.add("unacknowledge_alert", "Undo the acknowledgement of an Opsgenie alert, so it escalates again. "
          + WAITS, on_alert(), _action("/unacknowledge", "unacknowledge"),
          read_only=False, idempotent=True, title="Unacknowledge alert")
TOOLS.add("close_alert", "Close an Opsgenie alert (resolved); it cannot be reopened. " + WAITS,
          on_alert(),
          _action("/close", "close"), read_only=False, destructive=True, idempotent=True, title="Close alert")
TOOLS.add("add_alert_note", "Add a note (comment) to an Opsgenie alert, e.g. findings. " + WAITS,
          ADD_NOTE,
          _action("/notes", "add a note to"), read_only=False, title="Add alert note")
TOOLS.add("snooze_alert", "Snooze an Opsgenie alert's notifications until endTime or for minutes. " + WAITS,
          SNOOZE,
          _action("/snooze", "snooze", ("endTime", "minutes", "note")), read_only=False, idempotent=True,
          title="Snooze alert")
TOOLS.add("escalate_alert", "Escalate an Opsgenie alert to the next level of an escalation policy now. " + WAITS,
          ESCALATE,
          _action("/escalate", "escalate", ("escalation", "note")), read_only=False, title="Escalate alert")
TOOLS.add("assign_alert", "Make a user the owner of an Opsgenie alert. " + WAITS,
          assign(account_id="", username="Instead of id (email)."),
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


add_alert_history(
    TOOLS, _notes_or_logs, PAGER,
    notes="List an Opsgenie alert's notes (note, owner, createdAt), newest first by default.",
    logs="List an Opsgenie alert's activity log (created, notified, acknowledged, closed, …), newest first by "
         "default.")
add_request_status(
    TOOLS, "The outcome of an Opsgenie alert write that had not finished, by the requestId it returned.",
    lambda rid: f"Opsgenie has not processed request {rid} yet; ask again in a few seconds.")
