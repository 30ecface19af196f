"""What the Opsgenie connector and its JSM Operations backend do alike.

JSM Operations offers the Opsgenie tools under the same names and arguments (so a policy for `og.*` keeps
governing after a migration). Where the two also behave alike, the tool is declared here once: its name,
input schema, annotations and handler, and the way its result is shaped. A backend passes in its own
descriptions and what differs (how it reads a page, how it finds an on-call answer); its paths, auth,
paging and request-status polling stay in its own modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.opsgenie.schemas import ON_CALL, REQUEST_ID, TIMELINES, on_alert
from mcp_proxy.connectors.output import object_output
from mcp_proxy.connectors.schema import iso_datetime
from mcp_proxy.connectors.tools import Args, BoundHandler, ToolTable

MAX_DETAILS = 8000  # characters of an alert's custom properties, keys and values together


class Shows(Protocol):
    @property
    def max_chars(self) -> int: ...


class StatusSource(Protocol):
    async def status(self, request_id: str) -> dict[str, Any] | None: ...


class Writes(Protocol):
    @property
    def writes(self) -> StatusSource: ...


S = TypeVar("S", bound=Shows)
W = TypeVar("W", bound=Writes)
C = TypeVar("C")
# Reads one page of an alert's notes or logs: (connector, arguments, "notes" | "logs").
History = Callable[[C, Args, str], Awaitable[ToolOutput]]
# Reads an on-call answer: (connector, arguments, "on-calls" | "next-on-calls").
OnCallFetch = Callable[[S, Args, str], Awaitable[dict[str, Any]]]


def poll_budget(call_timeout: float) -> float:
    """How long an alert write waits to be processed: a few seconds, well inside the call timeout."""
    return max(0.2, min(5.0, call_timeout / 4))


def matching(args: Args) -> str:
    """` matching 'query'` for a summary line, when a query was given."""
    return f" matching {args['query']!r}" if args.get("query") else ""


def alert_output(alert: dict[str, Any], max_chars: int) -> ToolOutput:
    """One alert in full, under its summary line."""
    state = "acknowledged" if alert.get("acknowledged") else alert.get("status", "?")
    return object_output(f"Alert #{alert.get('tinyId')} {alert.get('priority', '')} {state}: "
                         f"{alert.get('message', '')}", alert, max_chars)


def count_output(count: Any, args: Args) -> ToolOutput:
    """The answer of count_alerts."""
    return ToolOutput(text=f"{count} alerts{matching(args)}.", structured={"count": count, "query": args.get("query")})


def checked_details(args: Args) -> dict[str, Any]:
    """create_alert's `details`, refused when larger than both APIs take (the schema can bound only each value)."""
    details: dict[str, Any] = args.get("details") or {}
    if sum(len(str(k)) + len(str(v)) for k, v in details.items()) > MAX_DETAILS:
        raise ConnectorError(f"details may hold at most {MAX_DETAILS} characters in total (keys and values)",
                             "bad_argument")
    return details


def add_alert_history(table: ToolTable[C], history: History[C], pager: dict[str, Any], *,
                      notes: str, logs: str) -> None:
    """list_alert_notes and list_alert_logs, described by `notes` and `logs`, with the paging arguments `pager`."""
    def listing(kind: str) -> BoundHandler[C]:
        async def handler(ctx: C, args: Args) -> ToolOutput:
            return await history(ctx, args, kind)
        return handler

    table.add("list_alert_notes", notes, on_alert(pager), listing("notes"), read_only=True,
              title="List alert notes")
    table.add("list_alert_logs", logs, on_alert(pager), listing("logs"), read_only=True, title="List alert logs")


def add_request_status(table: ToolTable[W], description: str, pending: Callable[[str], str]) -> None:
    """get_request_status: the outcome of an alert write that had not finished; `pending(requestId)` says
    that it still has not."""
    async def get_request_status(ctx: W, args: Args) -> ToolOutput:
        rid = str(args.get("requestId") or "").strip()
        data = await ctx.writes.status(rid)
        if data is None:
            return ToolOutput(text=pending(rid), structured={"requestId": rid, "processed": False})
        ok = "succeeded" if data.get("isSuccess") else "failed"
        return ToolOutput(text=f"Request {rid} ({data.get('action', '?')}) {ok}: {data.get('status', '')}; "
                               f"alert {data.get('alertId', '?')}.",
                          structured={"requestId": rid, "processed": True, **data})

    table.add("get_request_status", description, REQUEST_ID, get_request_status, read_only=True,
              title="Get request status")


def with_date(args: Args, params: dict[str, Any]) -> dict[str, Any]:
    """`params` with the `date` argument, checked, when given."""
    if args.get("date"):
        params["date"] = iso_datetime(args["date"], "date")
    return params


def expand_timelines(args: Args, params: dict[str, Any]) -> list[str]:
    """The extra timelines asked for, also set as `expand` in `params`."""
    expand = [e for e in args.get("expand") or [] if e in TIMELINES]
    if expand:
        params["expand"] = ",".join(expand)
    return expand


def _periods(timeline: dict[str, Any], which: str, key: str, field: str) -> list[dict[str, Any]]:
    rows = []
    for rotation in (timeline or {}).get("rotations") or []:
        for period in rotation.get("periods") or []:
            recipient = period.get(key) or {}
            rows.append({"timeline": which, "rotation": rotation.get("name"), "startDate": period.get("startDate"),
                         "endDate": period.get("endDate"), "type": period.get("type"),
                         "recipient": recipient.get(field), "recipientType": recipient.get("type")})
    return rows


def timeline_rows(data: dict[str, Any], expand: list[str], key: str = "recipient",
                  field: str = "name") -> list[dict[str, Any]]:
    """The periods of the final timeline, then of each expanded one; a period names its recipient in
    `key`, by `field` (Opsgenie: a `recipient` by `name`; JSM: a `responder` by `id`)."""
    rows = _periods(data.get("finalTimeline") or {}, "final", key, field)
    for which in expand:
        rows += _periods(data.get(f"{which}Timeline") or {}, which, key, field)
    return rows


def escalation_summary(data: dict[str, Any]) -> str:
    return f"Escalation {data.get('name')!r} ({len(data.get('rules') or [])} rules)."


def schedule_summary(data: dict[str, Any]) -> str:
    return (f"Schedule {data.get('name')!r} (time zone {data.get('timezone')}, "
            f"{len(data.get('rotations') or [])} rotations).")


@dataclass(frozen=True)
class OnCallAnswers:
    """How a backend's on-call answers name who is on call."""

    now: tuple[str, ...]  # the keys of who_is_on_call's answer that may list them, the first present wins
    upcoming: tuple[str, ...]  # the same for next_on_call
    field: str  # what a participant is shown by ("name", or "id" where there are only account ids)
    schedule: Callable[[dict[str, Any], Args], Any]  # the schedule's name for the summary line


def _labels(data: dict[str, Any], keys: tuple[str, ...], field: str) -> list[str]:
    participants = next((data[k] for k in keys if data.get(k)), None)
    return [f"{p.get(field, '?')} ({p.get('type', '?')})" if isinstance(p, dict) else str(p)
            for p in participants or []]


def add_on_call_tools(table: ToolTable[S], fetch: OnCallFetch[S], answers: OnCallAnswers, *,
                      now: str, upcoming: str) -> None:
    """who_is_on_call and next_on_call, described by `now` and `upcoming`."""
    async def who_is_on_call(ctx: S, args: Args) -> ToolOutput:
        data = await fetch(ctx, args, "on-calls")
        names = _labels(data, answers.now, answers.field)
        when = f" at {args['date']}" if args.get("date") else " now"
        return object_output(f"On call{when} for schedule {answers.schedule(data, args)!r}: "
                             f"{', '.join(names) or 'nobody'}.", data, ctx.max_chars)

    async def next_on_call(ctx: S, args: Args) -> ToolOutput:
        data = await fetch(ctx, args, "next-on-calls")
        names = _labels(data, answers.upcoming, answers.field)
        return object_output(f"Next on call for schedule {answers.schedule(data, args)!r}: "
                             f"{', '.join(names) or 'nobody'}.", data, ctx.max_chars)

    table.add("who_is_on_call", now, ON_CALL, who_is_on_call, read_only=True, title="Who is on call")
    table.add("next_on_call", upcoming, ON_CALL, next_on_call, read_only=True, title="Next on call")
