"""Incident tools: search and read incidents, their notes, alerts and log entries, and change them."""

from __future__ import annotations

from typing import Any, Protocol

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.pagerduty.client import AlreadyDone
from mcp_proxy.connectors.pagerduty.params import add_list, page_args, paged_output, segment, window
from mcp_proxy.connectors.pagerduty.schemas import date_time, enums, ident, ids, paging
from mcp_proxy.connectors.pagerduty.views import compact_incident, ref
from mcp_proxy.connectors.schema import obj, text
from mcp_proxy.connectors.tools import Args, ToolTable

STATUSES = ["triggered", "acknowledged", "resolved"]
URGENCIES = ["high", "low"]
SORT_BY = [f"{f}:{d}" for f in ("created_at", "resolved_at", "incident_number", "urgency") for d in ("desc", "asc")]
INCIDENT_ID = {"type": "string", "pattern": r"^[A-Za-z0-9]{1,64}$", "description": "Incident id or number."}
ID_ONLY = obj({"id": INCIDENT_ID}, ("id",))
CONTENT_MAX = 25000


class Context(Protocol):
    client: RestClient
    max_chars: int
    page_size: int

    async def write(self, method: str, path: str, body: dict[str, Any]) -> Any: ...


TOOLS: ToolTable[Context] = ToolTable(title_from_name=True)


def _headline(inc: dict[str, Any]) -> str:
    return f"Incident #{inc.get('incident_number')} ({inc.get('id')}) [{inc.get('status')}, {inc.get('urgency')}]: " \
           f"{inc.get('title')}"


def _first_page(ctx: Context, args: Args) -> tuple[int, list[tuple[str, Any]]]:
    """The offset asked for, and the paging parameters of the request."""
    limit, offset = page_args(args, ctx.page_size)
    return offset, [("limit", limit), ("offset", offset)]


@TOOLS.tool("list_incidents", "List PagerDuty incidents, newest first. Without since/until: the last 30 days "
            "(date_range='all' for all).",
            lambda ctx: obj({
                "statuses": enums("", STATUSES),
                "urgencies": enums("", URGENCIES),
                "service_ids": ids("service"), "team_ids": ids("team"),
                "user_ids": ids("user", 20, "Assigned to these users."),
                "priority_ids": ids("priority"),
                "incident_key": text("De-duplication key.", 255, 1),
                "since": date_time("Created at or after."),
                "until": date_time("At most 6 months after since."),
                "date_range": {"type": "string", "enum": ["all"],
                               "description": "Instead of since/until."},
                "sort_by": {"type": "array", "items": {"type": "string", "enum": SORT_BY}, "uniqueItems": True,
                            "minItems": 1, "maxItems": 2},
                "total": {"type": "boolean", "default": False,
                          "description": "Also count all matches (slower)."},
                **paging(ctx.page_size, "incidents"),
            }), read_only=True)
async def list_incidents(ctx: Context, args: Args) -> ToolOutput:
    offset, params = _first_page(ctx, args)
    for name in ("statuses", "urgencies", "service_ids", "team_ids", "user_ids", "priority_ids"):
        add_list(params, name, args.get(name))
    if args.get("date_range") == "all":
        if args.get("since") or args.get("until"):
            raise ConnectorError("use either date_range='all' or since/until, not both", "bad_argument")
        params.append(("date_range", "all"))
    window(args, params)
    if args.get("incident_key"):
        params.append(("incident_key", args["incident_key"]))
    # PagerDuty sorts oldest first unless told; a model almost always wants the newest first.
    params.append(("sort_by", ",".join(args.get("sort_by") or ["created_at:desc"])))
    if args.get("total"):
        params.append(("total", "true"))
    body = await ctx.client.json("GET", "/incidents", params=params)
    incidents = [compact_incident(i) for i in body.get("incidents") or []]
    span = "all time" if args.get("date_range") == "all" else (
        "the given window" if args.get("since") or args.get("until") else "the last 30 days (PagerDuty's default)")
    return paged_output(f"{len(incidents)} incidents from {span} (offset {offset}); get_incident shows one in "
                        "full.", "incidents", incidents, ctx.max_chars, tool="list_incidents", offset=offset,
                        more=bool(body.get("more")), total=body.get("total"))


@TOOLS.tool("get_incident", "Get one PagerDuty incident in full (assignments, acknowledgements, escalation policy, "
            "body, alert counts). Use it before changing an incident.", ID_ONLY, read_only=True)
async def get_incident(ctx: Context, args: Args) -> ToolOutput:
    body = await ctx.client.json("GET", f"/incidents/{segment(args.get('id'))}")
    inc = body.get("incident") or {}
    return object_output(_headline(inc), inc, ctx.max_chars)


async def _update(ctx: Context, args: Args, fields: dict[str, Any], verb: str) -> ToolOutput:
    iid = segment(args.get("id"))
    try:
        body = await ctx.write("PUT", f"/incidents/{iid}", {"incident": {"type": "incident_reference", **fields}})
    except AlreadyDone as done:
        return ToolOutput(text=done.message, structured={"id": args.get("id"), "changed": False,
                                                         "reason": done.error_type})
    inc = body.get("incident") or {}
    return ToolOutput(text=f"Done: {verb}. {_headline(inc)}", structured={"changed": True,
                                                                       "incident": compact_incident(inc)})


@TOOLS.tool("acknowledge_incident", "Acknowledge a triggered PagerDuty incident as the configured user: stops its "
            "escalation and notifications. Repeating it is harmless.", ID_ONLY, read_only=False, idempotent=True)
async def acknowledge_incident(ctx: Context, args: Args) -> ToolOutput:
    return await _update(ctx, args, {"status": "acknowledged"}, "incident acknowledged")


@TOOLS.tool("resolve_incident", "Resolve a PagerDuty incident (its alerts resolve too). Only when the problem is "
            "fixed or the incident is noise; an already resolved one is reported unchanged.",
            obj({"id": INCIDENT_ID,
                 "resolution": text("How it was resolved (in the resolve log entry).", 10000)}, ("id",)),
            read_only=False, destructive=True)
async def resolve_incident(ctx: Context, args: Args) -> ToolOutput:
    fields: dict[str, Any] = {"status": "resolved"}
    if args.get("resolution"):
        fields["resolution"] = args["resolution"]
    return await _update(ctx, args, fields, "incident resolved")


@TOOLS.tool("reassign_incident", "Reassign a PagerDuty incident to users (user_ids, replacing the assignees) or to an "
            "escalation policy (escalation_policy_id): exactly one. The new assignees are notified.",
            obj({"id": INCIDENT_ID,
                 "user_ids": ids("user", 10), "escalation_policy_id": ident()}, ("id",)),
            read_only=False, destructive=True)
async def reassign_incident(ctx: Context, args: Args) -> ToolOutput:
    users, policy = args.get("user_ids"), args.get("escalation_policy_id")
    if bool(users) == bool(policy):
        raise ConnectorError("give either user_ids (assign to these users) or escalation_policy_id (hand the "
                             "incident to that policy), not both and not neither", "bad_argument")
    if users:
        fields: dict[str, Any] = {"assignments": [
            {"assignee": {"id": segment(u, "user_ids[]"), "type": "user_reference"}} for u in users]}
        verb = f"incident reassigned to {len(users)} user(s)"
    else:
        fields = {"escalation_policy": {"id": segment(policy, "escalation_policy_id"),
                                        "type": "escalation_policy_reference"}}
        verb = f"incident reassigned to escalation policy {policy}"
    return await _update(ctx, args, fields, verb)


@TOOLS.tool("escalate_incident", "Escalate a PagerDuty incident to a level of its escalation policy: the on-call "
            "responders of that level are assigned and notified.",
            obj({"id": INCIDENT_ID,
                 "escalation_level": {"type": "integer", "minimum": 1, "maximum": 20,
                                      "description": "1 = the policy's first rule."}}, ("id", "escalation_level")),
            read_only=False, destructive=True)
async def escalate_incident(ctx: Context, args: Args) -> ToolOutput:
    level = args.get("escalation_level")
    if not isinstance(level, int) or isinstance(level, bool) or level < 1:
        raise ConnectorError("escalation_level must be an integer ≥ 1 (a level of the incident's escalation "
                             "policy; get_escalation_policy lists them)", "bad_argument")
    return await _update(ctx, args, {"escalation_level": level}, f"incident escalated to level {level}")


@TOOLS.tool("add_incident_note", "Add a note (e.g. findings, next steps) to a PagerDuty incident's timeline, as the "
            "configured user. Notes cannot be edited or deleted.",
            obj({"id": INCIDENT_ID, "content": text("Plain text.", CONTENT_MAX, 1)},
                ("id", "content")),
            read_only=False)
async def add_incident_note(ctx: Context, args: Args) -> ToolOutput:
    content = str(args.get("content") or "").strip()
    if not content:
        raise ConnectorError("content must not be empty", "bad_argument")
    iid = segment(args.get("id"))
    body = await ctx.write("POST", f"/incidents/{iid}/notes", {"note": {"content": content}})
    note = body.get("note") or {}
    return ToolOutput(text=f"Note {note.get('id')} added to incident {args.get('id')}.", structured={"note": note})


@TOOLS.tool("list_incident_notes", "List all notes of a PagerDuty incident (author, time, text), oldest first.",
            ID_ONLY, read_only=True)
async def list_incident_notes(ctx: Context, args: Args) -> ToolOutput:
    body = await ctx.client.json("GET", f"/incidents/{segment(args.get('id'))}/notes")
    notes = [{"id": n.get("id"), "created_at": n.get("created_at"), "user": ref(n.get("user")),
              "content": n.get("content")} for n in body.get("notes") or []]
    return list_output(f"{len(notes)} notes on incident {args.get('id')} (PagerDuty returns all at once).",
                       "notes", notes, ctx.max_chars)


@TOOLS.tool("list_incident_alerts", "List the alerts grouped into a PagerDuty incident: the raw signals monitoring "
            "sent (summary, severity, details).",
            lambda ctx: obj({"id": INCIDENT_ID,
                             "statuses": enums("", ["triggered", "resolved"]),
                             **paging(ctx.page_size, "alerts")}, ("id",)),
            read_only=True)
async def list_incident_alerts(ctx: Context, args: Args) -> ToolOutput:
    offset, params = _first_page(ctx, args)
    add_list(params, "statuses", args.get("statuses"))
    body = await ctx.client.json("GET", f"/incidents/{segment(args.get('id'))}/alerts", params=params)
    alerts = [{k: a.get(k) for k in ("id", "status", "severity", "summary", "alert_key", "created_at",
                                     "suppressed", "html_url") if a.get(k) is not None}
              | {"service": ref(a.get("service")), "details": (a.get("body") or {}).get("details")}
              for a in body.get("alerts") or []]
    return paged_output(f"{len(alerts)} alerts of incident {args.get('id')} (offset {offset}).", "alerts",
                        alerts, ctx.max_chars, tool="list_incident_alerts", offset=offset,
                        more=bool(body.get("more")))


@TOOLS.tool("list_incident_log_entries", "List a PagerDuty incident's timeline (log entries): triggers, notifications, "
            "acknowledgements, reassignments, notes, resolution, with who and when.",
            lambda ctx: obj({"id": INCIDENT_ID,
                             "since": date_time("At or after."),
                             "until": date_time("Before."),
                             "is_overview": {"type": "boolean", "default": False,
                                             "description": "Only the important changes."},
                             **paging(ctx.page_size, "log entries")}, ("id",)),
            read_only=True)
async def list_incident_log_entries(ctx: Context, args: Args) -> ToolOutput:
    offset, params = _first_page(ctx, args)
    window(args, params)
    if args.get("is_overview"):
        params.append(("is_overview", "true"))
    body = await ctx.client.json("GET", f"/incidents/{segment(args.get('id'))}/log_entries", params=params)
    entries = [{k: e.get(k) for k in ("id", "type", "created_at", "summary", "note") if e.get(k) is not None}
               | {"agent": ref(e.get("agent")), "channel": (e.get("channel") or {}).get("type")}
               for e in body.get("log_entries") or []]
    return paged_output(f"{len(entries)} log entries of incident {args.get('id')}, newest first (offset "
                        f"{offset}).", "log_entries", entries, ctx.max_chars, tool="list_incident_log_entries",
                        offset=offset, more=bool(body.get("more")))


@TOOLS.tool("create_incident", "Create (trigger) a PagerDuty incident on a service (list_services); this pages the "
            "on-call responders.",
            obj({"title": text("The problem, briefly.", 1024, 1),
                 "service_id": ident(),
                 "urgency": {"type": "string", "enum": URGENCIES,
                             "description": "Default: the service's rule."},
                 "details": text("The incident body.", 25000),
                 "incident_key": text("De-duplication key: refused if an open incident of the service has it.", 255),
                 "priority_id": ident("From list_priorities."),
                 "escalation_policy_id": ident("Instead of the service's."),
                 "assignee_user_ids": ids("user", 10, "Instead of an escalation policy.")}, ("title", "service_id")),
            read_only=False)
async def create_incident(ctx: Context, args: Args) -> ToolOutput:
    title = str(args.get("title") or "").strip()
    if not title:
        raise ConnectorError("title must not be empty", "bad_argument")
    incident: dict[str, Any] = {"type": "incident", "title": title,
                                "service": {"id": segment(args.get("service_id"), "service_id"),
                                            "type": "service_reference"}}
    if args.get("urgency"):
        incident["urgency"] = args["urgency"]
    if args.get("details"):
        incident["body"] = {"type": "incident_body", "details": args["details"]}
    if args.get("incident_key"):
        incident["incident_key"] = args["incident_key"]
    if args.get("priority_id"):
        incident["priority"] = {"id": segment(args["priority_id"], "priority_id"), "type": "priority_reference"}
    if args.get("escalation_policy_id") and args.get("assignee_user_ids"):
        raise ConnectorError("give escalation_policy_id or assignee_user_ids, not both", "bad_argument")
    if args.get("escalation_policy_id"):
        incident["escalation_policy"] = {"id": segment(args["escalation_policy_id"], "escalation_policy_id"),
                                         "type": "escalation_policy_reference"}
    if args.get("assignee_user_ids"):
        incident["assignments"] = [{"assignee": {"id": segment(u, "assignee_user_ids[]"),
                                                 "type": "user_reference"}} for u in args["assignee_user_ids"]]
    body = await ctx.write("POST", "/incidents", {"incident": incident})
    inc = body.get("incident") or {}
    return ToolOutput(text=f"Created. {_headline(inc)} {inc.get('html_url') or ''}".rstrip(),
                      structured={"incident": compact_incident(inc)})
