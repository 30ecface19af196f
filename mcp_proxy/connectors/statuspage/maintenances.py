"""Scheduled maintenances: Statuspage stores them as incidents with a schedule and their own statuses."""

from __future__ import annotations

from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.schema import enum, iso, obj, text, utc
from mcp_proxy.connectors.statuspage.client import segment
from mcp_proxy.connectors.statuspage.context import Context
from mcp_proxy.connectors.statuspage.incidents import incident_list, paging, save
from mcp_proxy.connectors.statuspage.schemas import (
    DATE_TIME,
    DELIVER_NOTIFICATIONS,
    ID_PATTERN,
    MAINTENANCE_STATUSES,
    PAGE_ID,
    flag,
    ident,
    optional_text,
    required_flag,
    required_text,
)
from mcp_proxy.connectors.tools import Args, ToolTable

TOOLS: ToolTable[Context] = ToolTable()
MAINTENANCE_ID = ident("From list_maintenances.")
# Which maintenances → the incidents sub-path that lists them.
_LISTS = {"upcoming": "upcoming", "active": "active_maintenance", "scheduled": "scheduled"}


@TOOLS.tool("list_maintenances", "List scheduled maintenances: upcoming (not started), active (in progress) or "
            "scheduled (all in that state). Paged.",
            lambda ctx: obj({"page_id": PAGE_ID, "which": enum("",
                                                               ["upcoming", "active", "scheduled"], "upcoming"),
                             **paging(ctx)}),
            read_only=True, title="List maintenances")
async def list_maintenances(ctx: Context, args: Args) -> ToolOutput:
    which = args.get("which") or "upcoming"
    path = _LISTS.get(which)
    if path is None:
        raise ConnectorError("which must be upcoming, active or scheduled", "bad_argument")
    return await incident_list(ctx, args, path, "maintenances", "list_maintenances",
                               lambda count, page: f"{count} {which} maintenances (page {page}).")


@TOOLS.tool("create_maintenance", "Schedule a maintenance window on the status page; by default it starts and ends "
            "itself, its components under_maintenance meanwhile. With deliver_notifications, subscribers are "
            "emailed now, before, at start and at end (each can be set).",
            obj({"page_id": PAGE_ID, "name": text("Title.", 255, 1),
                 "scheduled_for": DATE_TIME, "scheduled_until": DATE_TIME,
                 "body": text("What will happen; what users notice.", 25000),
                 "component_ids": {"type": "array", "maxItems": 50, "uniqueItems": True,
                                   "items": {"type": "string", "pattern": ID_PATTERN, "maxLength": 64},
                                   "description": "From list_components."},
                 "deliver_notifications": DELIVER_NOTIFICATIONS,
                 "scheduled_remind_prior": flag("An hour before. Default: deliver_notifications."),
                 "notify_at_start": flag("Default: deliver_notifications."),
                 "notify_at_end": flag("Default: deliver_notifications."),
                 "auto_start": flag("In progress at scheduled_for.", True),
                 "auto_complete": flag("Completed at scheduled_until.", True),
                 "set_components_under_maintenance": flag("Set components to under_maintenance when it starts.",
                                                          True),
                 "set_components_operational_after": flag("Set components to operational when it ends.", True)},
                ("name", "scheduled_for", "scheduled_until", "deliver_notifications")),
            read_only=False, title="Schedule maintenance")
async def create_maintenance(ctx: Context, args: Args) -> ToolOutput:
    notify = required_flag(args)
    start, end = utc(args.get("scheduled_for"), "scheduled_for"), utc(args.get("scheduled_until"), "scheduled_until")
    if end <= start:
        raise ConnectorError("scheduled_until must be after scheduled_for", "bad_argument")
    body: dict[str, Any] = {"name": required_text(args, "name", 255), "status": "scheduled",
                            "scheduled_for": iso(start), "scheduled_until": iso(end),
                            "deliver_notifications": notify,
                            # Reminders and automatic start/end messages notify too: they follow the
                            # explicit choice unless set on their own.
                            "scheduled_remind_prior": args.get("scheduled_remind_prior", notify),
                            "auto_transition_deliver_notifications_at_start": args.get("notify_at_start", notify),
                            "auto_transition_deliver_notifications_at_end": args.get("notify_at_end", notify),
                            "scheduled_auto_in_progress": args.get("auto_start", True),
                            "scheduled_auto_completed": args.get("auto_complete", True),
                            "auto_transition_to_maintenance_state": args.get("set_components_under_maintenance",
                                                                             True),
                            "auto_transition_to_operational_state": args.get("set_components_operational_after",
                                                                             True)}
    optional_text(body, args, "body", 25000)
    ids = [segment(c, "component_ids item") for c in args.get("component_ids") or []]
    if ids:
        body["component_ids"] = ids
    return await save(ctx, args, "POST", None, body, verb="Scheduled maintenance", notify=notify, components=False)


@TOOLS.tool("update_maintenance", "Change a scheduled maintenance: post an update (status, message), move its window "
            "or rename it. With deliver_notifications, subscribers are emailed.",
            obj({"page_id": PAGE_ID, "incident_id": MAINTENANCE_ID,
                 "status": enum("", MAINTENANCE_STATUSES),
                 "body": text("Needs status.", 25000), "name": text("New title.", 255),
                 "scheduled_for": DATE_TIME, "scheduled_until": DATE_TIME,
                 "deliver_notifications": DELIVER_NOTIFICATIONS},
                ("incident_id", "deliver_notifications")),
            read_only=False, title="Update maintenance")
async def update_maintenance(ctx: Context, args: Args) -> ToolOutput:
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
    optional_text(body, args, "name", 255)
    for name in ("scheduled_for", "scheduled_until"):
        if args.get(name):
            body[name] = iso(utc(args[name], name))
    if len(body) == 1:
        raise ConnectorError("nothing to change: pass status and body (a new update), name, scheduled_for or "
                             "scheduled_until", "bad_argument")
    return await save(ctx, args, "PATCH", iid, body, verb="Updated maintenance", notify=notify, components=False)
