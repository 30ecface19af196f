"""Who is responsible, from JSM Operations: schedules and on-call, teams and their escalations.

JSM has no user directory and no team details under /jsm/ops (get_team, list_users and get_user are not
offered by this backend); schedules and escalations are found by id, a name is looked up."""

from __future__ import annotations

from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.jsm.alerts import Context, get_json
from mcp_proxy.connectors.jsm.client import link_param
from mcp_proxy.connectors.opsgenie import common, schemas
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.tools import Args, ToolTable

MAX_PAGES = 40  # a directory list reads at most this many pages

TOOLS: ToolTable[Context] = ToolTable()


async def _all(ctx: Context, path: str, size: int, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a paged list (offset + size, links.next)."""
    items: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_PAGES):
        body = await get_json(ctx, path, {**(params or {}), "offset": offset, "size": size})
        items += body.get("values") or []
        nxt = link_param(body.get("links"), "offset")
        if not nxt or not nxt.isdigit() or int(nxt) <= offset:
            break
        offset = int(nxt)
    return items


async def teams(ctx: Context) -> list[dict[str, Any]]:
    return list((await get_json(ctx, "/v1/teams")).get("platformTeams") or [])


async def all_escalations(ctx: Context) -> list[dict[str, Any]]:
    """The escalations of every team (JSM keeps them per team), each with its teamId."""
    out = []
    for team in await teams(ctx):
        team_id = str(team.get("teamId"))
        for escalation in await _all(ctx, f"/v1/teams/{schemas.segment(team_id)}/escalations", 100):
            out.append({**escalation, "teamId": team_id})
    return out


async def schedule_id(ctx: Context, args: Args) -> str:
    identifier = str(args.get("identifier") or "").strip()
    if (args.get("identifierType") or "id") == "id":
        return schemas.segment(identifier)
    for schedule in await _all(ctx, "/v1/schedules", 50, {"query": identifier}):
        if str(schedule.get("name", "")).lower() == identifier.lower():
            return schemas.segment(schedule.get("id"))
    raise ConnectorError(f"JSM Operations has no schedule named {identifier!r}; list_schedules shows the names",
                         "http_404")


TOOLS.add("list_escalations", "List the JSM Operations escalations of every team (who is notified, in which order, "
          "after which delays): id, name, teamId, rules, repeats.",
          schemas.EMPTY, lambda ctx, args: _escalations(ctx), read_only=True, title="List escalations")


async def _escalations(ctx: Context) -> ToolOutput:
    items = await all_escalations(ctx)
    return list_output(f"{len(items)} escalations.", "escalations", items, ctx.max_chars)


@TOOLS.tool("get_escalation", "Get one JSM Operations escalation with its rules (condition, delay, recipient) by "
            "id or name.", schemas.named("escalation"), read_only=True, title="Get escalation")
async def get_escalation(ctx: Context, args: Args) -> ToolOutput:
    kind = args.get("identifierType") or "id"
    identifier = str(args.get("identifier") or "").strip()
    for escalation in await all_escalations(ctx):
        if escalation.get(kind) == identifier:
            return object_output(common.escalation_summary(escalation), escalation, ctx.max_chars)
    raise ConnectorError(f"JSM Operations found no escalation with {kind} {identifier!r} in any team; "
                         "list_escalations shows them", "http_404")


@TOOLS.tool("list_schedules", "List the JSM Operations on-call schedules (id, name, time zone, enabled, team), "
            "for who_is_on_call, next_on_call, get_schedule_timeline.",
            schemas.LIST_SCHEDULES,
            read_only=True, title="List schedules")
async def list_schedules(ctx: Context, args: Args) -> ToolOutput:
    items = await _all(ctx, "/v1/schedules", 50, {"expand": "rotation"} if args.get("expandRotations") else None)
    return list_output(f"{len(items)} schedules.", "schedules", items, ctx.max_chars)


@TOOLS.tool("get_schedule", "Get one JSM Operations schedule with its rotations (participants, type, length, "
            "start) by id or name.", schemas.named("schedule"), read_only=True, title="Get schedule")
async def get_schedule(ctx: Context, args: Args) -> ToolOutput:
    data = await get_json(ctx, f"/v1/schedules/{await schedule_id(ctx, args)}")
    return object_output(common.schedule_summary(data), data, ctx.max_chars)


@TOOLS.tool("get_schedule_timeline", "Who is on call in a JSM Operations schedule over a window (default: a week from "
            "now): periods (rotation, start, end, account id) of the final timeline, and the others in expand.",
            schemas.TIMELINE,
            read_only=True, title="Get schedule timeline")
async def get_schedule_timeline(ctx: Context, args: Args) -> ToolOutput:
    sid = await schedule_id(ctx, args)
    params = common.with_date(args, {"interval": args.get("interval", 1),
                                     "intervalUnit": args.get("intervalUnit", "weeks")})
    expand = common.expand_timelines(args, params)
    data = await get_json(ctx, f"/v1/schedules/{sid}/timeline", params)
    rows = common.timeline_rows(data, expand, "responder", "id")
    return list_output(
        f"Timeline of schedule {args.get('identifier')!r} from {data.get('startDate')} to {data.get('endDate')}: "
        f"{len(rows)} periods (final timeline = who is actually on call; recipients are account ids).",
        "periods", rows, ctx.max_chars,
        extra={"schedule": {"id": sid}, "startDate": data.get("startDate"), "endDate": data.get("endDate")})


async def _on_call(ctx: Context, args: Args, suffix: str) -> dict[str, Any]:
    params = common.with_date(args, {"flat": "true"} if args.get("flat") else {})
    return await get_json(ctx, f"/v1/schedules/{await schedule_id(ctx, args)}/{suffix}", params or None)


common.add_on_call_tools(
    TOOLS, _on_call,
    common.OnCallAnswers(now=("onCallParticipants", "onCallUsers"),
                         upcoming=("nextOnCallParticipants", "nextOnCallUsers"), field="id",
                         schedule=lambda data, args: args.get("identifier")),
    now="Who is on call now (or at `date`) in a JSM Operations schedule: the participants (Atlassian account "
        "ids, and teams/escalations with theirs).",
    upcoming="Who is on call next in a JSM Operations schedule after now (or after `date`): the participants "
             "(account ids).")


@TOOLS.tool("list_teams", "List the JSM Operations teams (Atlassian platform teams: id and name); "
            "list_escalations has their escalations.", schemas.EMPTY, read_only=True, title="List teams")
async def list_teams(ctx: Context, args: Args) -> ToolOutput:
    items = [{"id": t.get("teamId"), "name": t.get("teamName")} for t in await teams(ctx)]
    return list_output(f"{len(items)} teams.", "teams", items, ctx.max_chars)
