"""Incidents and scheduled maintenances (Statuspage stores both as incidents).

A new incident update is posted by PATCHing the incident with `status` and `body` (there is no
create-update endpoint). Every write that can notify subscribers takes a required
`deliver_notifications`: the API's default (true) would email people without anyone choosing to.
"""

from __future__ import annotations

from typing import Any, Protocol

from mcp_proxy.connectors.base import ConnectorError, RestTool, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.statuspage.client import Scope, segment
from mcp_proxy.connectors.statuspage.schemas import (
    COMPONENT_MAP, DATE_TIME, DELIVER_NOTIFICATIONS, ID_PATTERN, IMPACTS, INCIDENT_STATUSES, MAINTENANCE_STATUSES,
    PAGE_ID, compact, component_map, enum, flag, ident, integer, iso, obj, page_arg, paged_output, pick,
    required_flag, required_text, size_arg, text, utc,
)

INCIDENT_FIELDS = ("id", "name", "status", "impact", "impact_override", "shortlink", "created_at", "updated_at",
                   "monitoring_at", "resolved_at", "scheduled_for", "scheduled_until", "scheduled_remind_prior",
                   "scheduled_auto_in_progress", "scheduled_auto_completed", "postmortem_body",
                   "postmortem_published_at", "metadata")
UPDATE_FIELDS = ("id", "status", "body", "display_at", "created_at", "deliver_notifications")
SUMMARY_CHARS = 300
NOTIFY_WORDS = {True: "subscribers are being notified", False: "subscribers were not notified"}


class Context(Protocol):
    client: RestClient
    scope: Scope
    max_chars: int
    page_size: int


def _components(incident: dict[str, Any]) -> list[dict[str, Any]]:
    return [compact(c, ("id", "name", "status")) for c in incident.get("components") or [] if isinstance(c, dict)]


def incident_row(incident: dict[str, Any]) -> dict[str, Any]:
    """A list entry: the essentials and the latest update, cut short."""
    row = compact(incident, ("id", "name", "status", "impact", "created_at", "updated_at", "resolved_at",
                             "scheduled_for", "scheduled_until", "shortlink"))
    comps = _components(incident)
    if comps:
        row["components"] = comps
    updates = [u for u in incident.get("incident_updates") or [] if isinstance(u, dict)]
    if updates:
        latest = max(updates, key=lambda u: str(u.get("display_at") or u.get("created_at") or ""))
        body = str(latest.get("body") or "")
        row["latest_update"] = {**compact(latest, ("status", "display_at", "created_at")),
                                "body": body if len(body) <= SUMMARY_CHARS else body[:SUMMARY_CHARS] + "…"}
    return row


def incident_detail(incident: dict[str, Any]) -> dict[str, Any]:
    data = compact(incident, INCIDENT_FIELDS)
    data["components"] = _components(incident)
    updates = [compact(u, UPDATE_FIELDS) for u in incident.get("incident_updates") or [] if isinstance(u, dict)]
    data["incident_updates"] = sorted(updates, key=lambda u: str(u.get("display_at") or u.get("created_at") or ""),
                                      reverse=True)
    return data


def _written(verb: str, incident: dict[str, Any], notify: bool, max_chars: int) -> ToolOutput:
    data = incident_detail(incident)
    link = f" {data['shortlink']}" if data.get("shortlink") else ""
    return object_output(f"{verb}: {data.get('name', '?')} ({data.get('id', '?')}) is {data.get('status', '?')};"
                         f" {NOTIFY_WORDS[notify]}.{link}", data, max_chars)


def incident_tools(ctx: Context) -> list[RestTool]:
    def base(args: dict[str, Any]) -> str:
        return f"/pages/{ctx.scope.page(args)}/incidents"

    def with_components(body: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        comps = component_map(args.get("components"))
        if comps:
            for cid in comps:
                segment(cid, "components key")
            body["component_ids"] = list(comps)
            body["components"] = comps
        return body

    async def list_incidents(args: dict[str, Any]) -> ToolOutput:
        page = integer(args, "page", 1, 1, 100000)
        limit = integer(args, "limit", min(ctx.page_size, 100), 1, 100)
        params: dict[str, Any] = {"page": page, "limit": limit}
        if args.get("q"):
            params["q"] = str(args["q"])
        items = await ctx.client.json("GET", base(args), params=params) or []
        rows = [incident_row(i) for i in items]
        what = f" matching {args['q']!r}" if args.get("q") else ""
        return paged_output(f"{len(rows)} incidents and maintenances{what}, newest first (page {page}); get_incident "
                            "shows one with all its updates.", "incidents", rows, ctx.max_chars,
                            tool="list_incidents", page=page, size=limit, size_name="limit")

    async def list_unresolved_incidents(args: dict[str, Any]) -> ToolOutput:
        page = integer(args, "page", 1, 1, 100000)
        size = integer(args, "per_page", min(ctx.page_size, 100), 1, 100)
        items = await ctx.client.json("GET", f"{base(args)}/unresolved", params={"page": page, "per_page": size}) or []
        rows = [incident_row(i) for i in items]
        return paged_output(f"{len(rows)} unresolved incidents (page {page}).", "incidents", rows, ctx.max_chars,
                            tool="list_unresolved_incidents", page=page, size=size)

    async def get_incident(args: dict[str, Any]) -> ToolOutput:
        iid = segment(args.get("incident_id"), "incident_id")
        incident = await ctx.client.json("GET", f"{base(args)}/{iid}") or {}
        data = incident_detail(incident)
        return object_output(f"{data.get('name', '?')} ({data.get('id', iid)}): {data.get('status', '?')}, impact "
                             f"{data.get('impact', '?')}, {len(data['incident_updates'])} updates (newest first).",
                             data, ctx.max_chars)

    async def create_incident(args: dict[str, Any]) -> ToolOutput:
        notify = required_flag(args)
        body: dict[str, Any] = {"name": required_text(args, "name", 255),
                                "status": args.get("status") or "investigating", "deliver_notifications": notify}
        if body["status"] not in INCIDENT_STATUSES:
            raise ConnectorError(f"status must be one of {', '.join(INCIDENT_STATUSES)} (for planned work use "
                                 "create_maintenance)", "bad_argument")
        if args.get("body"):
            body["body"] = required_text(args, "body", 25000)
        body.update(pick(args, "impact_override"))
        incident = await ctx.client.json("POST", base(args), json={"incident": with_components(body, args)}) or {}
        return _written("Created incident", incident, notify, ctx.max_chars)

    async def update_incident(args: dict[str, Any]) -> ToolOutput:
        iid = segment(args.get("incident_id"), "incident_id")
        notify = required_flag(args)
        status = args.get("status")
        if status not in INCIDENT_STATUSES:
            raise ConnectorError(f"status must be one of {', '.join(INCIDENT_STATUSES)} (pass the current status to "
                                 "keep it; maintenances use update_maintenance)", "bad_argument")
        body: dict[str, Any] = {"status": status, "body": required_text(args, "body", 25000),
                                "deliver_notifications": notify}
        if args.get("name"):
            body["name"] = required_text(args, "name", 255)
        body.update(pick(args, "impact_override"))
        incident = await ctx.client.json("PATCH", f"{base(args)}/{iid}",
                                         json={"incident": with_components(body, args)}) or {}
        return _written("Posted an update", incident, notify, ctx.max_chars)

    async def resolve_incident(args: dict[str, Any]) -> ToolOutput:
        iid = segment(args.get("incident_id"), "incident_id")
        notify = required_flag(args)
        message = str(args.get("body") or "").strip() or "This incident has been resolved."
        body = {"status": "resolved", "body": required_text({"body": message}, "body", 25000),
                "deliver_notifications": notify}
        incident = await ctx.client.json("PATCH", f"{base(args)}/{iid}",
                                         json={"incident": with_components(body, args)}) or {}
        return _written("Resolved", incident, notify, ctx.max_chars)

    async def list_maintenances(args: dict[str, Any]) -> ToolOutput:
        which = args.get("which") or "upcoming"
        path = {"upcoming": "upcoming", "active": "active_maintenance", "scheduled": "scheduled"}.get(which)
        if path is None:
            raise ConnectorError("which must be upcoming, active or scheduled", "bad_argument")
        page = integer(args, "page", 1, 1, 100000)
        size = integer(args, "per_page", min(ctx.page_size, 100), 1, 100)
        items = await ctx.client.json("GET", f"{base(args)}/{path}", params={"page": page, "per_page": size}) or []
        rows = [incident_row(i) for i in items]
        return paged_output(f"{len(rows)} {which} maintenances (page {page}).", "maintenances", rows, ctx.max_chars,
                            tool="list_maintenances", page=page, size=size)

    async def create_maintenance(args: dict[str, Any]) -> ToolOutput:
        notify = required_flag(args)
        start, end = utc(args.get("scheduled_for"), "scheduled_for"), utc(args.get("scheduled_until"),
                                                                          "scheduled_until")
        if end <= start:
            raise ConnectorError("scheduled_until must be after scheduled_for", "bad_argument")
        body: dict[str, Any] = {"name": required_text(args, "name", 255), "status": "scheduled",
                                "scheduled_for": iso(start), "scheduled_until": iso(end),
                                "deliver_notifications": notify,
                                # Reminders and automatic start/end messages notify too: they follow the
                                # explicit choice unless set on their own.
                                "scheduled_remind_prior": args.get("scheduled_remind_prior", notify),
                                "auto_transition_deliver_notifications_at_start":
                                    args.get("notify_at_start", notify),
                                "auto_transition_deliver_notifications_at_end": args.get("notify_at_end", notify),
                                "scheduled_auto_in_progress": args.get("auto_start", True),
                                "scheduled_auto_completed": args.get("auto_complete", True),
                                "auto_transition_to_maintenance_state": args.get("set_components_under_maintenance",
                                                                                 True),
                                "auto_transition_to_operational_state": args.get("set_components_operational_after",
                                                                                 True)}
        if args.get("body"):
            body["body"] = required_text(args, "body", 25000)
        ids = [segment(c, "component_ids item") for c in args.get("component_ids") or []]
        if ids:
            body["component_ids"] = ids
        incident = await ctx.client.json("POST", base(args), json={"incident": body}) or {}
        return _written("Scheduled maintenance", incident, notify, ctx.max_chars)

    async def update_maintenance(args: dict[str, Any]) -> ToolOutput:
        iid = segment(args.get("incident_id"), "incident_id")
        notify = required_flag(args)
        body: dict[str, Any] = {"deliver_notifications": notify}
        status = args.get("status")
        if status is not None and status not in MAINTENANCE_STATUSES:
            raise ConnectorError(f"status must be one of {', '.join(MAINTENANCE_STATUSES)}", "bad_argument")
        if args.get("body"):
            if status is None:
                raise ConnectorError("an update message (body) needs a status too; pass the maintenance's current "
                                     "status to keep it", "bad_argument")
            body["body"] = required_text(args, "body", 25000)
        if status:
            body["status"] = status
        if args.get("name"):
            body["name"] = required_text(args, "name", 255)
        for name in ("scheduled_for", "scheduled_until"):
            if args.get(name):
                body[name] = iso(utc(args[name], name))
        if len(body) == 1:
            raise ConnectorError("nothing to change: pass status and body (a new update), name, scheduled_for or "
                                 "scheduled_until", "bad_argument")
        incident = await ctx.client.json("PATCH", f"{base(args)}/{iid}", json={"incident": body}) or {}
        return _written("Updated maintenance", incident, notify, ctx.max_chars)

    incident_id = ident("The incident's id (from list_incidents or list_unresolved_incidents).")
    maintenance_id = ident("The maintenance's id (from list_maintenances).")
    impact = enum("Override the impact Statuspage computes from the component statuses.", IMPACTS)
    paging = {"page": page_arg(), "per_page": size_arg(ctx.page_size, "incidents")}
    return [
        RestTool("list_incidents", "List or search all incidents and maintenances of the page, newest first, with "
                 "their status, impact, components and latest update. `q` searches names, statuses, postmortems and "
                 "update texts. Paged (page, limit): the result says whether another page may exist.",
                 obj({"page_id": PAGE_ID, "q": text("Search text, e.g. 'database' or 'resolved'.", 500),
                      "page": page_arg(), "limit": size_arg(ctx.page_size, "incidents")}),
                 list_incidents, read_only=True, idempotent=True, title="List incidents"),
        RestTool("list_unresolved_incidents", "List the incidents that are not resolved yet (investigating, "
                 "identified or monitoring): what the status page currently reports as ongoing. Paged.",
                 obj({"page_id": PAGE_ID, **paging}), list_unresolved_incidents, read_only=True, idempotent=True,
                 title="List unresolved incidents"),
        RestTool("get_incident", "Get one incident or maintenance with every update (newest first), its components, "
                 "impact, schedule and postmortem.",
                 obj({"page_id": PAGE_ID, "incident_id": incident_id}, ("incident_id",)), get_incident,
                 read_only=True, idempotent=True, title="Get incident"),
        RestTool("create_incident", "Open a new (unplanned) incident on the public status page, optionally setting "
                 "component statuses. `body` becomes the first update. When deliver_notifications is true, the "
                 "page's subscribers are emailed (and texted / webhooked) at once. Returns the incident.",
                 obj({"page_id": PAGE_ID, "name": text("Incident title shown on the page.", 255, 1),
                      "status": enum("Initial status.", INCIDENT_STATUSES, "investigating"),
                      "body": text("The first update's message (what is happening).", 25000),
                      "impact_override": impact, "components": COMPONENT_MAP,
                      "deliver_notifications": DELIVER_NOTIFICATIONS}, ("name", "deliver_notifications")),
                 create_incident, read_only=False, title="Create incident"),
        RestTool("update_incident", "Post a new update to an incident: its status (pass the current one to keep it) "
                 "and a message, optionally changing component statuses, impact or title. When "
                 "deliver_notifications is true, subscribers are emailed the update. Use resolve_incident to close.",
                 obj({"page_id": PAGE_ID, "incident_id": incident_id,
                      "status": enum("The incident's status after this update.", INCIDENT_STATUSES),
                      "body": text("The update's message.", 25000, 1), "name": text("A new title.", 255),
                      "impact_override": impact, "components": COMPONENT_MAP,
                      "deliver_notifications": DELIVER_NOTIFICATIONS},
                     ("incident_id", "status", "body", "deliver_notifications")),
                 update_incident, read_only=False, title="Post incident update"),
        RestTool("resolve_incident", "Resolve an incident with a closing update; optionally set its components back "
                 "(e.g. {component_id: \"operational\"}). When deliver_notifications is true, subscribers are "
                 "emailed that it is resolved.",
                 obj({"page_id": PAGE_ID, "incident_id": incident_id,
                      "body": text("Closing message (default: 'This incident has been resolved.').", 25000),
                      "components": COMPONENT_MAP, "deliver_notifications": DELIVER_NOTIFICATIONS},
                     ("incident_id", "deliver_notifications")),
                 resolve_incident, read_only=False, title="Resolve incident"),
        RestTool("list_maintenances", "List scheduled maintenances: `upcoming` (not started yet, default), `active` "
                 "(in progress now) or `scheduled` (all in the scheduled state). Paged.",
                 obj({"page_id": PAGE_ID, "which": enum("Which maintenances.", ["upcoming", "active", "scheduled"],
                                                        "upcoming"), **paging}),
                 list_maintenances, read_only=True, idempotent=True, title="List maintenances"),
        RestTool("create_maintenance", "Schedule a maintenance window on the status page. By default it starts and "
                 "completes automatically and moves its components to under_maintenance and back. When "
                 "deliver_notifications is true, subscribers are emailed now, reminded before it starts and told "
                 "when it starts and ends (each of those can be set separately).",
                 obj({"page_id": PAGE_ID, "name": text("Title shown on the page.", 255, 1),
                      "scheduled_for": {**DATE_TIME, "description": "Start, ISO 8601 with time zone."},
                      "scheduled_until": {**DATE_TIME, "description": "End, ISO 8601 with time zone."},
                      "body": text("What will happen and what users will notice.", 25000),
                      "component_ids": {"type": "array", "maxItems": 50, "uniqueItems": True,
                                        "items": {"type": "string", "pattern": ID_PATTERN, "maxLength": 64},
                                        "description": "Affected components (ids from list_components)."},
                      "deliver_notifications": DELIVER_NOTIFICATIONS,
                      "scheduled_remind_prior": flag("Remind subscribers an hour before (default: deliver_notifications)."),
                      "notify_at_start": flag("Notify when it starts automatically (default: deliver_notifications)."),
                      "notify_at_end": flag("Notify when it completes automatically (default: deliver_notifications)."),
                      "auto_start": flag("Move to in_progress at scheduled_for.", True),
                      "auto_complete": flag("Move to completed at scheduled_until.", True),
                      "set_components_under_maintenance": flag("Set components to under_maintenance when it starts.",
                                                               True),
                      "set_components_operational_after": flag("Set components to operational when it ends.", True)},
                     ("name", "scheduled_for", "scheduled_until", "deliver_notifications")),
                 create_maintenance, read_only=False, title="Schedule maintenance"),
        RestTool("update_maintenance", "Change a scheduled maintenance: post an update (status scheduled, "
                 "in_progress, verifying or completed, with a message), move its window, or rename it. When "
                 "deliver_notifications is true, subscribers are emailed the update.",
                 obj({"page_id": PAGE_ID, "incident_id": maintenance_id,
                      "status": enum("The maintenance's status after this update.", MAINTENANCE_STATUSES),
                      "body": text("The update's message (needs status).", 25000), "name": text("A new title.", 255),
                      "scheduled_for": {**DATE_TIME, "description": "New start."},
                      "scheduled_until": {**DATE_TIME, "description": "New end."},
                      "deliver_notifications": DELIVER_NOTIFICATIONS},
                     ("incident_id", "deliver_notifications")),
                 update_maintenance, read_only=False, title="Update maintenance"),
    ]
