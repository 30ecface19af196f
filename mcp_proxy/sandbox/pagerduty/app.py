"""HTTP face of the PagerDuty emulator: auth and scopes, the `From` actor, rate limiting,
classic pagination, error bodies, and the request/response log."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_proxy.sandbox.pagerduty.state import (
    ACCESS_DENIED,
    AUTH_FAILED,
    INVALID_INPUT,
    MISSING_FROM,
    RATE_LIMITED,
    Emulator,
    Problem,
    iso,
    now,
    parse_time,
)

Result = tuple[int, dict[str, Any]]
Handler = Callable[[Emulator, Request, "Caller", Any], Awaitable[Result]]
MISSING_FROM_MESSAGE = 'You must specify a user\'s email address in the "From" header to perform this action'
ACCOUNT_KEY_ME = ("Because this request was made using an account-level access token, we were unable to "
                  "determine the user's identity. Please use a user-level token.")


class Caller:
    def __init__(self, user_id: str | None, scopes: list[str] | None) -> None:
        self.user_id = user_id  # None: an account-level key or app token
        self.scopes = scopes  # None: an API key (no OAuth scopes)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    try:
        return default if raw is None else int(raw)
    except ValueError:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, [f"{name} must be an integer"]) from None


def _list(request: Request, name: str) -> list[str]:
    return request.query_params.getlist(f"{name}[]")


def page(request: Request, key: str, items: list[Any]) -> Result:
    limit, offset = _int(request, "limit", 25), _int(request, "offset", 0)
    if limit < 1 or offset < 0:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["limit and offset must be positive"])
    limit = min(limit, 100)
    if offset + limit > 10000:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT,
                      ["Offset must be less than 10000 minus the limit (classic pagination stops at 10000 records)."])
    total = len(items) if request.query_params.get("total") == "true" else None
    return 200, {key: items[offset:offset + limit], "limit": limit, "offset": offset,
                 "more": offset + limit < len(items), "total": total}


def _matches(query: str | None, *values: Any) -> bool:
    return not query or any(query.lower() in str(v or "").lower() for v in values)


def _actor(emu: Emulator, request: Request, caller: Caller) -> str:
    if caller.user_id:  # a user's key or token names the user; PagerDuty does not need From then
        return caller.user_id
    sender = request.headers.get("from")
    if not sender:
        raise Problem(400, MISSING_FROM_MESSAGE, MISSING_FROM)
    user = emu.user_by_email(sender)
    if user is None:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT,
                      [f"The From header must be the email of a user in this account; {sender!r} is not."])
    return user["id"]


# -- incidents ---------------------------------------------------------------
async def list_incidents(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    q = request.query_params
    items = list(emu.incidents.values())
    if q.get("date_range") != "all":
        until = parse_time(q["until"], "until") if q.get("until") else now() + timedelta(seconds=1)
        since = parse_time(q["since"], "since") if q.get("since") else until - timedelta(days=30)
        if until - since > timedelta(days=183):
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["The date range may span at most 6 months."])
        items = [i for i in items if since <= parse_time(i["created_at"], "") < until]
    filters = {"statuses": lambda i: i["status"], "urgencies": lambda i: i["urgency"],
               "service_ids": lambda i: i["service"]["id"],
               "priority_ids": lambda i: (i.get("priority") or {}).get("id")}
    for name, get in filters.items():
        wanted = _list(request, name)
        if wanted:
            items = [i for i in items if get(i) in wanted]
    if _list(request, "team_ids"):
        items = [i for i in items if {t["id"] for t in i["teams"]} & set(_list(request, "team_ids"))]
    if _list(request, "user_ids"):
        items = [i for i in items if {a["assignee"]["id"] for a in i["assignments"]} & set(_list(request, "user_ids"))]
    if q.get("incident_key"):
        items = [i for i in items if i["incident_key"] == q["incident_key"]]
    sorts = [s for s in (q.get("sort_by") or "created_at:asc").split(",") if s]
    for spec in reversed(sorts):
        field, _, direction = spec.partition(":")
        items.sort(key=functools.partial(_sort_key, field=field), reverse=direction == "desc")
    return page(request, "incidents", items)


def _sort_key(incident: dict[str, Any], field: str) -> Any:
    if field == "urgency":  # high ranks above low
        return incident["urgency"] == "high"
    if field == "incident_number":
        return incident[field]
    return str(incident.get(field) or "")


async def get_incident(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    return 200, {"incident": emu.find_incident(request.path_params["id"])}


def _object(body: Any, key: str) -> dict[str, Any]:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, [f"{key} is required"])
    return value


async def update_incident(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    change = _object(body, "incident")
    if change.get("type") not in ("incident", "incident_reference"):
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["incident.type must be incident_reference"])
    if change.get("status") not in (None, "acknowledged", "resolved", "triggered"):
        raise Problem(400, "Invalid Input Provided", 1003, ["Invalid status"])
    actor = _actor(emu, request, caller)
    return 200, {"incident": emu.update_incident(request.path_params["id"], change, actor)}


async def create_incident(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    data = _object(body, "incident")
    if data.get("type") != "incident" or not str(data.get("title") or "").strip():
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["incident.type and incident.title are required"])
    if data.get("assignments") and data.get("escalation_policy"):
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT,
                      ["Assignments cannot be specified if an escalation policy is given"])
    actor = _actor(emu, request, caller)
    return 201, {"incident": emu.create_incident(data, actor)}


async def list_notes(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    return 200, {"notes": emu.notes[emu.find_incident(request.path_params["id"])["id"]]}


async def add_note(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    content = str(_object(body, "note").get("content") or "").strip()
    emu.find_incident(request.path_params["id"])
    if not content:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["Note content can't be blank"])
    actor = _actor(emu, request, caller)
    return 200, {"note": emu.add_note(request.path_params["id"], content, actor)}


async def list_alerts(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    alerts = emu.alerts[emu.find_incident(request.path_params["id"])["id"]]
    if _list(request, "statuses"):
        alerts = [a for a in alerts if a["status"] in _list(request, "statuses")]
    return page(request, "alerts", alerts)


async def list_log_entries(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    entries = sorted(emu.log_entries[emu.find_incident(request.path_params["id"])["id"]],
                     key=lambda e: e["created_at"], reverse=True)
    q = request.query_params
    if q.get("since"):
        entries = [e for e in entries if parse_time(e["created_at"], "") >= parse_time(q["since"], "since")]
    if q.get("until"):
        entries = [e for e in entries if parse_time(e["created_at"], "") < parse_time(q["until"], "until")]
    if q.get("is_overview") == "true":
        entries = [e for e in entries if e["type"] != "annotate_log_entry"]
    return page(request, "log_entries", entries)


# -- directory ---------------------------------------------------------------
def lister(table: str, key: str, fields: tuple[str, ...], teams: bool = False) -> Handler:
    async def handler(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
        items = [i for i in getattr(emu, table).values()
                 if _matches(request.query_params.get("query"), *(i.get(f) for f in fields))]
        if teams and _list(request, "team_ids"):
            items = [i for i in items if {t["id"] for t in i.get("teams", [])} & set(_list(request, "team_ids"))]
        if table == "policies" and _list(request, "user_ids"):
            wanted = set(_list(request, "user_ids"))
            items = [p for p in items if any(t["id"] in wanted or (t["type"] == "schedule_reference" and wanted &
                     set(emu.schedules[t["id"]]["rotation"])) for r in p["escalation_rules"] for t in r["targets"])]
        items = [{k: v for k, v in i.items() if k != "rotation"} for i in items]
        return page(request, key, items)
    return handler


def getter(table: str, key: str) -> Handler:
    async def handler(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
        item = getattr(emu, table).get(request.path_params["id"])
        if item is None:
            raise Problem(404, "Not Found", 2100)
        return 200, {key: {k: v for k, v in item.items() if k != "rotation"}}
    return handler


async def current_user(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    if caller.user_id is None:
        raise Problem(400, ACCOUNT_KEY_ME, INVALID_INPUT)
    return 200, {"user": emu.users[caller.user_id]}


async def get_schedule(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    status, result = await getter("schedules", "schedule")(emu, request, caller, body)
    q = request.query_params
    since = parse_time(q["since"], "since") if q.get("since") else now()
    until = parse_time(q["until"], "until") if q.get("until") else since + timedelta(days=14)
    entries: list[dict[str, Any]] = []
    at = since
    while at < until and len(entries) < 200:  # the final schedule, rendered day by day
        end = min(until, at + timedelta(days=1))
        entries.append({"start": iso(at), "end": iso(end),
                        "user": emu.ref("user", emu.on_call(request.path_params["id"], at))})
        at = end
    result["schedule"]["final_schedule"] = {"name": "Final Schedule", "rendered_schedule_entries": entries,
                                            "rendered_coverage_percentage": 100.0}
    return status, result


async def list_overrides(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    sid = request.path_params["id"]
    if sid not in emu.schedules:
        raise Problem(404, "Not Found", 2100)
    q = request.query_params
    if not q.get("since") or not q.get("until"):
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["since and until are required"])
    since, until = parse_time(q["since"], "since"), parse_time(q["until"], "until")
    items = [{k: v for k, v in o.items() if k != "schedule"} for o in emu.overrides if o["schedule"] == sid
             and parse_time(o["start"], "") < until and parse_time(o["end"], "") > since]
    return 200, {"overrides": items}


async def list_oncalls(emu: Emulator, request: Request, caller: Caller, body: Any) -> Result:
    q = request.query_params
    since = parse_time(q["since"], "since") if q.get("since") else now()
    until = parse_time(q["until"], "until") if q.get("until") else since
    if until - since > timedelta(days=90):
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["until may be at most 90 days after since"])
    users, policies, schedules = (set(_list(request, n)) for n in ("user_ids", "escalation_policy_ids",
                                                                   "schedule_ids"))
    items: list[dict[str, Any]] = []
    for pid, policy in emu.policies.items():
        for level, rule in enumerate(policy["escalation_rules"], 1):
            for target in rule["targets"]:
                sched = target["id"] if target["type"] == "schedule_reference" else None
                uid = emu.on_call(sched, since) if sched else target["id"]
                if (policies and pid not in policies) or (schedules and sched not in schedules) or \
                        (users and uid not in users):
                    continue
                entry = {"escalation_policy": emu.ref("escalation_policy", pid), "escalation_level": level,
                         "user": emu.ref("user", uid), "schedule": emu.ref("schedule", sched) if sched else None,
                         "start": iso(since - timedelta(hours=since.hour)) if sched else None,
                         "end": iso(since - timedelta(hours=since.hour) + timedelta(days=1)) if sched else None}
                items.append({k: v for k, v in entry.items() if v is not None})
    if q.get("earliest") == "true":
        seen, unique = set(), []
        for e in items:
            key = (e["user"]["id"], e["escalation_policy"]["id"], e["escalation_level"])
            if key not in seen:
                seen.add(key)
                unique.append(e)
        items = unique
    return page(request, "oncalls", items)


# (method, path, handler, scope: the spec's x-pd-requires-scope)
ROUTES: list[tuple[str, str, Handler, str | None]] = [
    ("GET", "/incidents", list_incidents, "incidents.read"),
    ("POST", "/incidents", create_incident, "incidents.write"),
    ("GET", "/incidents/{id}", get_incident, "incidents.read"),
    ("PUT", "/incidents/{id}", update_incident, "incidents.write"),
    ("GET", "/incidents/{id}/notes", list_notes, "incidents.read"),
    ("POST", "/incidents/{id}/notes", add_note, "incidents.write"),
    ("GET", "/incidents/{id}/alerts", list_alerts, "incidents.read"),
    ("GET", "/incidents/{id}/log_entries", list_log_entries, "incidents.read"),
    ("GET", "/services", lister("services", "services", ("name", "description"), teams=True), "services.read"),
    ("GET", "/services/{id}", getter("services", "service"), "services.read"),
    ("GET", "/users/me", current_user, None),
    ("GET", "/users", lister("users", "users", ("name", "email"), teams=True), "users.read"),
    ("GET", "/users/{id}", getter("users", "user"), "users.read"),
    ("GET", "/schedules", lister("schedules", "schedules", ("name",)), "schedules.read"),
    ("GET", "/schedules/{id}", get_schedule, "schedules.read"),
    ("GET", "/schedules/{id}/overrides", list_overrides, "schedules.read"),
    ("GET", "/oncalls", list_oncalls, "oncalls.read"),
    ("GET", "/escalation_policies", lister("policies", "escalation_policies", ("name",), teams=True),
     "escalation_policies.read"),
    ("GET", "/escalation_policies/{id}", getter("policies", "escalation_policy"), "escalation_policies.read"),
    ("GET", "/teams", lister("teams", "teams", ("name",)), "teams.read"),
    ("GET", "/priorities", lister("priorities", "priorities", ("name",)), "priorities.read"),
]


def _absolute(value: Any, base: str) -> Any:
    """Objects keep API links relative (`self`); answers carry them on the host the request came to.
    Keys starting with `_` are the emulator's own bookkeeping and never leave it."""
    if isinstance(value, dict):
        return {k: (base + v if k == "self" and isinstance(v, str) and v.startswith("/") else _absolute(v, base))
                for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    return value


def _authenticate(emu: Emulator, request: Request, bearer_validator: Any) -> Caller:
    header = request.headers.get("authorization", "").strip()
    if header.startswith("Token token="):
        key = header[len("Token token="):].strip().strip('"')
        if key in emu.api_keys:
            email = emu.api_keys[key]
            user = emu.user_by_email(email) if email else None
            return Caller(user["id"] if user else None, None)
    elif header.lower().startswith("bearer ") and bearer_validator is not None:
        info = bearer_validator(header[7:].strip())
        if info:
            scopes = info.get("scopes")
            return Caller(info.get("user_id"), list(scopes) if scopes is not None else [])
    raise Problem(401, "Authentication failed", AUTH_FAILED)


def _check_scope(caller: Caller, method: str, scope: str | None) -> None:
    if caller.scopes is None or scope is None:
        return
    granted = set(caller.scopes)
    if scope in granted or "write" in granted or (method == "GET" and "read" in granted):
        return
    raise Problem(403, "Access Denied", ACCESS_DENIED,
                  [f"This request requires the OAuth scope {scope}; the token does not have it."])


def build_app(emu: Emulator, bearer_validator: Any = None) -> Starlette:
    def endpoint(method: str, handler: Handler, scope: str | None):  # noqa: ANN202
        async def run(request: Request) -> Response:
            raw = (await request.body()).decode("utf-8", "replace")
            headers: dict[str, str] = {}
            try:
                with emu.lock:
                    limited = emu.rate_limit or emu.throttled > 0
                    if emu.throttled > 0:
                        emu.throttled -= 1
                if limited:
                    headers = {"ratelimit-limit": "960", "ratelimit-remaining": "0",
                               "ratelimit-reset": str(emu.ratelimit_reset)}
                    raise Problem(429, "Rate Limit Exceeded", RATE_LIMITED)
                accept = request.headers.get("accept", "")
                if "vnd.pagerduty+json" in accept and "version=2" not in accept:
                    raise Problem(406, "Unsupported API version; this emulator speaks version=2", INVALID_INPUT)
                caller = _authenticate(emu, request, bearer_validator)
                _check_scope(caller, method, scope)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["The body is not JSON"]) from None
                with emu.lock:
                    status, payload = await handler(emu, request, caller, body)
                payload = _absolute(json.loads(json.dumps(payload)), str(request.base_url).rstrip("/"))
            except Problem as problem:
                status, payload = problem.status, problem.body()
            with emu.lock:
                emu.log.append({
                    "method": method, "path": request.url.path, "query": request.url.query,
                    "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
                    "body": raw, "status": status, "response_headers": headers, "response": payload})
            return Response(json.dumps(payload), status, headers=headers, media_type="application/json")
        return run

    routes = [Route(path, endpoint(method, handler, scope), methods=[method])
              for method, path, handler, scope in ROUTES]

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response(json.dumps({"error": {"message": "Not Found", "code": 2100}}), 404,
                        media_type="application/json")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.emulator = emu
    return app
