"""Directory tools: services, users, schedules and overrides, on-calls, escalation policies, teams, priorities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp_proxy.connectors.base import RestTool, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.pagerduty.schemas import (
    QUERY, add_list, date_time, ident, ids, obj, page_args, paged_output, paging, ref, refs, segment, window,
)


class Context(Protocol):
    client: RestClient
    max_chars: int
    page_size: int


def compact_user(u: dict[str, Any]) -> dict[str, Any]:
    return {k: u.get(k) for k in ("id", "name", "email", "role", "job_title", "time_zone", "html_url")
            if u.get(k) is not None} | ({"teams": refs(u["teams"])} if u.get("teams") else {})


def compact_service(s: dict[str, Any]) -> dict[str, Any]:
    return {k: s.get(k) for k in ("id", "name", "description", "status", "last_incident_timestamp", "html_url")
            if s.get(k) is not None} | {"escalation_policy": ref(s.get("escalation_policy")),
                                        "teams": refs(s.get("teams"))}


def compact_policy(p: dict[str, Any]) -> dict[str, Any]:
    rules = [{"level": i + 1, "delay_minutes": r.get("escalation_delay_in_minutes"),
              "targets": [{"type": t.get("type"), **(ref(t) or {})} for t in r.get("targets") or []]}
             for i, r in enumerate(p.get("escalation_rules") or [])]
    return {k: p.get(k) for k in ("id", "name", "description", "num_loops", "html_url") if p.get(k) is not None} | {
        "levels": rules, "services": refs(p.get("services")), "teams": refs(p.get("teams"))}


def directory_tools(ctx: Context) -> list[RestTool]:
    def lister(path: str, key: str, tool_name: str, compact: Callable[[dict[str, Any]], Any],
               build: Callable[[dict[str, Any], list[tuple[str, Any]]], None], noun: str):  # noqa: ANN202
        async def handler(args: dict[str, Any]) -> ToolOutput:
            limit, offset = page_args(args, ctx.page_size)
            params: list[tuple[str, Any]] = [("limit", limit), ("offset", offset)]
            build(args, params)
            body = await ctx.client.json("GET", path, params=params)
            items = [compact(i) for i in body.get(key) or []]
            what = f" matching {args['query']!r}" if args.get("query") else ""
            return paged_output(f"{len(items)} {noun}{what} (offset {offset}).", key, items, ctx.max_chars,
                                tool=tool_name, offset=offset, more=bool(body.get("more")))
        return handler

    def getter(path: str, key: str, title: Callable[[dict[str, Any]], str],
               params: Callable[[dict[str, Any]], list[tuple[str, Any]]] | None = None):  # noqa: ANN202
        async def handler(args: dict[str, Any]) -> ToolOutput:
            query = params(args) if params else None
            body = await ctx.client.json("GET", path.format(id=segment(args.get("id"))), params=query)
            item = body.get(key) or {}
            return object_output(title(item), item, ctx.max_chars)
        return handler

    def query_and(*arrays: str) -> Callable[[dict[str, Any], list[tuple[str, Any]]], None]:
        def build(args: dict[str, Any], params: list[tuple[str, Any]]) -> None:
            if args.get("query"):
                params.append(("query", args["query"]))
            for name in arrays:
                add_list(params, name, args.get(name))
        return build

    def oncall_params(args: dict[str, Any], params: list[tuple[str, Any]]) -> None:
        for name in ("user_ids", "escalation_policy_ids", "schedule_ids"):
            add_list(params, name, args.get(name))
        window(args, params)
        if args.get("earliest"):
            params.append(("earliest", "true"))

    def oncall(o: dict[str, Any]) -> dict[str, Any]:
        return {"user": ref(o.get("user")), "schedule": ref(o.get("schedule")),
                "escalation_policy": ref(o.get("escalation_policy")), "escalation_level": o.get("escalation_level"),
                "start": o.get("start"), "end": o.get("end")}

    def schedule_window(args: dict[str, Any]) -> list[tuple[str, Any]]:
        params: list[tuple[str, Any]] = []
        window(args, params)
        return params

    async def list_schedule_overrides(args: dict[str, Any]) -> ToolOutput:
        params: list[tuple[str, Any]] = []
        window(args, params, required=True)
        body = await ctx.client.json("GET", f"/schedules/{segment(args.get('id'))}/overrides", params=params)
        overrides = [{"id": o.get("id"), "start": o.get("start"), "end": o.get("end"), "user": ref(o.get("user"))}
                     for o in body.get("overrides") or []]
        return list_output(f"{len(overrides)} overrides on schedule {args.get('id')} between {dict(params)['since']} "
                           f"and {dict(params)['until']}.", "overrides", overrides, ctx.max_chars)

    async def get_current_user(args: dict[str, Any]) -> ToolOutput:
        body = await ctx.client.json("GET", "/users/me")
        user = body.get("user") or {}
        return object_output(f"PagerDuty sees you as {user.get('name')} <{user.get('email')}> ({user.get('id')}, "
                             f"role {user.get('role')}).", user, ctx.max_chars)

    def schedule(s: dict[str, Any]) -> dict[str, Any]:
        return {k: s.get(k) for k in ("id", "name", "description", "time_zone", "html_url") if s.get(k) is not None} \
            | {"users": refs(s.get("users")), "escalation_policies": refs(s.get("escalation_policies")),
               "teams": refs(s.get("teams"))}

    tool = _tool_maker()
    one = obj
    return [
        tool("list_services", lister("/services", "services", "list_services", compact_service,
                                     query_and("team_ids"), "services"),
             one({"query": QUERY, "team_ids": ids("team"), **paging(ctx.page_size, "services")}),
             "List PagerDuty services (what incidents are raised on) with their status, escalation policy and "
             "teams. Use it to find a service id for list_incidents or create_incident."),
        tool("get_service", getter("/services/{id}", "service", lambda s: f"Service {s.get('name')} ({s.get('id')}), "
                                   f"status {s.get('status')}."),
             one({"id": ident("service")}, ("id",)),
             "Get one PagerDuty service in full: status, escalation policy, teams, integrations, urgency rules."),
        tool("list_users", lister("/users", "users", "list_users", compact_user, query_and("team_ids"), "users"),
             one({"query": text_query("name or email"), "team_ids": ids("team"), **paging(ctx.page_size, "users")}),
             "List PagerDuty users (name, email, role, teams). Use it to find a user id, e.g. to reassign an "
             "incident or filter incidents or on-calls by user."),
        tool("get_user", getter("/users/{id}", "user", lambda u: f"User {u.get('name')} <{u.get('email')}> "
                                f"({u.get('id')})."), one({"id": ident("user")}, ("id",)),
             "Get one PagerDuty user in full: contact details, role, time zone, teams."),
        tool("get_current_user", get_current_user, one({}),
             "Who PagerDuty thinks you are: the user of the configured API key or signed-in account (fails for "
             "account-level keys, which belong to no user)."),
        tool("list_schedules", lister("/schedules", "schedules", "list_schedules", schedule, query_and(),
                                      "schedules"),
             one({"query": QUERY, **paging(ctx.page_size, "schedules")}),
             "List PagerDuty on-call schedules (name, time zone, users, escalation policies). Use list_oncalls to "
             "see who is on call now."),
        tool("get_schedule", getter("/schedules/{id}", "schedule", lambda s: f"Schedule {s.get('name')} "
                                    f"({s.get('id')}), time zone {s.get('time_zone')}.", schedule_window),
             one({"id": ident("schedule"), "since": date_time("Render entries from this time."),
                  "until": date_time("Render entries until this time.")}, ("id",)),
             "Get one PagerDuty schedule with its layers and rendered final schedule (who is on call when) for the "
             "since/until window (default: the next two weeks)."),
        tool("list_schedule_overrides", list_schedule_overrides,
             one({"id": ident("schedule"), "since": date_time("Start of the window."),
                  "until": date_time("End of the window.")}, ("id", "since", "until")),
             "List the overrides (temporary on-call swaps: who covers when) on a PagerDuty schedule in a time "
             "window."),
        tool("list_oncalls", lister("/oncalls", "oncalls", "list_oncalls", oncall, oncall_params, "on-call entries"),
             one({"user_ids": ids("user"), "escalation_policy_ids": ids("escalation policy"),
                  "schedule_ids": ids("schedule"),
                  "since": date_time("Start of the window (default now)."),
                  "until": date_time("End of the window (at most 90 days after since)."),
                  "earliest": {"type": "boolean", "default": False,
                               "description": "Only the earliest on-call entry per user, escalation policy and "
                                              "level (who is on call next)."},
                  **paging(ctx.page_size, "on-call entries")}),
             "Who is on call in PagerDuty: entries of user, schedule, escalation policy and level with start and "
             "end. Without since/until it shows who is on call now. Filter by user, schedule or policy."),
        tool("list_escalation_policies", lister("/escalation_policies", "escalation_policies",
                                                "list_escalation_policies", compact_policy,
                                                query_and("user_ids", "team_ids"), "escalation policies"),
             one({"query": QUERY, "user_ids": ids("user", 20, "Only policies that target these users."), "team_ids": ids("team"),
                  **paging(ctx.page_size, "escalation policies")}),
             "List PagerDuty escalation policies with their levels (who is notified, after how many minutes). Use "
             "it to find a policy id for reassign_incident or a level for escalate_incident."),
        tool("get_escalation_policy", getter("/escalation_policies/{id}", "escalation_policy",
                                             lambda p: f"Escalation policy {p.get('name')} ({p.get('id')})."),
             one({"id": ident("escalation policy")}, ("id",)),
             "Get one PagerDuty escalation policy in full: its levels and targets, services and teams."),
        tool("list_teams", lister("/teams", "teams", "list_teams",
                                  lambda t: {k: t.get(k) for k in ("id", "name", "description", "html_url")
                                             if t.get(k) is not None}, query_and(), "teams"),
             one({"query": QUERY, **paging(ctx.page_size, "teams")}),
             "List PagerDuty teams (id, name). Use a team id to filter incidents, services or users."),
        tool("list_priorities", lister("/priorities", "priorities", "list_priorities",
                                       lambda p: {k: p.get(k) for k in ("id", "name", "description")
                                                  if p.get(k) is not None}, query_and(), "priorities"),
             one({**paging(ctx.page_size, "priorities")}),
             "List the account's incident priorities (e.g. P1-P5), highest first. Use a priority id to filter "
             "incidents or set one on create_incident."),
    ]


def text_query(what: str) -> dict[str, Any]:
    return {**QUERY, "description": f"Only those whose {what} contains this text (case-insensitive)."}


def _tool_maker() -> Callable[..., RestTool]:
    def tool(name: str, handler: Callable[[dict[str, Any]], Awaitable[ToolOutput]], schema: dict[str, Any],
             description: str) -> RestTool:
        return RestTool(name=name, description=description, input_schema=schema, handler=handler, read_only=True,
                        idempotent=True, title=name.replace("_", " ").capitalize())
    return tool
