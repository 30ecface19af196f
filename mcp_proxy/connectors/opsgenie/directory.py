"""Read-only tools for who is responsible: schedules and on-call, escalations, teams, users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_proxy.connectors.base import ToolOutput
from mcp_proxy.connectors.opsgenie.alerts import Context
from mcp_proxy.connectors.opsgenie.client import next_query
from mcp_proxy.connectors.opsgenie.common import (
    OnCallAnswers,
    add_on_call_tools,
    escalation_summary,
    expand_timelines,
    schedule_summary,
    timeline_rows,
    with_date,
)
from mcp_proxy.connectors.opsgenie.schemas import (
    EMPTY,
    LIST_SCHEDULES,
    TIMELINE,
    limit,
    named,
    non_negative,
    page_limit,
    paged_output,
    segment,
)
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.schema import enum, obj, text
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

TOOLS: ToolTable[Context] = ToolTable()


def _identifier_type(args: Args, param: str = "identifierType") -> dict[str, Any]:
    return {param: args.get("identifierType") or "id"}


async def _get(ctx: Context, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await ctx.client.json("GET", path, params=params)
    return body if isinstance(body, dict) else {}


def _lister(path: str, key: str, noun: str,
            params: Callable[[Args], dict[str, Any] | None] = lambda args: None) -> BoundHandler[Context]:
    """A tool that lists everything at `path` (these lists are not paged)."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        items = (await _get(ctx, path, params(args))).get("data") or []
        return list_output(f"{len(items)} {noun}.", key, items, ctx.max_chars)
    return handler


def _getter(collection: str, summary: Callable[[dict[str, Any]], str]) -> BoundHandler[Context]:
    """A tool that gets one item of `collection` by id or name."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        path = f"/v2/{collection}/{segment(args.get('identifier'))}"
        data = (await _get(ctx, path, _identifier_type(args))).get("data") or {}
        return object_output(summary(data), data, ctx.max_chars)
    return handler


TOOLS.add("list_escalations", "List the Opsgenie escalation policies (who is notified, in which order, after "
          "which delays): id, name, owner team, rules, repeats.",
          EMPTY, _lister("/v2/escalations", "escalations", "escalation policies"), read_only=True,
          title="List escalations")
TOOLS.add("get_escalation", "Get one Opsgenie escalation policy with its rules (condition, delay, recipient) "
          "by id or name.", named("escalation"),
          _getter("escalations", escalation_summary),
          read_only=True, title="Get escalation")
TOOLS.add("list_schedules", "List the Opsgenie on-call schedules (id, name, time zone, enabled, owner team), "
          "for who_is_on_call, next_on_call, get_schedule_timeline.",
          LIST_SCHEDULES,
          _lister("/v2/schedules", "schedules", "schedules",
                  lambda args: {"expand": "rotation"} if args.get("expandRotations") else None),
          read_only=True, title="List schedules")
TOOLS.add("get_schedule", "Get one Opsgenie schedule with its rotations (participants, type, length, start, "
          "time restrictions) by id or name.", named("schedule"),
          _getter("schedules", schedule_summary),
          read_only=True, title="Get schedule")


@TOOLS.tool("get_schedule_timeline", "Who is on call in an Opsgenie schedule over a window (default: a week from now): "
            "periods (rotation, start, end, recipient) of the final timeline, and the others in expand.",
            TIMELINE,
            read_only=True, title="Get schedule timeline")
async def get_schedule_timeline(ctx: Context, args: Args) -> ToolOutput:
    params = with_date(args, {**_identifier_type(args), "interval": args.get("interval", 1),
                          "intervalUnit": args.get("intervalUnit", "weeks")})
    expand = expand_timelines(args, params)
    data = (await _get(ctx, f"/v2/schedules/{segment(args.get('identifier'))}/timeline", params)).get("data") or {}
    rows = timeline_rows(data, expand)
    parent = data.get("_parent") or {}
    return list_output(
        f"Timeline of schedule {parent.get('name')!r} from {data.get('startDate')} to {data.get('endDate')}: "
        f"{len(rows)} periods (final timeline = who is actually on call).",
        "periods", rows, ctx.max_chars,
        extra={"schedule": parent, "startDate": data.get("startDate"), "endDate": data.get("endDate")})


async def _on_call(ctx: Context, args: Args, suffix: str) -> dict[str, Any]:
    # The on-call endpoints call the identifier type `scheduleIdentifierType`, not `identifierType`.
    params = with_date(args, _identifier_type(args, "scheduleIdentifierType"))
    if args.get("flat"):
        params["flat"] = "true"
    path = f"/v2/schedules/{segment(args.get('identifier'))}/{suffix}"
    return (await _get(ctx, path, params)).get("data") or {}


add_on_call_tools(
    TOOLS, _on_call,
    OnCallAnswers(now=("onCallParticipants", "onCallRecipients"),
                  upcoming=("nextOnCallRecipients", "nextOnCallParticipants"), field="name",
                  schedule=lambda data, args: (data.get("_parent") or {}).get("name", args.get("identifier"))),
    now="Who is on call now (or at `date`) in an Opsgenie schedule: the participants (users, and "
        "escalations/teams with their members).",
    upcoming="Who is on call next in an Opsgenie schedule after now (or after `date`): the recipients.")


TOOLS.add("list_teams", "List the Opsgenie teams (id, name, description). Use get_team for members.",
          EMPTY, _lister("/v2/teams", "teams", "teams"), read_only=True, title="List teams")
TOOLS.add("get_team", "Get one Opsgenie team with its members and their roles, by id or name.", named("team"),
          _getter("teams", lambda d: f"Team {d.get('name')!r} ({len(d.get('members') or [])} members)."),
          read_only=True, title="Get team")


@TOOLS.tool("list_users", "List Opsgenie users (id, username = email, full name, role, time zone), a page at a "
            "time, with totalCount.",
            lambda ctx: obj({"query": text("Filter, e.g. `role:admin` or a name fragment.", 1000),
                             "offset": {"type": "integer", "minimum": 0, "default": 0,
                                        "description": "From next_offset."},
                             "limit": limit(min(ctx.page_size, 100), "users"),
                             "sortField": enum("", ["username", "fullName", "insertedAt"]),
                             "order": enum("", ["asc", "desc"], "asc")}),
            read_only=True, title="List users")
async def list_users(ctx: Context, args: Args) -> ToolOutput:
    offset = non_negative(args, "offset")
    params: dict[str, Any] = {"offset": offset, "limit": page_limit(args, min(ctx.page_size, 100))}
    for name in ("sortField", "order", "query"):
        if args.get(name):
            params[name] = args[name]
    body = await _get(ctx, "/v2/users", params)
    users = body.get("data") or []
    total = body.get("totalCount")
    nxt = next_query(body.get("paging"))
    api_next = int(nxt) if nxt and nxt.isdigit() else None
    if api_next is None and isinstance(total, int) and offset + len(users) < total and users:
        api_next = offset + len(users)

    def hint(pointer: Any) -> str:
        return (f"More users: call list_users again with offset={pointer}." if pointer is not None
                else "This is the last page.")

    return paged_output(f"{len(users)} of {total if total is not None else '?'} users (offset {offset}).",
                        "users", users, ctx.max_chars, extra={"totalCount": total, "offset": offset},
                        hint=hint, next_value=lambda kept: api_next if kept == len(users) else offset + kept)


@TOOLS.tool("get_user", "Get one Opsgenie user by id or username (email): name, role, time zone, locale, tags, "
            "and optionally contact methods.",
            obj({"identifier": text("Id or username (email).", 512, 1),
                 "includeContacts": {"type": "boolean", "default": False}},
                ("identifier",)),
            read_only=True, title="Get user")
async def get_user(ctx: Context, args: Args) -> ToolOutput:
    params = {"expand": "contact"} if args.get("includeContacts") else None
    data = (await _get(ctx, f"/v2/users/{segment(args.get('identifier'))}", params)).get("data") or {}
    return object_output(f"User {data.get('fullName')!r} <{data.get('username')}>.", data, ctx.max_chars)
