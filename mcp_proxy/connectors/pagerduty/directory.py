"""Directory tools: services, users, schedules and overrides, on-calls, escalation policies, teams, priorities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mcp_proxy.connectors.base import ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.pagerduty.params import add_list, page_args, paged_output, segment, window
from mcp_proxy.connectors.pagerduty.schemas import QUERY, date_time, ident, ids, paging
from mcp_proxy.connectors.pagerduty.views import (
    compact_oncall,
    compact_policy,
    compact_schedule,
    compact_service,
    compact_user,
    fields,
    ref,
)
from mcp_proxy.connectors.schema import obj
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

Params = list[tuple[str, Any]]


class Context(Protocol):
    client: RestClient
    max_chars: int
    page_size: int


TOOLS: ToolTable[Context] = ToolTable(title_from_name=True)


def text_query(what: str) -> dict[str, Any]:
    return {**QUERY, "description": f"{what.capitalize()} contains (case-insensitive)."}


def query_and(*arrays: str) -> Callable[[Args, Params], None]:
    """Adds `query` and the given array filters to the request parameters."""
    def build(args: Args, params: Params) -> None:
        if args.get("query"):
            params.append(("query", args["query"]))
        for name in arrays:
            add_list(params, name, args.get(name))
    return build


def oncall_params(args: Args, params: Params) -> None:
    for name in ("user_ids", "escalation_policy_ids", "schedule_ids"):
        add_list(params, name, args.get(name))
    window(args, params)
    if args.get("earliest"):
        params.append(("earliest", "true"))


def schedule_window(args: Args) -> Params:
    params: Params = []
    window(args, params)
    return params


def lister(path: str, key: str, tool_name: str, compact: Callable[[dict[str, Any]], Any],
           build: Callable[[Args, Params], None], noun: str) -> BoundHandler[Context]:
    """A tool that lists one page of `path` (classic pagination), each item through `compact`."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        limit, offset = page_args(args, ctx.page_size)
        params: Params = [("limit", limit), ("offset", offset)]
        build(args, params)
        body = await ctx.client.json("GET", path, params=params)
        items = [compact(i) for i in body.get(key) or []]
        what = f" matching {args['query']!r}" if args.get("query") else ""
        return paged_output(f"{len(items)} {noun}{what} (offset {offset}).", key, items, ctx.max_chars,
                            tool=tool_name, offset=offset, more=bool(body.get("more")))
    return handler


def getter(path: str, key: str, title: Callable[[dict[str, Any]], str],
           params: Callable[[Args], Params] | None = None) -> BoundHandler[Context]:
    """A tool that gets one item by id: `path` has an `{id}` field."""
    async def handler(ctx: Context, args: Args) -> ToolOutput:
        query = params(args) if params else None
        body = await ctx.client.json("GET", path.format(id=segment(args.get("id"))), params=query)
        item = body.get(key) or {}
        return object_output(title(item), item, ctx.max_chars)
    return handler


TOOLS.add("list_services", "List PagerDuty services (what incidents are raised on) with their status, escalation "
          "policy and teams.",
          lambda ctx: obj({"query": QUERY, "team_ids": ids("team"), **paging(ctx.page_size, "services")}),
          lister("/services", "services", "list_services", compact_service, query_and("team_ids"), "services"),
          read_only=True)
TOOLS.add("get_service", "Get one PagerDuty service in full: status, escalation policy, teams, integrations, "
          "urgency rules.", obj({"id": ident()}, ("id",)),
          getter("/services/{id}", "service", lambda s: f"Service {s.get('name')} ({s.get('id')}), "
                                                        f"status {s.get('status')}."),
          read_only=True)
TOOLS.add("list_users", "List PagerDuty users (id, name, email, role, teams), e.g. for a user id to reassign "
          "an incident to.",
          lambda ctx: obj({"query": text_query("name or email"), "team_ids": ids("team"),
                           **paging(ctx.page_size, "users")}),
          lister("/users", "users", "list_users", compact_user, query_and("team_ids"), "users"), read_only=True)
TOOLS.add("get_user", "Get one PagerDuty user in full: contact details, role, time zone, teams.",
          obj({"id": ident()}, ("id",)),
          getter("/users/{id}", "user", lambda u: f"User {u.get('name')} <{u.get('email')}> ({u.get('id')})."),
          read_only=True)


@TOOLS.tool("get_current_user", "Who PagerDuty thinks you are: the signed-in user or the API key's (an account-level "
            "key has none).", obj({}), read_only=True)
async def get_current_user(ctx: Context, args: Args) -> ToolOutput:
    body = await ctx.client.json("GET", "/users/me")
    user = body.get("user") or {}
    return object_output(f"PagerDuty sees you as {user.get('name')} <{user.get('email')}> ({user.get('id')}, "
                         f"role {user.get('role')}).", user, ctx.max_chars)


TOOLS.add("list_schedules", "List PagerDuty on-call schedules (name, time zone, users, escalation policies); "
          "list_oncalls says who is on call.",
          lambda ctx: obj({"query": QUERY, **paging(ctx.page_size, "schedules")}),
          lister("/schedules", "schedules", "list_schedules", compact_schedule, query_and(), "schedules"),
          read_only=True)
TOOLS.add("get_schedule", "Get one PagerDuty schedule with its layers and final schedule (who is on call when) "
          "from since to until (default: the next two weeks).",
          obj({"id": ident(), "since": date_time(), "until": date_time()}, ("id",)),
          getter("/schedules/{id}", "schedule", lambda s: f"Schedule {s.get('name')} ({s.get('id')}), time zone "
                                                          f"{s.get('time_zone')}.", schedule_window),
          read_only=True)


@TOOLS.tool("list_schedule_overrides", "List the overrides (temporary on-call swaps: who covers when) on a "
            "PagerDuty schedule from since to until.",
            obj({"id": ident(), "since": date_time(), "until": date_time()}, ("id", "since", "until")),
            read_only=True)
async def list_schedule_overrides(ctx: Context, args: Args) -> ToolOutput:
    params: Params = []
    window(args, params, required=True)
    body = await ctx.client.json("GET", f"/schedules/{segment(args.get('id'))}/overrides", params=params)
    overrides = [{"id": o.get("id"), "start": o.get("start"), "end": o.get("end"), "user": ref(o.get("user"))}
                 for o in body.get("overrides") or []]
    return list_output(f"{len(overrides)} overrides on schedule {args.get('id')} between {dict(params)['since']} "
                       f"and {dict(params)['until']}.", "overrides", overrides, ctx.max_chars)


TOOLS.add("list_oncalls", "Who is on call in PagerDuty: entries of user, schedule, escalation policy and level with "
          "start and end; now when since/until are left out.",
          lambda ctx: obj({"user_ids": ids("user"), "escalation_policy_ids": ids("escalation policy"),
                           "schedule_ids": ids("schedule"),
                           "since": date_time(),
                           "until": date_time("At most 90 days after since."),
                           "earliest": {"type": "boolean", "default": False,
                                        "description": "Only the earliest entry per user, policy and level (who is "
                                                       "next)."},
                           **paging(ctx.page_size, "on-call entries")}),
          lister("/oncalls", "oncalls", "list_oncalls", compact_oncall, oncall_params, "on-call entries"),
          read_only=True)
TOOLS.add("list_escalation_policies", "List PagerDuty escalation policies with their levels (who is notified, "
          "after how many minutes).",
          lambda ctx: obj({"query": QUERY, "user_ids": ids("user", 20, "Targeting these users."),
                           "team_ids": ids("team"), **paging(ctx.page_size, "escalation policies")}),
          lister("/escalation_policies", "escalation_policies", "list_escalation_policies", compact_policy,
                 query_and("user_ids", "team_ids"), "escalation policies"),
          read_only=True)
TOOLS.add("get_escalation_policy", "Get one PagerDuty escalation policy in full: its levels and targets, services "
          "and teams.", obj({"id": ident()}, ("id",)),
          getter("/escalation_policies/{id}", "escalation_policy",
                 lambda p: f"Escalation policy {p.get('name')} ({p.get('id')})."),
          read_only=True)
TOOLS.add("list_teams", "List PagerDuty teams (id, name), e.g. for team_ids filters of incidents, services, users.",
          lambda ctx: obj({"query": QUERY, **paging(ctx.page_size, "teams")}),
          lister("/teams", "teams", "list_teams", lambda t: fields(t, ("id", "name", "description", "html_url")),
                 query_and(), "teams"),
          read_only=True)
TOOLS.add("list_priorities", "List the account's PagerDuty incident priorities (e.g. P1-P5), highest first, for "
          "priority_ids and priority_id.",
          lambda ctx: obj({**paging(ctx.page_size, "priorities")}),
          lister("/priorities", "priorities", "list_priorities",
                 lambda p: fields(p, ("id", "name", "description")), query_and(), "priorities"),
          read_only=True)
