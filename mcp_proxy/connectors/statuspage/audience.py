"""Metrics, subscribers and organisation users."""

from __future__ import annotations

import math
import re
import time
from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.schema import enum, obj, pick, text
from mcp_proxy.connectors.statuspage.client import segment
from mcp_proxy.connectors.statuspage.context import Context, get_list, page_and_size
from mcp_proxy.connectors.statuspage.schemas import (
    ID_PATTERN,
    ORGANIZATION_ID,
    PAGE_ID,
    compact,
    flag,
    ident,
    page_arg,
    paged_output,
    size_arg,
)
from mcp_proxy.connectors.tools import Args, ToolTable

METRIC_FIELDS = ("id", "name", "suffix", "display", "metrics_provider_id", "metric_identifier", "tooltip_description",
                 "decimal_places", "most_recent_data_at", "y_axis_min", "y_axis_max")
SUBSCRIBER_FIELDS = ("id", "mode", "email", "endpoint", "display_phone_number", "phone_country", "components",
                     "created_at", "quarantined_at", "purge_at")
SUBSCRIBER_TYPES = ["email", "sms", "webhook", "slack", "integration_partner"]
SUBSCRIBER_STATES = ["active", "unconfirmed", "quarantined", "all"]
BACKFILL_SECONDS = 28 * 24 * 3600  # Statuspage keeps backfilled data up to 28 days
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

TOOLS: ToolTable[Context] = ToolTable()


def _page_path(ctx: Context, args: Args) -> str:
    return f"/pages/{ctx.scope.page(args)}"


@TOOLS.tool("list_metrics", "List the page's system metrics (charts such as response time): id, name, unit "
            "suffix, provider and when data last arrived. Paged.",
            lambda ctx: obj({"page_id": PAGE_ID, "page": page_arg(), "per_page": size_arg(ctx.page_size, "metrics")}),
            read_only=True, title="List metrics")
async def list_metrics(ctx: Context, args: Args) -> ToolOutput:
    page, size = page_and_size(ctx, args)
    items = await get_list(ctx, f"{_page_path(ctx, args)}/metrics", {"page": page, "per_page": size})
    rows = [compact(m, METRIC_FIELDS) for m in (items if isinstance(items, list) else [items])]
    return paged_output(f"{len(rows)} system metrics (page {page}); add_metric_data_point adds a value to a "
                        "custom one.", "metrics", rows, ctx.max_chars, tool="list_metrics", page=page, size=size)


@TOOLS.tool("add_metric_data_point", "Add one data point to a custom system metric (the chart on the status "
            "page). Times are rounded to 30 s; the last point in a 30 s slot wins; backfill up to 28 days.",
            obj({"page_id": PAGE_ID, "metric_id": ident("From list_metrics."),
                 "value": {"type": "number", "description": "In the metric's unit."},
                 "timestamp": {"type": "integer", "minimum": 0, "maximum": 4102444800,
                               "description": "Unix seconds; default now."}},
                ("metric_id", "value")),
            read_only=False, title="Add metric data point")
async def add_metric_data_point(ctx: Context, args: Args) -> ToolOutput:
    mid = segment(args.get("metric_id"), "metric_id")
    value = args.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConnectorError("value must be a finite number", "bad_argument")
    now = int(time.time())
    stamp = args.get("timestamp", now)
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise ConnectorError("timestamp must be Unix seconds (an integer)", "bad_argument")
    if stamp > now + 300 or stamp < now - BACKFILL_SECONDS:
        raise ConnectorError("timestamp must lie within the last 28 days and not in the future (Unix seconds; "
                             f"now is {now})", "bad_argument")
    result = await ctx.client.json("POST", f"{_page_path(ctx, args)}/metrics/{mid}/data",
                                   json={"data": {"timestamp": stamp, "value": value}}) or {}
    data = result.get("data") if isinstance(result, dict) else None
    data = data if isinstance(data, dict) else {}
    stored = {"metric_id": args.get("metric_id"), **pick(data, "timestamp", "value")}
    return object_output(f"Stored {stored.get('value', value)} for metric {args.get('metric_id')} at "
                         f"{stored.get('timestamp', stamp)} (Statuspage rounds times to 30 s; a later point in "
                         "the same 30 s replaces this one).", stored, ctx.max_chars)


@TOOLS.tool("list_subscribers", "List the page's subscribers (people and systems notified of incidents): id, "
            "mode, email / endpoint / phone, components. Paged (page from 0).",
            lambda ctx: obj({"page_id": PAGE_ID, "q": text("Searches email, endpoint, phone.", 200),
                             "type": enum("", SUBSCRIBER_TYPES),
                             "state": enum("", SUBSCRIBER_STATES, "active"),
                             "sort_field": enum("", ["primary", "created_at", "quarantined_at", "relevance"],
                                                "primary"),
                             "sort_direction": enum("", ["asc", "desc"], "asc"),
                             "page": page_arg(zero_based=True), "limit": size_arg(ctx.page_size, "subscribers")}),
            read_only=True, title="List subscribers")
async def list_subscribers(ctx: Context, args: Args) -> ToolOutput:
    page, limit = page_and_size(ctx, args, "limit", first=0)
    params = {**pick(args, "q", "type", "state", "sort_field", "sort_direction"), "page": page, "limit": limit}
    rows = [compact(s, SUBSCRIBER_FIELDS) for s in await get_list(ctx, f"{_page_path(ctx, args)}/subscribers", params)]
    state = args.get("state") or "active"
    return paged_output(f"{len(rows)} {state} subscribers (page {page}, 0-based).", "subscribers", rows,
                        ctx.max_chars, tool="list_subscribers", page=page, size=limit, size_name="limit",
                        zero_based=True)


@TOOLS.tool("count_subscribers", "Count the page's subscribers per type (email, sms, webhook, ...), optionally of "
            "one type or state.",
            obj({"page_id": PAGE_ID, "type": enum("", SUBSCRIBER_TYPES),
                 "state": enum("", SUBSCRIBER_STATES, "active")}),
            read_only=True, title="Count subscribers")
async def count_subscribers(ctx: Context, args: Args) -> ToolOutput:
    counts = await ctx.client.json("GET", f"{_page_path(ctx, args)}/subscribers/count",
                                   params=pick(args, "type", "state")) or {}
    counts = {k: v for k, v in counts.items() if isinstance(v, int)} if isinstance(counts, dict) else {}
    total = sum(counts.values())
    state = args.get("state") or "active"
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    return ToolOutput(text=f"{total} {state} subscribers ({detail}).",
                      structured={"total": total, "by_type": counts, "state": state, **pick(args, "type")})


def _subscriber(args: Args) -> dict[str, Any]:
    """The new subscriber: exactly one of email, webhook (endpoint + email) or SMS (country + number)."""
    body: dict[str, Any] = {}
    email = str(args.get("email") or "").strip()
    if email and not _EMAIL.match(email):
        raise ConnectorError(f"email {email[:80]!r} is not an email address", "bad_argument")
    if args.get("phone_number") or args.get("phone_country"):
        if not (args.get("phone_number") and args.get("phone_country")) or email or args.get("endpoint"):
            raise ConnectorError("an SMS subscriber needs phone_country and phone_number, and no email or "
                                 "endpoint", "bad_argument")
        body.update(pick(args, "phone_country", "phone_number"))
    elif args.get("endpoint"):
        if not email:
            raise ConnectorError("a webhook subscriber needs endpoint and an email (told when the webhook "
                                 "fails)", "bad_argument")
        body.update({"endpoint": str(args["endpoint"]), "email": email})
    elif email:
        body["email"] = email
    else:
        raise ConnectorError("give email (email subscriber), endpoint and email (webhook), or phone_country and "
                             "phone_number (SMS)", "bad_argument")
    ids = [segment(c, "component_ids item") for c in args.get("component_ids") or []]
    if ids:
        body["component_ids"] = ids
    body["skip_confirmation_notification"] = bool(args.get("skip_confirmation_notification", False))
    return body


@TOOLS.tool("add_subscriber", "Subscribe an email, a webhook (endpoint, and email for failures) or a phone "
            "(phone_country, phone_number) to the page's notifications, of all or some components. Not Slack.",
            obj({"page_id": PAGE_ID, "email": {"type": "string", "format": "email", "maxLength": 254,
                                               "description": "Also a webhook's contact."},
                 "endpoint": {"type": "string", "format": "uri", "maxLength": 2000, "description": "Webhook URL."},
                 "phone_country": {"type": "string", "pattern": "^[A-Za-z]{2}$",
                                   "description": "e.g. US."},
                 "phone_number": text("As dialled in phone_country.", 40),
                 "component_ids": {"type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": True,
                                   "items": {"type": "string", "pattern": ID_PATTERN, "maxLength": 64},
                                   "description": "From list_components."},
                 "skip_confirmation_notification": flag("No confirmation message (paid pages only).",
                                                        False)}),
            read_only=False, title="Add subscriber")
async def add_subscriber(ctx: Context, args: Args) -> ToolOutput:
    body = _subscriber(args)
    item = await ctx.client.json("POST", f"{_page_path(ctx, args)}/subscribers", json={"subscriber": body}) or {}
    data = compact(item, SUBSCRIBER_FIELDS)
    confirm = ("no confirmation message was sent" if body["skip_confirmation_notification"] else
               "they get a confirmation message and receive notifications once they confirm")
    return object_output(f"Added {data.get('mode', 'a')} subscriber {data.get('id', '')}; {confirm}.", data,
                         ctx.max_chars)


@TOOLS.tool("unsubscribe_subscriber", "Unsubscribe a subscriber from the page's notifications; by default they get a "
            "message saying so.",
            obj({"page_id": PAGE_ID, "subscriber_id": ident("From list_subscribers."),
                 "skip_unsubscription_notification": flag("Do not tell them.", False)}, ("subscriber_id",)),
            read_only=False, destructive=True, idempotent=True, title="Unsubscribe subscriber")
async def unsubscribe_subscriber(ctx: Context, args: Args) -> ToolOutput:
    sid = segment(args.get("subscriber_id"), "subscriber_id")
    quiet = bool(args.get("skip_unsubscription_notification", False))
    item = await ctx.client.json("DELETE", f"{_page_path(ctx, args)}/subscribers/{sid}",
                                 params={"skip_unsubscription_notification": quiet}) or {}
    data = compact(item, SUBSCRIBER_FIELDS)
    told = "without telling them" if quiet else "they are told by a final message"
    return object_output(f"Unsubscribed {data.get('email') or data.get('endpoint') or data.get('id', sid)}; "
                         f"{told}.", data, ctx.max_chars)


@TOOLS.tool("list_users", "List the users (team members) of the Statuspage organisation: id, email, first and "
            "last name. Paged.",
            lambda ctx: obj({"organization_id": ORGANIZATION_ID, "page": page_arg(),
                             "per_page": size_arg(ctx.page_size, "users")}),
            read_only=True, title="List organisation users")
async def list_users(ctx: Context, args: Args) -> ToolOutput:
    page, size = page_and_size(ctx, args)
    org = ctx.scope.organization(args)
    items = await get_list(ctx, f"/organizations/{org}/users", {"page": page, "per_page": size})
    rows = [compact(u, ("id", "email", "first_name", "last_name")) for u in items]
    return paged_output(f"{len(rows)} users of organisation {org} (page {page}).", "users", rows, ctx.max_chars,
                        tool="list_users", page=page, size=size)
