"""The Opsgenie alert tools served by JSM Operations: the same names and, where JSM can serve them, the
same arguments, so that a policy written for the Opsgenie backend governs this one alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.jsm.client import RESULT_CAP, SOURCE, AsyncWrites, link_param
from mcp_proxy.connectors.opsgenie import common, schemas
from mcp_proxy.connectors.opsgenie.client import WriteOutcome
from mcp_proxy.connectors.opsgenie.writes import outcome_output, snooze_end
from mcp_proxy.connectors.schema import enum, obj, pick, text
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

SORT_FIELDS = ["createdAt", "insertedAt", "lastOccurredAt", "priority"]
LIST_FIELDS = ("id", "tinyId", "alias", "message", "status", "acknowledged", "snoozed", "snoozedUntil", "priority",
               "count", "owner", "tags", "source", "createdAt", "updatedAt", "lastOccuredAt")
QUERY = text("JSM Operations search query, e.g. `status:open AND priority:P1`; leave out for all (open and "
             "closed).", 2000)
PAGER = {"offset": text("From next_offset (an opaque token).", 200),
         "limit": schemas.limit(20, "entries")}
WAITS = "If JSM Operations is slow, returns a requestId for get_request_status."


class Context(Protocol):
    client: RestClient
    writes: AsyncWrites
    max_chars: int
    page_size: int

    async def api(self, path: str) -> str: ...


TOOLS: ToolTable[Context] = ToolTable()


async def get_json(ctx: Context, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await ctx.client.json("GET", await ctx.api(path), params=params)
    return body if isinstance(body, dict) else {}


async def find_alert(ctx: Context, args: Args) -> dict[str, Any]:
    """The alert named by identifier + identifierType: JSM takes ids only, so an alias goes through
    `/v1/alerts/alias` and a tiny id through a search."""
    identifier = str(args.get("identifier") or "").strip()
    kind = args.get("identifierType") or "id"
    if kind == "alias":
        return await get_json(ctx, "/v1/alerts/alias", {"alias": identifier})
    if kind == "tiny":
        if not identifier.isdigit():
            raise ConnectorError(f"a tiny id is a number (the #N shown in the UI), not {identifier[:40]!r}",
                                 "bad_argument")
        found = (await get_json(ctx, "/v1/alerts", {"query": f"tinyId:{identifier}", "size": 1})).get("values")
        if not found:
            raise ConnectorError(f"JSM Operations found no alert with tiny id {identifier}; list_alerts shows them",
                                 "http_404")
        return found[0]
    return await get_json(ctx, f"/v1/alerts/{schemas.segment(identifier)}")


async def alert_id(ctx: Context, args: Args) -> str:
    if (args.get("identifierType") or "id") == "id":
        return schemas.segment(args.get("identifier"))
    return schemas.segment((await find_alert(ctx, args)).get("id"))


@TOOLS.tool("list_alerts", "Search JSM Operations alerts, newest first: open or recent alerts and their ids, "
            "a page at a time, with the total count (JSM serves the first 20,000 results).",
            lambda ctx: obj({"query": QUERY,
                             "offset": {"type": "integer", "minimum": 0, "maximum": RESULT_CAP - 1, "default": 0,
                                        "description": "From next_offset."},
                             "limit": schemas.limit(min(ctx.page_size, 100), "alerts"),
                             "sort": enum("", SORT_FIELDS, "createdAt"),
                             "order": enum("", ["asc", "desc"], "desc")}),
            read_only=True, title="List alerts")
async def list_alerts(ctx: Context, args: Args) -> ToolOutput:
    offset = schemas.non_negative(args, "offset")
    if offset >= RESULT_CAP - 1:
        raise ConnectorError(f"JSM Operations serves only the first {RESULT_CAP} results of a search; narrow the "
                             "query (e.g. a time range or a status) instead of paging further", "result_cap")
    page = min(schemas.page_limit(args, min(ctx.page_size, 100)), RESULT_CAP - 1 - offset)
    params = {**pick(args, "query", "sort", "order"), "offset": offset, "size": page}
    body = await get_json(ctx, "/v1/alerts", params)
    alerts = [{k: a[k] for k in LIST_FIELDS if k in a} for a in body.get("values") or []]
    total = body.get("count")
    nxt = link_param(body.get("links"), "offset")
    api_next = int(nxt) if nxt and nxt.isdigit() else None
    capped = api_next is None and isinstance(total, int) and offset + len(alerts) < total

    def next_value(kept: int) -> Any:
        pointer = api_next if kept == len(alerts) else offset + kept
        return pointer if pointer is not None and pointer < RESULT_CAP - 1 else None

    def hint(pointer: Any) -> str:
        if pointer is not None:
            return f"More alerts match: call list_alerts again with offset={pointer} (same query)."
        if capped or (isinstance(total, int) and offset + len(alerts) < total):
            return (f"No further page: JSM serves only the first {RESULT_CAP} results; narrow the query to see "
                    "the rest.")
        return "This is the last page."

    return schemas.paged_output(f"{len(alerts)} of {total if total is not None else '?'} alerts{common.matching(args)} "
                        f"(offset {offset}); get_alert shows one in full.", "alerts", alerts, ctx.max_chars,
                        extra={"offset": offset, "count": total}, next_value=next_value, hint=hint)


@TOOLS.tool("count_alerts", "Count JSM Operations alerts matching a search query (as list_alerts), without "
            "fetching them.", obj({"query": QUERY}), read_only=True,
            title="Count alerts")
async def count_alerts(ctx: Context, args: Args) -> ToolOutput:
    # JSM has no count endpoint: a one-item page carries the total.
    body = await get_json(ctx, "/v1/alerts", {**pick(args, "query"), "size": 1})
    return common.count_output(body.get("count", 0), args)


@TOOLS.tool("get_alert", "Get one JSM Operations alert in full (responders, tags, extra properties, "
            "actions, owner, ack/close times).",
            schemas.on_alert({}), read_only=True, title="Get alert")
async def get_alert(ctx: Context, args: Args) -> ToolOutput:
    return common.alert_output(await find_alert(ctx, args), ctx.max_chars)


def write_result(verb: str, outcome: WriteOutcome) -> ToolOutput:
    """The outcome of an asynchronous write, or how to check it later."""
    return outcome_output("JSM Operations", verb, outcome,
                          lambda status: " Check the identifiers with list_alerts or get_alert.")


async def team_id_by_name(ctx: Context, name: str) -> str:
    teams = (await get_json(ctx, "/v1/teams")).get("platformTeams") or []
    for team in teams:
        if str(team.get("teamName", "")).lower() == name.lower():
            return str(team.get("teamId"))
    raise ConnectorError(f"JSM Operations has no team named {name!r}; list_teams shows the names", "bad_argument")


async def _recipients(ctx: Context, values: Any, name: str) -> list[dict[str, Any]]:
    """Responders by id (JSM knows ids only); a team may be named, its id is looked up."""
    out = []
    for i, value in enumerate(values or []):
        kind = value.get("type")
        if value.get("id"):
            out.append({"id": value["id"], "type": kind})
        elif kind == "team" and value.get("name"):
            out.append({"id": await team_id_by_name(ctx, value["name"]), "type": "team"})
        else:
            raise ConnectorError(f"{name}[{i}]: JSM Operations identifies a {kind} by id only (users by Atlassian "
                                 "account id); give `id` (teams may also be given by `name`)", "bad_argument")
    return out


@TOOLS.tool("create_alert", "Create a JSM Operations alert, notifying its responders; an open alert with the "
            "same alias is de-duplicated instead. " + WAITS,
            schemas.new_alert(responders="Who to notify: teams by id or name, the others by id (users: account "
                                         "id).",
                              details="Custom properties (extraProperties), ≤8000 characters in all."),
            read_only=False, title="Create alert")
async def create_alert(ctx: Context, args: Args) -> ToolOutput:
    body = pick(args, "message", "alias", "description", "actions", "tags", "entity", "priority", "note")
    details = common.checked_details(args)
    if details:
        body["extraProperties"] = details
    for field in ("responders", "visibleTo"):
        if args.get(field):
            body[field] = await _recipients(ctx, args[field], field)
    body["source"] = SOURCE
    return write_result("create the alert", await ctx.writes.submit("/v1/alerts", body))


async def _note_after(ctx: Context, aid: str, args: Args, out: ToolOutput) -> ToolOutput:
    """JSM's actions take no note: a note given with one is added afterwards (synchronously)."""
    if args.get("note") and out.structured and out.structured.get("processed") is not False:
        await ctx.client.json("POST", await ctx.api(f"/v1/alerts/{aid}/notes"), json={"note": args["note"]})
        out.text += " The note was added."
        out.structured["noteAdded"] = True
    return out


def _action(suffix: str, verb: str,
            body_of: Callable[[Context, Args], Awaitable[dict[str, Any] | None]] | None = None
            ) -> BoundHandler[Context]:
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        body = await body_of(ctx, args) if body_of else None
        aid = await alert_id(ctx, args)
        out = write_result(f"{verb} alert {args.get('identifier')}", await ctx.writes.submit(
            f"/v1/alerts/{aid}/{suffix}", body))
        return await _note_after(ctx, aid, args, out)
    return handler


async def _snooze(ctx: Context, args: Args) -> dict[str, Any]:
    return {"endTime": snooze_end(args)}


async def _escalation(ctx: Context, args: Args) -> dict[str, Any]:
    target = args.get("escalation") or {}
    if target.get("id"):
        return {"escalationId": target["id"]}
    if not target.get("name"):
        raise ConnectorError("escalation needs one of: id, name", "bad_argument")
    from mcp_proxy.connectors.jsm.directory import all_escalations

    for escalation in await all_escalations(ctx):
        if escalation.get("name") == target["name"]:
            return {"escalationId": escalation["id"]}
    raise ConnectorError(f"JSM Operations has no escalation named {target['name']!r}; list_escalations shows them",
                         "bad_argument")


async def _owner(ctx: Context, args: Args) -> dict[str, Any]:
    owner = args.get("owner") or {}
    if owner.get("id"):
        return {"accountId": owner["id"]}
    raise ConnectorError("JSM Operations assigns alerts by Atlassian account id only: give owner.id (an account "
                         "id, e.g. from who_is_on_call); a username or email cannot be looked up", "bad_argument")


TOOLS.add("acknowledge_alert", "Acknowledge a JSM Operations alert: stops its escalation. " + WAITS,
          schemas.on_alert(), _action("acknowledge", "acknowledge"),
          read_only=False, idempotent=True, title="Acknowledge alert")
TOOLS.add("unacknowledge_alert", "Undo the acknowledgement of a JSM Operations alert, so it escalates again. "
          + WAITS, schemas.on_alert(), _action("unacknowledge", "unacknowledge"),
          read_only=False, idempotent=True, title="Unacknowledge alert")
TOOLS.add("close_alert", "Close a JSM Operations alert (resolved); it cannot be reopened. " + WAITS, schemas.on_alert(),
          _action("close", "close"), read_only=False, destructive=True, idempotent=True, title="Close alert")


@TOOLS.tool("add_alert_note", "Add a note (comment) to a JSM Operations alert, e.g. findings or next steps.",
            schemas.ADD_NOTE,
            read_only=False, title="Add alert note")
async def add_alert_note(ctx: Context, args: Args) -> ToolOutput:
    aid = await alert_id(ctx, args)
    note = await ctx.client.json("POST", await ctx.api(f"/v1/alerts/{aid}/notes"), json={"note": args.get("note")})
    note = note if isinstance(note, dict) else {}
    return ToolOutput(text=f"Added note {note.get('id', '')} to alert {aid}.",
                      structured={"alertId": aid, **note})


TOOLS.add("snooze_alert", "Snooze a JSM Operations alert's notifications until endTime or for minutes. " + WAITS,
          schemas.SNOOZE,
          _action("snooze", "snooze", _snooze), read_only=False, idempotent=True, title="Snooze alert")
TOOLS.add("escalate_alert", "Escalate a JSM Operations alert to the next level of an escalation now. " + WAITS,
          schemas.ESCALATE,
          _action("escalate", "escalate", _escalation), read_only=False, title="Escalate alert")
TOOLS.add("assign_alert", "Make a user the owner of a JSM Operations alert, by Atlassian account id. " + WAITS,
          schemas.assign(account_id="Atlassian account id.", username="Not supported (give id)."),
          _action("assign", "assign", _owner), read_only=False, idempotent=True, title="Assign alert")


async def _notes_or_logs(ctx: Context, args: Args, kind: str) -> ToolOutput:
    aid = await alert_id(ctx, args)
    params: dict[str, Any] = {"size": schemas.page_limit(args, 20)}
    if args.get("offset"):
        params["after"] = str(args["offset"])
    body = await get_json(ctx, f"/v1/alerts/{aid}/{kind}", params)
    items = body.get("values") or []
    api_next = link_param(body.get("links"), "after")

    def next_value(kept: int) -> Any:
        # The cursor belongs to the page's last entry: a trimmed page has none for where it stops.
        return api_next if kept == len(items) else None

    def hint(pointer: Any) -> str:
        if pointer:
            return f"More {kind} exist: call again with offset=\"{pointer}\"."
        if len(items) and api_next:
            return f"Some {kind} were left out for size: call again with a smaller limit."
        return f"No more {kind}."

    return schemas.paged_output(f"{len(items)} {kind} of alert {args.get('identifier')}, newest first.", kind, items,
                        ctx.max_chars, extra={}, next_value=next_value, hint=hint)


common.add_alert_history(
    TOOLS, _notes_or_logs, PAGER,
    notes="List a JSM Operations alert's notes (note, owner, createdAt), newest first.",
    logs="List a JSM Operations alert's activity log (created, notified, acknowledged, closed, …), newest first.")
common.add_request_status(
    TOOLS, "The outcome of a JSM Operations alert write that had not finished, by the requestId it returned.",
    lambda rid: f"JSM Operations has not processed request {rid} yet (or does not know it: JSM answers both "
    "alike); ask again in a few seconds.")
