"""Metrics, subscribers and organisation users."""

from __future__ import annotations

import math
import re
import time
from typing import Any, Protocol

from mcp_proxy.connectors.base import ConnectorError, RestTool, ToolOutput
from mcp_proxy.connectors.http import RestClient
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.statuspage.client import Scope, segment
from mcp_proxy.connectors.statuspage.schemas import (
    ID_PATTERN, ORGANIZATION_ID, PAGE_ID, compact, enum, flag, ident, integer, obj, page_arg, paged_output, pick,
    size_arg, text,
)

METRIC_FIELDS = ("id", "name", "suffix", "display", "metrics_provider_id", "metric_identifier", "tooltip_description",
                 "decimal_places", "most_recent_data_at", "y_axis_min", "y_axis_max")
SUBSCRIBER_FIELDS = ("id", "mode", "email", "endpoint", "display_phone_number", "phone_country", "components",
                     "created_at", "quarantined_at", "purge_at")
SUBSCRIBER_TYPES = ["email", "sms", "webhook", "slack", "integration_partner"]
SUBSCRIBER_STATES = ["active", "unconfirmed", "quarantined", "all"]
BACKFILL_SECONDS = 28 * 24 * 3600  # Statuspage keeps backfilled data up to 28 days
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Context(Protocol):
    client: RestClient
    scope: Scope
    max_chars: int
    page_size: int


def audience_tools(ctx: Context) -> list[RestTool]:
    def base(args: dict[str, Any]) -> str:
        return f"/pages/{ctx.scope.page(args)}"

    async def list_metrics(args: dict[str, Any]) -> ToolOutput:
        page = integer(args, "page", 1, 1, 100000)
        size = integer(args, "per_page", min(ctx.page_size, 100), 1, 100)
        items = await ctx.client.json("GET", f"{base(args)}/metrics", params={"page": page, "per_page": size}) or []
        rows = [compact(m, METRIC_FIELDS) for m in (items if isinstance(items, list) else [items])]
        return paged_output(f"{len(rows)} system metrics (page {page}); add_metric_data_point adds a value to a "
                            "custom one.", "metrics", rows, ctx.max_chars, tool="list_metrics", page=page, size=size)

    async def add_metric_data_point(args: dict[str, Any]) -> ToolOutput:
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
        result = await ctx.client.json("POST", f"{base(args)}/metrics/{mid}/data",
                                       json={"data": {"timestamp": stamp, "value": value}}) or {}
        data = result.get("data") if isinstance(result, dict) else None
        data = data if isinstance(data, dict) else {}
        stored = {"metric_id": args.get("metric_id"), **pick(data, "timestamp", "value")}
        return object_output(f"Stored {stored.get('value', value)} for metric {args.get('metric_id')} at "
                             f"{stored.get('timestamp', stamp)} (Statuspage rounds times to 30 s; a later point in "
                             "the same 30 s replaces this one).", stored, ctx.max_chars)

    async def list_subscribers(args: dict[str, Any]) -> ToolOutput:
        page = integer(args, "page", 0, 0, 100000)
        limit = integer(args, "limit", min(ctx.page_size, 100), 1, 100)
        params = {**pick(args, "q", "type", "state", "sort_field", "sort_direction"), "page": page, "limit": limit}
        items = await ctx.client.json("GET", f"{base(args)}/subscribers", params=params) or []
        rows = [compact(s, SUBSCRIBER_FIELDS) for s in items]
        state = args.get("state") or "active"
        return paged_output(f"{len(rows)} {state} subscribers (page {page}, 0-based).", "subscribers", rows,
                            ctx.max_chars, tool="list_subscribers", page=page, size=limit, size_name="limit",
                            zero_based=True)

    async def count_subscribers(args: dict[str, Any]) -> ToolOutput:
        counts = await ctx.client.json("GET", f"{base(args)}/subscribers/count",
                                       params=pick(args, "type", "state")) or {}
        counts = {k: v for k, v in counts.items() if isinstance(v, int)} if isinstance(counts, dict) else {}
        total = sum(counts.values())
        state = args.get("state") or "active"
        detail = ", ".join(f"{k} {v}" for k, v in counts.items())
        return ToolOutput(text=f"{total} {state} subscribers ({detail}).",
                          structured={"total": total, "by_type": counts, "state": state, **pick(args, "type")})

    async def add_subscriber(args: dict[str, Any]) -> ToolOutput:
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
        item = await ctx.client.json("POST", f"{base(args)}/subscribers", json={"subscriber": body}) or {}
        data = compact(item, SUBSCRIBER_FIELDS)
        confirm = ("no confirmation message was sent" if body["skip_confirmation_notification"] else
                   "they get a confirmation message and receive notifications once they confirm")
        return object_output(f"Added {data.get('mode', 'a')} subscriber {data.get('id', '')}; {confirm}.", data,
                             ctx.max_chars)

    async def unsubscribe_subscriber(args: dict[str, Any]) -> ToolOutput:
        sid = segment(args.get("subscriber_id"), "subscriber_id")
        quiet = bool(args.get("skip_unsubscription_notification", False))
        item = await ctx.client.json("DELETE", f"{base(args)}/subscribers/{sid}",
                                     params={"skip_unsubscription_notification": quiet}) or {}
        data = compact(item, SUBSCRIBER_FIELDS)
        told = "without telling them" if quiet else "they are told by a final message"
        return object_output(f"Unsubscribed {data.get('email') or data.get('endpoint') or data.get('id', sid)}; "
                             f"{told}.", data, ctx.max_chars)

    async def list_users(args: dict[str, Any]) -> ToolOutput:
        page = integer(args, "page", 1, 1, 100000)
        size = integer(args, "per_page", min(ctx.page_size, 100), 1, 100)
        org = ctx.scope.organization(args)
        items = await ctx.client.json("GET", f"/organizations/{org}/users",
                                      params={"page": page, "per_page": size}) or []
        rows = [compact(u, ("id", "email", "first_name", "last_name")) for u in items]
        return paged_output(f"{len(rows)} users of organisation {org} (page {page}).", "users", rows, ctx.max_chars,
                            tool="list_users", page=page, size=size)

    sub_id = ident("The subscriber's id (from list_subscribers).")
    return [
        RestTool("list_metrics", "List the page's system metrics (charts such as response time): id, name, unit "
                 "suffix, provider and when data last arrived. Paged.",
                 obj({"page_id": PAGE_ID, "page": page_arg(), "per_page": size_arg(ctx.page_size, "metrics")}),
                 list_metrics, read_only=True, idempotent=True, title="List metrics"),
        RestTool("add_metric_data_point", "Add one data point to a custom system metric (the chart on the status "
                 "page). Times are rounded to 30 s; the last point in a 30 s slot wins; backfill up to 28 days.",
                 obj({"page_id": PAGE_ID, "metric_id": ident("The metric's id (from list_metrics)."),
                      "value": {"type": "number", "description": "The measured value, in the metric's unit."},
                      "timestamp": {"type": "integer", "minimum": 0, "maximum": 4102444800,
                                    "description": "Unix seconds; default now."}},
                     ("metric_id", "value")),
                 add_metric_data_point, read_only=False, title="Add metric data point"),
        RestTool("list_subscribers", "List the page's subscribers (people and systems notified of incidents): id, "
                 "mode, email / endpoint / phone, components. Filters: q (searches addresses), type, state (active "
                 "by default). Paged with a 0-based page and limit.",
                 obj({"page_id": PAGE_ID, "q": text("Search in email, endpoint and phone number.", 200),
                      "type": enum("Only this kind.", SUBSCRIBER_TYPES),
                      "state": enum("Which subscribers.", SUBSCRIBER_STATES, "active"),
                      "sort_field": enum("Sort by.", ["primary", "created_at", "quarantined_at", "relevance"],
                                         "primary"),
                      "sort_direction": enum("Order.", ["asc", "desc"], "asc"),
                      "page": page_arg(zero_based=True), "limit": size_arg(ctx.page_size, "subscribers")}),
                 list_subscribers, read_only=True, idempotent=True, title="List subscribers"),
        RestTool("count_subscribers", "Count the page's subscribers by type (email, sms, webhook, slack, "
                 "integration_partner), optionally of one type or state.",
                 obj({"page_id": PAGE_ID, "type": enum("Only this kind.", SUBSCRIBER_TYPES),
                      "state": enum("Which subscribers.", SUBSCRIBER_STATES, "active")}),
                 count_subscribers, read_only=True, idempotent=True, title="Count subscribers"),
        RestTool("add_subscriber", "Subscribe someone to the page's notifications: an email address, a webhook "
                 "(endpoint plus an email for failures) or a phone (phone_country and phone_number), to all "
                 "components or some. Unless skip_confirmation_notification is true they receive a confirmation "
                 "message. Not for Slack.",
                 obj({"page_id": PAGE_ID, "email": {"type": "string", "format": "email", "maxLength": 254,
                                                    "description": "Email address (also the contact for a webhook)."},
                      "endpoint": {"type": "string", "format": "uri", "maxLength": 2000,
                                   "description": "Webhook URL."},
                      "phone_country": {"type": "string", "pattern": "^[A-Za-z]{2}$",
                                        "description": "Two-letter country code of the phone number, e.g. US."},
                      "phone_number": text("Phone number as dialled in phone_country.", 40),
                      "component_ids": {"type": "array", "minItems": 1, "maxItems": 100, "uniqueItems": True,
                                        "items": {"type": "string", "pattern": ID_PATTERN, "maxLength": 64},
                                        "description": "Only these components (ids from list_components)."},
                      "skip_confirmation_notification": flag("Do not send a confirmation message (paid pages "
                                                             "only).", False)}),
                 add_subscriber, read_only=False, title="Add subscriber"),
        RestTool("unsubscribe_subscriber", "Unsubscribe a subscriber from the page; they stop receiving "
                 "notifications. By default they get a message saying so.",
                 obj({"page_id": PAGE_ID, "subscriber_id": sub_id,
                      "skip_unsubscription_notification": flag("Do not tell them.", False)}, ("subscriber_id",)),
                 unsubscribe_subscriber, read_only=False, destructive=True, idempotent=True,
                 title="Unsubscribe subscriber"),
        RestTool("list_users", "List the users (team members) of the Statuspage organisation: id, email, first and "
                 "last name. Paged.",
                 obj({"organization_id": ORGANIZATION_ID, "page": page_arg(),
                      "per_page": size_arg(ctx.page_size, "users")}),
                 list_users, read_only=True, idempotent=True, title="List organisation users"),
    ]
