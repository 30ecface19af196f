"""HTTP face of the Opsgenie emulator: auth, rate limiting, paging links, error bodies, the log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_proxy.sandbox.alert_state import iso, now
from mcp_proxy.sandbox.opsgenie.state import ALERT_ACTIONS, TIMELINES, Emulator, Problem, parse_time

Result = tuple[int, dict[str, Any], dict[str, str]]
Handler = Callable[[Emulator, Request, dict[str, Any]], Awaitable[Result]]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _links(request: Request, path: str, params: dict[str, Any], offset: int, limit: int, total: int) -> dict[str, str]:
    def url(at: int) -> str:
        return f"{_base(request)}{path}?{urlencode({**params, 'offset': at, 'limit': limit})}"

    links = {"first": url(0), "last": url(max(0, (total - 1) // limit * limit))}
    if offset + limit < total:
        links["next"] = url(offset + limit)
    if offset > 0:
        links["prev"] = url(max(0, offset - limit))
    return links


def _paging_headers(links: dict[str, str]) -> dict[str, str]:
    return {f"X-Paging-{k.capitalize()}": v for k, v in links.items()}


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Problem(422, "Request parameters are not valid.",
                      errors={name: f"{name} must be between {low} and {high}"})
    return value


def _choice(request: Request, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = request.query_params.get(name, default)
    if value is not None and value not in choices:
        raise Problem(422, "Request parameters are not valid.",
                      errors={name: f"{name} must be one of {', '.join(choices)}"})
    return value


# -- alerts -----------------------------------------------------------------
async def list_alerts(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    offset = _int(request, "offset", 0, 0, 20000)
    limit = _int(request, "limit", 20, 1, 100)
    sort = request.query_params.get("sort", "createdAt")
    order = _choice(request, "order", "desc", ("asc", "desc"))
    query = request.query_params.get("query")
    alerts = emu.query_alerts(query)

    def key(alert: dict[str, Any]) -> Any:
        value: Any = alert
        for part in sort.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return int(value) if sort == "tinyId" else str(value)

    alerts.sort(key=key, reverse=order == "desc")
    params = {k: v for k, v in (("query", query), ("sort", sort), ("order", order)) if v}
    links = _links(request, "/v2/alerts", params, offset, limit, len(alerts))
    base_fields = ("id", "tinyId", "alias", "message", "status", "acknowledged", "isSeen", "tags", "snoozed",
                   "snoozedUntil", "count", "lastOccurredAt", "createdAt", "updatedAt", "source", "owner",
                   "priority", "responders", "integration", "report")
    page = [{k: a[k] for k in base_fields if k in a} for a in alerts[offset:offset + limit]]
    return 200, {"data": page, "paging": links}, _paging_headers(links)


async def count_alerts(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"data": {"count": len(emu.query_alerts(request.query_params.get("query")))}}, {}


def _alert_or_404(emu: Emulator, request: Request) -> dict[str, Any]:
    identifier = request.path_params["identifier"]
    kind = request.query_params.get("identifierType", "id")
    alert = emu.find_alert(identifier, kind)
    if alert is None:
        raise Problem(404, "Alert does not exist")
    return alert


async def get_alert(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"data": _alert_or_404(emu, request)}, {}


async def create_alert(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    rid = emu.submit("Create", emu.create_alert(body))
    return 202, {"result": "Request will be processed", "requestId": rid}, {}


def alert_action(action: str) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        effect = emu.alert_action(action, request.path_params["identifier"],
                                  request.query_params.get("identifierType", "id"), body)
        rid = emu.submit(ALERT_ACTIONS[action], effect)
        return 202, {"result": "Request will be processed", "requestId": rid}, {}
    return handler


def notes_or_logs(kind: str) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        alert = _alert_or_404(emu, request)
        limit = _int(request, "limit", 20, 1, 100)
        order = _choice(request, "order", "desc", ("asc", "desc"))
        direction = _choice(request, "direction", "next", ("next", "prev"))
        rows = list((emu.notes if kind == "notes" else emu.logs).get(alert["id"], []))
        rows.sort(key=lambda r: r["offset"], reverse=order == "desc")
        offset = request.query_params.get("offset")
        start, stop = 0, len(rows)
        if offset:
            at = next((i for i, r in enumerate(rows) if r["offset"] == offset), None)
            if at is None:
                raise Problem(422, "Request parameters are not valid.", errors={"offset": "Unknown offset"})
            start, stop = (at + 1, len(rows)) if direction == "next" else (0, at)
        window = rows[start:stop]
        page = window[:limit] if direction == "next" else window[-limit:]
        path = request.url.path
        ident = request.query_params.get("identifierType", "id")
        common = {"identifierType": ident, "order": order, "limit": limit}
        links = {"first": f"{_base(request)}{path}?{urlencode({**common, 'direction': 'next'})}"}
        more = (start + len(page) < len(rows)) if direction == "next" else (len(window) > len(page))
        if page and more:
            edge = page[-1]["offset"] if direction == "next" else page[0]["offset"]
            links["next"] = f"{_base(request)}{path}?{urlencode({**common, 'offset': edge, 'direction': direction})}"
        return 200, {"data": page, "paging": links}, {}
    return handler


async def request_status(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"data": emu.request_status(request.path_params["request_id"])}, {}


# -- directory ----------------------------------------------------------------
def _schedule(emu: Emulator, request: Request, param: str = "identifierType") -> dict[str, Any]:
    kind = request.query_params.get(param, "id")
    return emu.find_named(emu.schedules, request.path_params["identifier"], kind, "schedule")


def _meta(schedule: dict[str, Any]) -> dict[str, Any]:
    return {"id": schedule["id"], "name": schedule["name"], "enabled": schedule["enabled"]}


def _date(request: Request) -> Any:
    raw = request.query_params.get("date")
    return parse_time(raw, "date") if raw else now()


async def list_escalations(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"data": emu.escalations}, {}


async def get_escalation(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    kind = request.query_params.get("identifierType", "id")
    return 200, {"data": emu.find_named(emu.escalations, request.path_params["identifier"], kind, "escalation")}, {}


async def list_schedules(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    expand = request.query_params.get("expand", "").split(",")
    rows = [s if "rotation" in expand else {k: v for k, v in s.items() if k != "rotations"} for s in emu.schedules]
    return 200, {"data": rows, "expandable": ["rotation"]}, {}


async def get_schedule(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"data": _schedule(emu, request)}, {}


async def schedule_timeline(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    schedule = _schedule(emu, request)
    interval = _int(request, "interval", 1, 1, 52)
    unit = _choice(request, "intervalUnit", "weeks", ("days", "weeks", "months"))
    start = _date(request)
    step = {"days": timedelta(days=1), "weeks": timedelta(weeks=1), "months": timedelta(days=30)}[unit]
    end = start + step * interval
    data: dict[str, Any] = {"_parent": _meta(schedule), "startDate": iso(start), "endDate": iso(end),
                            "finalTimeline": emu.timeline(schedule, start, end)}
    for which in [e for e in request.query_params.get("expand", "").split(",") if e]:
        if which not in TIMELINES:
            raise Problem(422, "Request parameters are not valid.", errors={"expand": f"Unknown expand [{which}]"})
        data[f"{which}Timeline"] = emu.timeline(schedule, start, end) if which == "base" else {"rotations": []}
    return 200, {"data": data, "expandable": list(TIMELINES)}, {}


def on_calls(nxt: bool) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        schedule = _schedule(emu, request, "scheduleIdentifierType")
        moment = _date(request)
        if nxt:
            moment = moment + timedelta(weeks=1)  # the seed rotations are weekly
        people = emu.on_call_at(schedule, moment)
        flat = request.query_params.get("flat", "false").lower() == "true"
        names = [name for _, name in people]
        full = [{"id": pid, "name": name, "type": "user"} for pid, name in people]
        if nxt:
            data = {"_parent": _meta(schedule),
                    **({"nextOnCallParticipants": names, "exactNextOnCallParticipants": names}
                       if flat else {"nextOnCallRecipients": full, "exactNextOnCallRecipients": full})}
        else:
            data = {"_parent": _meta(schedule),
                    **({"onCallRecipients": names} if flat else {"onCallParticipants": full})}
        return 200, {"data": data}, {}
    return handler


async def list_teams(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    teams = [{k: v for k, v in t.items() if k != "members"} for t in emu.teams]
    return 200, {"data": teams, "expandable": ["member"]}, {}


async def get_team(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    kind = request.query_params.get("identifierType", "id")
    return 200, {"data": emu.find_named(emu.teams, request.path_params["identifier"], kind, "team")}, {}


async def list_users(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    offset = _int(request, "offset", 0, 0, 100000)
    limit = _int(request, "limit", 100, 1, 500)
    order = _choice(request, "order", "asc", ("asc", "desc"))
    sort = _choice(request, "sortField", "username", ("username", "fullName", "insertedAt"))
    query = (request.query_params.get("query") or "").strip().lower()
    users = emu.users
    if query.startswith("role:"):
        users = [u for u in users if u["role"]["name"].lower() == query[5:]]
    elif query:
        users = [u for u in users if query in u["username"].lower() or query in u["fullName"].lower()]
    users = sorted(users, key=lambda u: u["createdAt" if sort == "insertedAt" else sort], reverse=order == "desc")
    params = {k: v for k, v in (("query", request.query_params.get("query")), ("sortField", sort), ("order", order))
              if v}
    links = _links(request, "/v2/users", params, offset, limit, len(users))
    return (200, {"data": users[offset:offset + limit], "totalCount": len(users), "paging": links},
            _paging_headers(links))


async def get_user(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    user = dict(emu.find_user(request.path_params["identifier"]))
    if "contact" in request.query_params.get("expand", "").split(","):
        from mcp_proxy.sandbox.opsgenie.seed import CONTACTS

        user["userContacts"] = CONTACTS.get(user["id"], [])
    return 200, {"data": user, "expandable": ["contact"]}, {}


# -- the wrapper: auth, throttling, error bodies, logging --------------------------
def endpoint(emu: Emulator, handler: Handler, *, alert_write: bool = False,
             domain: str = "Configuration") -> Callable[[Request], Awaitable[Response]]:
    async def asgi(request: Request) -> Response:
        started = time.perf_counter()
        rid = str(uuid.uuid4())
        raw = await request.body()
        headers: dict[str, str] = {}
        try:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise Problem(400, "Could not parse the request body as JSON.") from None
            if emu.take_throttle(request.url.path):
                raise Problem(429,
                              "You are making too many requests! To avoid errors, we recommend you limit requests.",
                              headers={"X-RateLimit-State": "THROTTLED", "X-RateLimit-Reason": domain,
                                       "X-RateLimit-Period-In-Sec": f"{emu.rate_limit_period:g}"})
            auth = request.headers.get("authorization", "")
            scheme, _, key = auth.partition(" ")
            kind = emu.key_kind(key.strip()) if scheme.lower() == "geniekey" else None
            if kind is None:
                shown = f" Key [{key.strip()}] is not valid." if emu.echo_key_in_errors and key else ""
                raise Problem(401, "Could not authenticate." + shown)
            if alert_write and kind == "config":
                raise Problem(403, "To perform this action, use an API key from an API integration.", code=40301)
            if not isinstance(body, dict):
                raise Problem(400, "The request body must be a JSON object.")
            status, payload, headers = await handler(emu, request, body)
            headers = {**headers, "X-RateLimit-State": "OK"}
        except Problem as problem:
            status, headers = problem.status, problem.headers
            payload = {"message": problem.message}
            if problem.code is not None:
                payload["code"] = problem.code
            if problem.errors:
                payload["errors"] = problem.errors
        took = round(time.perf_counter() - started, 3)
        # An accepted write's requestId is the one to poll; it is also that response's X-Request-ID.
        rid = payload.get("requestId", rid)
        payload = {**payload, "took": took, "requestId": rid}
        headers = {**headers, "X-Request-ID": rid, "X-Response-Time": f"{took}"}
        emu.log.append({"method": request.method, "path": request.url.path, "query": request.url.query,
                        "authorized": bool(request.headers.get("authorization")), "body": raw.decode() or None,
                        "status": status, "response_headers": headers, "response": payload})
        return Response(json.dumps(payload), status_code=status, headers=headers, media_type="application/json")

    return asgi


def routes(emu: Emulator) -> list[Route]:
    def r(path: str, handler: Handler, method: str = "GET", **kw: Any) -> Route:
        return Route(path, endpoint(emu, handler, **kw), methods=[method])

    table = [
        r("/v2/alerts/requests/{request_id}", request_status, domain="Alert"),
        r("/v2/alerts/count", count_alerts, domain="Search"),
        r("/v2/alerts", list_alerts, domain="Search"),
        r("/v2/alerts", create_alert, "POST", alert_write=True, domain="Alert"),
        r("/v2/alerts/{identifier}", get_alert, domain="Alert"),
        r("/v2/alerts/{identifier}/notes", notes_or_logs("notes"), domain="Alert"),
        r("/v2/alerts/{identifier}/logs", notes_or_logs("logs"), domain="Alert"),
        r("/v2/escalations", list_escalations), r("/v2/escalations/{identifier}", get_escalation),
        r("/v2/schedules", list_schedules),
        r("/v2/schedules/{identifier}/timeline", schedule_timeline),
        r("/v2/schedules/{identifier}/on-calls", on_calls(False), domain="Schedule-oncalls"),
        r("/v2/schedules/{identifier}/next-on-calls", on_calls(True), domain="Schedule-oncalls"),
        r("/v2/schedules/{identifier}", get_schedule),
        r("/v2/teams", list_teams), r("/v2/teams/{identifier}", get_team),
        r("/v2/users", list_users, domain="Search"), r("/v2/users/{identifier}", get_user),
    ]
    for action in ALERT_ACTIONS:
        table.append(r(f"/v2/alerts/{{identifier}}/{action}", alert_action(action), "POST", alert_write=True,
                       domain="Alert"))
    return table


def build_app(emu: Emulator) -> Starlette:
    app = Starlette(routes=routes(emu))
    app.state.emulator = emu
    return app
