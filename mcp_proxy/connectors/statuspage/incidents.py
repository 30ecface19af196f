"""Incidents, and the incident views maintenances share (Statuspage stores both as incidents;
maintenances.py has the maintenance tools).

A new incident update is posted by PATCHing the incident with `status` and `body` (there is no
create-update endpoint). Every write that can notify subscribers takes a required
`deliver_notifications`: the API's default (true) would email people without anyone choosing to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.schema import enum, obj, pick, text
from mcp_proxy.connectors.statuspage.client import segment
from mcp_proxy.connectors.statuspage.context import Context, get_list, page_and_size
from mcp_proxy.connectors.statuspage.schemas import (
    COMPONENT_MAP,
    DELIVER_NOTIFICATIONS,
    IMPACTS,
    INCIDENT_STATUSES,
    PAGE_ID,
    compact,
    component_map,
    ident,
    optional_text,
    page_arg,
    paged_output,
    required_flag,
    required_text,
    size_arg,
)
from mcp_proxy.connectors.tools import Args, ToolTable

INCIDENT_FIELDS = ("id", "name", "status", "impact", "impact_override", "shortlink", "created_at", "updated_at",
                   "monitoring_at", "resolved_at", "scheduled_for", "scheduled_until", "scheduled_remind_prior",
                   "scheduled_auto_in_progress", "scheduled_auto_completed", "postmortem_body",
                   "postmortem_published_at", "metadata")
UPDATE_FIELDS = ("id", "status", "body", "display_at", "created_at", "deliver_notifications")
SUMMARY_CHARS = 300
NOTIFY_WORDS = {True: "subscribers are being notified", False: "subscribers were not notified"}
TOOLS: ToolTable[Context] = ToolTable()
INCIDENT_ID = ident("From list_incidents or list_unresolved_incidents.")
IMPACT = enum("Instead of the impact computed from component statuses.", IMPACTS)


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


def written(verb: str, incident: dict[str, Any], notify: bool, max_chars: int) -> ToolOutput:
    data = incident_detail(incident)
    link = f" {data['shortlink']}" if data.get("shortlink") else ""
    return object_output(f"{verb}: {data.get('name', '?')} ({data.get('id', '?')}) is {data.get('status', '?')};"
                         f" {NOTIFY_WORDS[notify]}.{link}", data, max_chars)


def incidents_path(ctx: Context, args: Args) -> str:
    """Where the page's incidents (and maintenances, which Statuspage stores as incidents) live."""
    return f"/pages/{ctx.scope.page(args)}/incidents"


def paging(ctx: Context) -> dict[str, Any]:
    return {"page": page_arg(), "per_page": size_arg(ctx.page_size, "incidents")}


async def incident_list(ctx: Context, args: Args, suffix: str, key: str, tool: str,
                        summary: Callable[[int, int], str]) -> ToolOutput:
    """One page of incidents/{suffix} as rows; `summary(count, page)` heads the result."""
    page, size = page_and_size(ctx, args)
    items = await get_list(ctx, f"{incidents_path(ctx, args)}/{suffix}", {"page": page, "per_page": size})
    rows = [incident_row(i) for i in items]
    return paged_output(summary(len(rows), page), key, rows, ctx.max_chars, tool=tool, page=page, size=size)


async def save(ctx: Context, args: Args, method: str, iid: str | None, body: dict[str, Any], *, verb: str,
               notify: bool, components: bool = True) -> ToolOutput:
    """Creates (iid None) or changes an incident or maintenance; `components` takes the tool's
    {component_id: status} argument into the body."""
    path = incidents_path(ctx, args) + (f"/{iid}" if iid else "")
    incident = await ctx.client.json(method, path,
                                     json={"incident": _with_components(body, args) if components else body}) or {}
    return written(verb, incident, notify, ctx.max_chars)


async def _write_incident(ctx: Context, args: Args, iid: str | None, body: dict[str, Any],
                          optional: tuple[str, int], *, verb: str, notify: bool) -> ToolOutput:
    """What creating and updating an incident share: one optional text field (name, max length), the
    impact override, then saving (a new incident when `iid` is None)."""
    optional_text(body, args, *optional)
    body.update(pick(args, "impact_override"))
    return await save(ctx, args, "POST" if iid is None else "PATCH", iid, body, verb=verb, notify=notify)


def _check_status(status: Any, advice: str) -> str:
    if status not in INCIDENT_STATUSES:
        raise ConnectorError(f"status must be one of {', '.join(INCIDENT_STATUSES)} ({advice})", "bad_argument")
    return str(status)


def _with_components(body: dict[str, Any], args: Args) -> dict[str, Any]:
    comps = component_map(args.get("components"))
    if comps:
        for cid in comps:
            segment(cid, "components key")
        body["component_ids"] = list(comps)
        body["components"] = comps
    return body


@TOOLS.tool("list_incidents", "List or search all incidents and maintenances of the page, newest first, with "
            "their status, impact, components and latest update. Paged.",
            lambda ctx: obj({"page_id": PAGE_ID, "q": text("Searches names, statuses, postmortems, updates.", 500),
                             "page": page_arg(), "limit": size_arg(ctx.page_size, "incidents")}),
            read_only=True, title="List incidents")
async def list_incidents(ctx: Context, args: Args) -> ToolOutput:
    page, limit = page_and_size(ctx, args, "limit")
    params: dict[str, Any] = {"page": page, "limit": limit}
    if args.get("q"):
        params["q"] = str(args["q"])
    rows = [incident_row(i) for i in await get_list(ctx, incidents_path(ctx, args), params)]
    what = f" matching {args['q']!r}" if args.get("q") else ""
    return paged_output(f"{len(rows)} incidents and maintenances{what}, newest first (page {page}); get_incident "
                        "shows one with all its updates.", "incidents", rows, ctx.max_chars,
                        tool="list_incidents", page=page, size=limit, size_name="limit")


@TOOLS.tool("list_unresolved_incidents", "List the incidents not resolved yet: what the status page reports as "
            "ongoing. Paged.",
            lambda ctx: obj({"page_id": PAGE_ID, **paging(ctx)}), read_only=True, title="List unresolved incidents")
async def list_unresolved_incidents(ctx: Context, args: Args) -> ToolOutput:
    return await incident_list(ctx, args, "unresolved", "incidents", "list_unresolved_incidents",
                               lambda count, page: f"{count} unresolved incidents (page {page}).")


@TOOLS.tool("get_incident", "Get one incident or maintenance with every update (newest first), its components, "
            "impact, schedule and postmortem.",
            obj({"page_id": PAGE_ID, "incident_id": INCIDENT_ID}, ("incident_id",)), read_only=True,
            title="Get incident")
async def get_incident(ctx: Context, args: Args) -> ToolOutput:
    iid = segment(args.get("incident_id"), "incident_id")
    incident = await ctx.client.json("GET", f"{incidents_path(ctx, args)}/{iid}") or {}
    data = incident_detail(incident)
    return object_output(f"{data.get('name', '?')} ({data.get('id', iid)}): {data.get('status', '?')}, impact "
                         f"{data.get('impact', '?')}, {len(data['incident_updates'])} updates (newest first).",
                         data, ctx.max_chars)


@TOOLS.tool("create_incident", "Open an (unplanned) incident on the public status page, optionally setting "
            "component statuses. With deliver_notifications, subscribers are emailed at once.",
            obj({"page_id": PAGE_ID, "name": text("Title.", 255, 1),
                 "status": enum("", INCIDENT_STATUSES, "investigating"),
                 "body": text("The first update: what is happening.", 25000),
                 "impact_override": IMPACT, "components": COMPONENT_MAP,
                 "deliver_notifications": DELIVER_NOTIFICATIONS}, ("name", "deliver_notifications")),
            read_only=False, title="Create incident")
async def create_incident(ctx: Context, args: Args) -> ToolOutput:
    notify = required_flag(args)
    body: dict[str, Any] = {"name": required_text(args, "name", 255),
                            "status": args.get("status") or "investigating", "deliver_notifications": notify}
    _check_status(body["status"], "for planned work use create_maintenance")
    return await _write_incident(ctx, args, None, body, ("body", 25000), verb="Created incident", notify=notify)


@TOOLS.tool("update_incident", "Post an update to an incident: status (the current one to keep it) and message, "
            "optionally components, impact, title. With deliver_notifications, subscribers are emailed.",
            obj({"page_id": PAGE_ID, "incident_id": INCIDENT_ID,
                 "status": enum("", INCIDENT_STATUSES),
                 "body": text("", 25000, 1), "name": text("New title.", 255),
                 "impact_override": IMPACT, "components": COMPONENT_MAP,
                 "deliver_notifications": DELIVER_NOTIFICATIONS},
                ("incident_id", "status", "body", "deliver_notifications")),
            read_only=False, title="Post incident update")
async def update_incident(ctx: Context, args: Args) -> ToolOutput:
    iid = segment(args.get("incident_id"), "incident_id")
    notify = required_flag(args)
    status = _check_status(args.get("status"), "pass the current status to keep it; maintenances use "
                           "update_maintenance")
    body: dict[str, Any] = {"status": status, "body": required_text(args, "body", 25000),
                            "deliver_notifications": notify}
    return await _write_incident(ctx, args, iid, body, ("name", 255), verb="Posted an update", notify=notify)


@TOOLS.tool("resolve_incident", "Resolve an incident with a closing update, optionally setting components back to "
            "operational. With deliver_notifications, subscribers are emailed.",
            obj({"page_id": PAGE_ID, "incident_id": INCIDENT_ID,
                 "body": text("Default: 'This incident has been resolved.'", 25000),
                 "components": COMPONENT_MAP, "deliver_notifications": DELIVER_NOTIFICATIONS},
                ("incident_id", "deliver_notifications")),
            read_only=False, title="Resolve incident")
async def resolve_incident(ctx: Context, args: Args) -> ToolOutput:
    iid = segment(args.get("incident_id"), "incident_id")
    notify = required_flag(args)
    message = str(args.get("body") or "").strip() or "This incident has been resolved."
    body = {"status": "resolved", "body": required_text({"body": message}, "body", 25000),
            "deliver_notifications": notify}
    return await save(ctx, args, "PATCH", iid, body, verb="Resolved", notify=notify)
