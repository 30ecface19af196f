"""Pages, components and component groups: what the status page shows."""

from __future__ import annotations

from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import list_output, object_output
from mcp_proxy.connectors.schema import enum, obj
from mcp_proxy.connectors.statuspage.client import segment
from mcp_proxy.connectors.statuspage.context import Context, get_list, page_and_size
from mcp_proxy.connectors.statuspage.schemas import (
    COMPONENT_STATUSES,
    PAGE_ID,
    compact,
    ident,
    page_arg,
    paged_output,
    size_arg,
)
from mcp_proxy.connectors.tools import Args, ToolTable

PAGE_FIELDS = ("id", "name", "subdomain", "domain", "url", "page_description", "headline", "time_zone",
               "support_url", "allow_page_subscribers", "allow_incident_subscribers", "allow_email_subscribers",
               "allow_sms_subscribers", "allow_webhook_subscribers", "created_at", "updated_at")
COMPONENT_FIELDS = ("id", "name", "status", "description", "group_id", "group", "position", "showcase",
                    "only_show_if_degraded", "start_date", "updated_at")
GROUP_FIELDS = ("id", "name", "components", "position", "description", "updated_at")
COMPONENT_ID = ident("From list_components.")

TOOLS: ToolTable[Context] = ToolTable()


def _page_props(ctx: Context) -> dict[str, Any]:
    return {"page": page_arg(), "per_page": size_arg(ctx.page_size, "items")}


@TOOLS.tool("list_pages", "List the status pages the API key can manage (id, name, subdomain, URL): page_id "
            "values for the other tools.",
            obj({}), read_only=True, title="List status pages")
async def list_pages(ctx: Context, args: Args) -> ToolOutput:
    pages = await ctx.client.json("GET", "/pages") or []
    items = [compact(p, ("id", "name", "subdomain", "domain", "url", "time_zone")) for p in pages]
    default = f" The configured default page is {ctx.scope.page_id}." if ctx.scope.page_id else ""
    return list_output(f"{len(items)} status pages this key can manage.{default} Pass an id as page_id to the "
                       "other tools.", "pages", items, ctx.max_chars)


@TOOLS.tool("get_page", "Get one status page's profile: name, URL, domain, time zone and which kinds of "
            "subscriptions it allows.", obj({"page_id": PAGE_ID}), read_only=True, title="Get status page")
async def get_page(ctx: Context, args: Args) -> ToolOutput:
    page = await ctx.client.json("GET", f"/pages/{ctx.scope.page(args)}") or {}
    data = compact(page, PAGE_FIELDS)
    return object_output(f"Page {data.get('name', '?')} ({data.get('id', '?')}), {data.get('url') or ''}", data,
                         ctx.max_chars)


@TOOLS.tool("list_components", "List the components (services shown on the status page) with their status, group "
            "and position: what is down, and component ids. Paged.",
            lambda ctx: obj({"page_id": PAGE_ID, **_page_props(ctx),
                             "status": enum("Filters this page of results.",
                                            COMPONENT_STATUSES)}),
            read_only=True, title="List components")
async def list_components(ctx: Context, args: Args) -> ToolOutput:
    page, size = page_and_size(ctx, args)
    items = await get_list(ctx, f"/pages/{ctx.scope.page(args)}/components", {"page": page, "per_page": size})
    rows = [compact(c, COMPONENT_FIELDS) for c in items]
    wanted = args.get("status")
    if wanted:
        rows = [r for r in rows if r.get("status") == wanted]
    broken = [r for r in rows if r.get("status") not in (None, "operational") and not r.get("group")]
    what = f" with status {wanted}" if wanted else ""
    summary = (f"{len(rows)} components{what} on page {page} ({len(broken)} not operational). Group rows "
               "(group: true) hold other components; get_component shows one.")
    if wanted:
        return _filtered(summary, rows, items, ctx, page, size)
    return paged_output(summary, "components", rows, ctx.max_chars, tool="list_components", page=page, size=size)


def _filtered(summary: str, rows: list[Any], raw: list[Any], ctx: Context, page: int, size: int) -> ToolOutput:
    """A status filter is applied to one page of results: whether more pages exist follows the raw page."""
    full = len(raw) >= size
    hint = (f"Only this page was filtered; more components may exist: call list_components with page={page + 1}."
            if full else "This is the last page.")
    return list_output(summary, "components", rows, ctx.max_chars,
                       extra={"page": page, "per_page": size, "more_may_exist": full,
                              "next": {"page": page + 1, "per_page": size} if full else None}, next_hint=hint)


@TOOLS.tool("get_component", "Get one component: name, status, description, group and dates.",
            obj({"page_id": PAGE_ID, "component_id": COMPONENT_ID}, ("component_id",)), read_only=True,
            title="Get component")
async def get_component(ctx: Context, args: Args) -> ToolOutput:
    cid = segment(args.get("component_id"), "component_id")
    item = await ctx.client.json("GET", f"/pages/{ctx.scope.page(args)}/components/{cid}") or {}
    data = compact(item, COMPONENT_FIELDS)
    return object_output(f"Component {data.get('name', '?')} ({data.get('id', cid)}): "
                         f"{data.get('status', 'unknown')}", data, ctx.max_chars)


@TOOLS.tool("update_component_status",
            "Set a component's status on the public status page, visible at once. No incident or "
            "update: to explain an outage, use create_incident or update_incident with components.",
            obj({"page_id": PAGE_ID, "component_id": COMPONENT_ID,
                 "status": enum("", COMPONENT_STATUSES)}, ("component_id", "status")),
            read_only=False, idempotent=True, title="Update component status")
async def update_component_status(ctx: Context, args: Args) -> ToolOutput:
    cid = segment(args.get("component_id"), "component_id")
    status = args.get("status")
    if status not in COMPONENT_STATUSES:
        raise ConnectorError(f"status must be one of {', '.join(COMPONENT_STATUSES)}", "bad_argument")
    item = await ctx.client.json("PATCH", f"/pages/{ctx.scope.page(args)}/components/{cid}",
                                 json={"component": {"status": status}}) or {}
    data = compact(item, COMPONENT_FIELDS)
    return object_output(f"Component {data.get('name', cid)} is now {data.get('status', status)} on the public "
                         "page.", data, ctx.max_chars)


@TOOLS.tool("list_component_groups", "List the component groups (sections of the status page) with the ids of "
            "their components. Paged.", lambda ctx: obj({"page_id": PAGE_ID, **_page_props(ctx)}),
            read_only=True, title="List component groups")
async def list_component_groups(ctx: Context, args: Args) -> ToolOutput:
    page, size = page_and_size(ctx, args)
    items = await get_list(ctx, f"/pages/{ctx.scope.page(args)}/component-groups", {"page": page, "per_page": size})
    rows = [compact(g, GROUP_FIELDS) for g in items]
    return paged_output(f"{len(rows)} component groups on page {page}; components lists each group's "
                        "component ids (list_components has their names and statuses).", "component_groups",
                        rows, ctx.max_chars, tool="list_component_groups", page=page, size=size)


@TOOLS.tool("get_component_group", "Get one component group: name, position and its component ids.",
            obj({"page_id": PAGE_ID, "group_id": ident("From list_component_groups.")},
                ("group_id",)), read_only=True, title="Get component group")
async def get_component_group(ctx: Context, args: Args) -> ToolOutput:
    gid = segment(args.get("group_id"), "group_id")
    item = await ctx.client.json("GET", f"/pages/{ctx.scope.page(args)}/component-groups/{gid}") or {}
    data = compact(item, GROUP_FIELDS)
    count = len(data.get("components") or [])
    return object_output(f"Component group {data.get('name', '?')} ({data.get('id', gid)}) with {count} "
                         "components.", data, ctx.max_chars)
