"""HTTP face of the JSM Operations emulator: auth (Basic, Bearer), the cloud-id lookups, rate limiting,
paging links, error bodies and the request log."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_proxy.sandbox.alert_state import iso, now
from mcp_proxy.sandbox.jsm.state import RESULT_CAP, Emulator, Problem, parse_time

ROOT = "/jsm/ops/api/{cloudId}"
Result = tuple[int, Any]
Handler = Callable[[Emulator, Request, dict[str, Any]], Awaitable[Result]]
LIST_FIELDS = ("id", "tinyId", "alias", "message", "status", "acknowledged", "seen", "tags", "snoozed",
               "snoozedUntil", "count", "lastOccuredAt", "createdAt", "updatedAt", "source", "owner", "priority",
               "responders", "integrationType", "integrationName", "ackTime", "closeTime", "extraProperties",
               "entity", "actions")


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def _int(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise Problem(422, f"{name} must be an integer", "INVALID_INPUT") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise Problem(422, f"{name} must be {bound}", "INVALID_INPUT")
    return value


def _next_link(emu: Emulator, request: Request, path: str, params: dict[str, Any]) -> str:
    """`links.next`: relative to the API root (`/v1/...`, the per-schema examples) or absolute (the narrative)."""
    relative = f"{path}?{urlencode(params)}"
    if not emu.absolute_links:
        return relative
    return f"{str(request.base_url).rstrip('/')}{ROOT.format(cloudId=emu.cloud_id)}{relative}"


def _page(emu: Emulator, request: Request, path: str, items: list[Any], default: int, high: int,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    offset = _int(request, "offset", 0, 0)
    size = _int(request, "size", default, 1, high)
    body: dict[str, Any] = {"values": items[offset:offset + size], "links": {}}
    if offset + size < len(items):
        body["links"]["next"] = _next_link(emu, request, path, {**(extra or {}), "offset": offset + size,
                                                                "size": size})
    return body


def _cursor_page(emu: Emulator, request: Request, path: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Notes and logs, newest first, paged by an opaque `after` cursor."""
    size = _int(request, "size", 20, 1, 100)
    ordered = sorted(rows, key=lambda r: r["_cursor"], reverse=True)
    after = request.query_params.get("after")
    if after:
        if not after.isdigit():
            raise Problem(422, "after must be a cursor from links.next", "INVALID_INPUT")
        ordered = [r for r in ordered if r["_cursor"] < int(after)]
    page = ordered[:size]
    body: dict[str, Any] = {"values": [{k: v for k, v in r.items() if k != "_cursor"} for r in page], "links": {}}
    if len(ordered) > size:
        body["links"]["next"] = _next_link(emu, request, path, {"after": page[-1]["_cursor"], "size": size})
    return body


# -- alerts -------------------------------------------------------------------------------
async def list_alerts(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    offset = _int(request, "offset", 0, 0)
    size = _int(request, "size", 20, 1, 100)
    if offset + size >= RESULT_CAP:
        raise Problem(422, f"offset + size must be less than {RESULT_CAP}; narrow the query instead",
                      "INVALID_INPUT")
    sort = request.query_params.get("sort", "insertedAt")
    if sort not in ("createdAt", "insertedAt", "lastOccurredAt", "priority"):
        raise Problem(422, "sort must be one of createdAt, insertedAt, lastOccurredAt, priority", "INVALID_INPUT")
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise Problem(422, "order must be asc or desc", "INVALID_INPUT")
    query = request.query_params.get("query")
    alerts = emu.query_alerts(query)
    field = {"insertedAt": "createdAt", "lastOccurredAt": "lastOccuredAt"}.get(sort, sort)
    alerts.sort(key=lambda a: (str(a.get(field, "")), a["tinyId"].zfill(8)), reverse=order == "desc")
    params = {k: v for k, v in (("query", query), ("sort", request.query_params.get("sort")),
                                ("order", request.query_params.get("order"))) if v}
    page = _page(emu, request, "/v1/alerts", [{k: a[k] for k in LIST_FIELDS if k in a} for a in alerts], 20, 100,
                 params)
    if "next" in page["links"] and offset + 2 * size >= RESULT_CAP:
        del page["links"]["next"]  # the next page would cross the cap
    return 200, {"values": page["values"], "count": len(alerts), "links": page["links"]}


async def get_alert(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, _public(emu.alert(request.path_params["id"]))


async def get_alert_by_alias(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    alias = request.query_params.get("alias")
    if not alias:
        raise Problem(422, "alias is required", "INVALID_INPUT")
    return 200, _public(emu.by_alias(alias))


def _accepted(rid: str) -> dict[str, Any]:
    return {"result": "Request will be processed", "requestId": rid, "took": 0}


async def create_alert(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, _accepted(emu.submit("create", emu.create(body)))  # 200, not 202, per the spec


def alert_action(action: str) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        effect = emu.action(action, request.path_params["id"], body, request.state.actor)
        return 202, _accepted(emu.submit(action, effect))
    return handler


async def add_note(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    alert = emu.alert(request.path_params["id"])
    note = body.get("note")
    if not isinstance(note, str) or not note.strip() or len(note) > 25000:
        raise Problem(422, "note must be 1 to 25000 characters", "INVALID_INPUT")
    row = emu.add_note(alert["id"], note, request.state.actor)
    emu.log_event(alert["id"], "Note added", request.state.actor)
    return 200, {k: v for k, v in row.items() if k != "_cursor"}  # synchronous, unlike Opsgenie


def notes_or_logs(kind: str) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        alert = emu.alert(request.path_params["id"])
        table = emu.notes if kind == "notes" else emu.logs
        return 200, _cursor_page(emu, request, f"/v1/alerts/{alert['id']}/{kind}", table.get(alert["id"], []))
    return handler


async def request_status(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, emu.request_status(request.path_params["id"])


# -- schedules, teams, escalations --------------------------------------------------------------
def _schedule_view(schedule: dict[str, Any], rotations: bool) -> dict[str, Any]:
    view = {k: v for k, v in schedule.items() if k != "rotations"}
    if rotations:
        view["rotations"] = schedule["rotations"]
    return view


async def list_schedules(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    query = (request.query_params.get("query") or "").lower()
    expand = request.query_params.get("expand", "").split(",")
    items = [s for s in emu.schedules if not query or (s["name"].lower().startswith(query[:-1])
                                                        if query.endswith("*") else s["name"].lower() == query)]
    params = {k: v for k, v in request.query_params.items() if k in ("query", "expand")}
    page = _page(emu, request, "/v1/schedules", [_schedule_view(s, "rotation" in expand) for s in items], 25, 50,
                 params)
    return 200, {**page, "_expands": ["rotation"]}


async def get_schedule(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, _schedule_view(emu.schedule(request.path_params["id"]), True)


def _moment(request: Request) -> Any:
    raw = request.query_params.get("date")
    return parse_time(raw, "date") if raw else now()


async def timeline(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    schedule = emu.schedule(request.path_params["scheduleId"])
    interval = _int(request, "interval", 1, 1)
    unit = request.query_params.get("intervalUnit", "weeks")
    days = {"days": 1, "weeks": 7, "months": 30}.get(unit)
    if days is None:
        raise Problem(422, "intervalUnit must be days, weeks or months", "INVALID_INPUT")
    start = _moment(request)
    end = start + timedelta(days=days * interval)
    expand = [e for e in request.query_params.get("expand", "").split(",") if e]
    for e in expand:
        if e not in ("base", "forwarding", "override"):
            raise Problem(422, f"expand value [{e}] is not valid", "INVALID_INPUT")
    final = emu.timeline(schedule, start, end)
    out: dict[str, Any] = {"startDate": iso(start), "endDate": iso(end), "finalTimeline": final,
                           "_expands": ["base", "forwarding", "override"]}
    for e in expand:
        out[f"{e}Timeline"] = final if e == "base" else {"rotations": []}
    return 200, out


def on_calls(next_ones: bool) -> Handler:
    async def handler(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
        schedule = emu.schedule(request.path_params["scheduleId"])
        flat = request.query_params.get("flat", "false")
        if flat not in ("true", "false"):
            raise Problem(422, "flat must be true or false", "INVALID_INPUT")
        moment = _moment(request)
        people = emu.next_on_call(schedule, moment) if next_ones else emu.on_call_at(schedule, moment)
        key = "nextOnCall" if next_ones else "onCall"
        if flat == "true":
            return 200, {f"{key}Users": people}
        return 200, {f"{key}Participants": [{"id": p, "type": "user"} for p in people]}
    return handler


async def list_teams(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    return 200, {"platformTeams": emu.teams}


def _team(emu: Emulator, request: Request) -> str:
    team = request.path_params["teamId"]
    if not any(t["teamId"] == team for t in emu.teams):
        raise Problem(404, f"Team with id [{team}] does not exist", "NOT_FOUND")
    return team


async def list_escalations(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    team = _team(emu, request)
    return 200, _page(emu, request, f"/v1/teams/{team}/escalations", emu.escalations.get(team, []), 20, 100)


async def get_escalation(emu: Emulator, request: Request, body: dict[str, Any]) -> Result:
    team = _team(emu, request)
    for escalation in emu.escalations.get(team, []):
        if escalation["id"] == request.path_params["id"]:
            return 200, escalation
    raise Problem(404, f"Escalation with id [{request.path_params['id']}] does not exist", "NOT_FOUND")


# -- the cloud id ---------------------------------------------------------------------------
async def tenant_info(request: Request) -> Response:
    emu: Emulator = request.app.state.emulator
    _record(emu, request, b"", 200, {"cloudId": emu.cloud_id})
    return Response(json.dumps({"cloudId": emu.cloud_id}), media_type="application/json")


async def accessible_resources(request: Request) -> Response:
    emu: Emulator = request.app.state.emulator
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in emu.bearer_tokens:
        payload: Any = {"code": 401, "message": "Unauthorized"}
        status = 401
    else:
        status, payload = 200, [{"id": emu.cloud_id, "name": emu.site.split(".")[0], "url": f"https://{emu.site}",
                                 "scopes": ["read:ops-alert:jira-service-management",
                                            "write:ops-alert:jira-service-management",
                                            "read:ops-config:jira-service-management"],
                                 "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/a.png"}]
    _record(emu, request, b"", status, payload)
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


# -- the wrapper: auth, cloud id, scopes, throttling, errors, log ------------------------------------
def _caller(emu: Emulator, request: Request) -> tuple[str, str] | None:
    """(auth kind, actor) of the request's credentials, or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            email, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except ValueError:
            return None
        return ("basic", email) if token and emu.accounts.get(email) == token else None
    if scheme.lower() == "bearer" and value.strip() in emu.bearer_tokens:
        return "bearer", "oauth-user@example.com"
    return None


def _record(emu: Emulator, request: Request, raw: bytes, status: int, payload: Any,
            headers: dict[str, str] | None = None) -> None:
    emu.log.append({"method": request.method, "path": request.url.path, "query": request.url.query,
                    "authorization": request.headers.get("authorization", "").partition(" ")[0],
                    "body": raw.decode() or None, "status": status, "response_headers": headers or {},
                    "response": payload})


def endpoint(emu: Emulator, handler: Handler, scope: str) -> Callable[[Request], Awaitable[Response]]:
    async def asgi(request: Request) -> Response:
        started = time.perf_counter()
        raw = await request.body()
        headers: dict[str, str] = {}
        try:
            caller = _caller(emu, request)
            if caller is None:
                raise Problem(401, "Client must be authenticated to access this resource.")
            if request.path_params["cloudId"] != emu.cloud_id:
                raise Problem(404, "Site not found for this cloud id", "NOT_FOUND")
            if emu.take_throttle(request.url.path):
                raise Problem(429, "Too many requests", "TOO_MANY_REQUESTS",
                              headers={"Retry-After": f"{emu.retry_after:g}"})
            if scope in emu.missing_scopes or (scope == "delete" and caller[0] == "basic"):
                raise Problem(401, "Unauthorized; scope does not match")
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise Problem(400, "Could not parse the request body as JSON") from None
            if not isinstance(body, dict):
                raise Problem(400, "The request body must be a JSON object")
            request.state.actor = caller[1]
            status, payload = await handler(emu, request, body)
        except Problem as problem:
            status, headers = problem.status, problem.headers
            payload = ({"code": 401, "message": problem.title} if problem.status == 401
                       else {"errors": [{"title": problem.title, "code": problem.code}]})
        headers = {**headers, "X-Response-Time": f"{time.perf_counter() - started:.3f}"}
        _record(emu, request, raw, status, payload, headers)
        return Response(json.dumps(payload), status_code=status, headers=headers, media_type="application/json")

    return asgi


def routes(emu: Emulator) -> list[Route]:
    def r(path: str, handler: Handler, method: str = "GET", scope: str = "read") -> Route:
        return Route(ROOT + path, endpoint(emu, handler, scope), methods=[method])

    table = [
        r("/v1/alerts/requests/{id}", request_status),
        r("/v1/alerts/alias", get_alert_by_alias),
        r("/v1/alerts", list_alerts),
        r("/v1/alerts", create_alert, "POST", "write"),
        r("/v1/alerts/{id}", get_alert),
        r("/v1/alerts/{id}/notes", notes_or_logs("notes")),
        r("/v1/alerts/{id}/notes", add_note, "POST", "write"),
        r("/v1/alerts/{id}/logs", notes_or_logs("logs")),
        r("/v1/schedules", list_schedules),
        r("/v1/schedules/{id}", get_schedule),
        r("/v1/schedules/{scheduleId}/timeline", timeline),
        r("/v1/schedules/{scheduleId}/on-calls", on_calls(False)),
        r("/v1/schedules/{scheduleId}/next-on-calls", on_calls(True)),
        r("/v1/teams", list_teams),
        r("/v1/teams/{teamId}/escalations", list_escalations),
        r("/v1/teams/{teamId}/escalations/{id}", get_escalation),
    ]
    for action in ("acknowledge", "unacknowledge", "close", "snooze", "escalate", "assign"):
        table.append(r(f"/v1/alerts/{{id}}/{action}", alert_action(action), "POST", "write"))
    table += [Route("/_edge/tenant_info", tenant_info, methods=["GET"]),
              Route("/oauth/token/accessible-resources", accessible_resources, methods=["GET"])]
    return table


def build_app(emu: Emulator) -> Starlette:
    app = Starlette(routes=routes(emu))
    app.state.emulator = emu
    return app
