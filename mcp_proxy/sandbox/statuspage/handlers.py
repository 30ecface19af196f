"""The Statuspage emulator's endpoints: one function per operation, (emu, call) → (status, body), each
declared with its method and path by `@route` (`ROUTES` is what `app.py` dispatches on)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcp_proxy.sandbox.statuspage.state import (
    COMPONENT_STATUSES,
    IMPACT_RANK,
    NOT_FOUND,
    REALTIME,
    SCHEDULED,
    Emulator,
    Problem,
    now,
)

Result = tuple[int, Any]
P = "/pages/{page_id}"


@dataclass
class Call:
    params: dict[str, str]  # path parameters
    query: dict[str, str]
    body: Any


Handler = Callable[[Emulator, Call], Awaitable[Result]]
PageTable = dict[str, dict[str, dict[str, Any]]]  # page id -> item id -> item
ROUTES: list[tuple[str, str, Handler]] = []  # (method, path template as in the spec, handler)


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Declares the operation a handler answers, so that each path stands above the code that serves it."""
    def declare(handler: Handler) -> Handler:
        ROUTES.append((method, template, handler))
        return handler
    return declare


def _int(call: Call, name: str, default: int, low: int) -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(low, int(raw))
    except ValueError:
        raise Problem(400, f"{name} must be an integer") from None


def _paged(call: Call, items: list[Any], size_name: str = "per_page", zero_based: bool = False) -> Result:
    first = 0 if zero_based else 1
    page = _int(call, "page", first, first) - first
    size = min(100, _int(call, size_name, 100, 1))
    return 200, items[page * size:(page + 1) * size]


def _stored(table: Callable[[Emulator], PageTable], id_param: str) -> Handler:
    """GET of one item of a page just as it is stored (a component, a group, a metric)."""
    async def handler(emu: Emulator, call: Call) -> Result:
        return 200, emu.find(table(emu), call.params["page_id"], call.params[id_param])
    return handler


def _wrapped(call: Call, key: str) -> dict[str, Any]:
    value = call.body.get(key) if isinstance(call.body, dict) else None
    if not isinstance(value, dict):
        raise Problem(422, f"{key} is missing or not an object")
    return value


def _time(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, f"{name} is not a valid date-time") from None
    if parsed.tzinfo is None:
        raise Problem(422, f"{name} needs a time zone")
    return parsed


# -- pages, components, groups ------------------------------------------------------------------
@route("GET", "/pages")
async def list_pages(emu: Emulator, call: Call) -> Result:
    return 200, [emu.public(p) for p in emu.pages.values()]


@route("GET", P)
async def get_page(emu: Emulator, call: Call) -> Result:
    return 200, emu.public(emu.page(call.params["page_id"]))


def _component_rows(emu: Emulator, pid: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for group in sorted(emu.groups[pid].values(), key=lambda g: g["position"]):
        rows.append({"id": group["id"], "page_id": pid, "name": group["name"], "status": "operational",
                     "group": True, "position": group["position"], "showcase": False,
                     "only_show_if_degraded": False, "created_at": group["created_at"],
                     "updated_at": group["updated_at"]})
        rows += sorted((emu.components[pid][c] for c in group["components"]), key=lambda c: c["position"])
    rows += sorted((c for c in emu.components[pid].values() if not c.get("group_id")), key=lambda c: c["position"])
    return rows


@route("GET", f"{P}/components")
async def list_components(emu: Emulator, call: Call) -> Result:
    emu.page(call.params["page_id"])
    return _paged(call, _component_rows(emu, call.params["page_id"]))


route("GET", f"{P}/components/{{component_id}}")(_stored(lambda emu: emu.components, "component_id"))


@route("PATCH", f"{P}/components/{{component_id}}")
async def patch_component(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    comp = emu.find(emu.components, pid, call.params["component_id"])
    change = _wrapped(call, "component")
    if "status" in change and change["status"] not in COMPONENT_STATUSES:
        raise Problem(422, f"Status {change['status']!r} is not included in the list")
    if "name" in change and not str(change["name"] or "").strip():
        raise Problem(422, "Name can't be blank")
    if change.get("group_id") and change["group_id"] not in emu.groups[pid]:
        raise Problem(422, "Group must belong to this page")
    stamp = emu.iso(now())
    for key in ("name", "description", "showcase", "only_show_if_degraded", "start_date"):
        if key in change:
            comp[key] = change[key]
    if "status" in change:
        emu.set_components(pid, {comp["id"]: change["status"]}, stamp)
    comp["updated_at"] = stamp
    return 200, comp


@route("GET", f"{P}/component-groups")
async def list_groups(emu: Emulator, call: Call) -> Result:
    emu.page(call.params["page_id"])
    groups = sorted(emu.groups[call.params["page_id"]].values(), key=lambda g: g["position"])
    return _paged(call, groups)


route("GET", f"{P}/component-groups/{{id}}")(_stored(lambda emu: emu.groups, "id"))


# -- incidents and maintenances -------------------------------------------------------------------
def _incidents(emu: Emulator, pid: str) -> list[dict[str, Any]]:
    emu.page(pid)
    return sorted(emu.incidents[pid].values(), key=lambda i: i["created_at"], reverse=True)


@route("GET", f"{P}/incidents")
async def list_incidents(emu: Emulator, call: Call) -> Result:
    items = _incidents(emu, call.params["page_id"])
    q = (call.query.get("q") or "").lower()
    if q:
        items = [i for i in items if q in " ".join([i["name"], i["status"], i.get("postmortem_body", ""),
                                                     *(u["body"] for u in i["_updates"])]).lower()]
    status, page = _paged(call, items, "limit")
    return status, [emu.render_incident(i) for i in page]


def incident_lister(which: str) -> Handler:
    async def handler(emu: Emulator, call: Call) -> Result:
        items = _incidents(emu, call.params["page_id"])
        moment = emu.iso(now())
        if which == "unresolved":
            items = [i for i in items if i["_kind"] == "realtime" and i["status"] != "resolved"]
        elif which == "active_maintenance":
            items = [i for i in items if i["_kind"] == "scheduled" and i["status"] in ("in_progress", "verifying")]
        else:
            items = [i for i in items if i["_kind"] == "scheduled" and i["status"] == "scheduled"
                     and (which == "scheduled" or i["scheduled_for"] > moment)]
            items.sort(key=lambda i: i["scheduled_for"])
        status, page = _paged(call, items)
        return status, [emu.render_incident(i) for i in page]
    return handler


for _which in ("unresolved", "upcoming", "scheduled", "active_maintenance"):
    route("GET", f"{P}/incidents/{_which}")(incident_lister(_which))


@route("GET", f"{P}/incidents/{{incident_id}}")
async def get_incident(emu: Emulator, call: Call) -> Result:
    return 200, emu.render_incident(emu.find(emu.incidents, call.params["page_id"], call.params["incident_id"]))


def _check_incident_fields(emu: Emulator, pid: str, data: dict[str, Any]) -> dict[str, str]:
    """Validates what both create and update accept; returns the component status changes."""
    if "name" in data and (not isinstance(data["name"], str) or not data["name"].strip()):
        raise Problem(422, "Name can't be blank")
    if len(str(data.get("name") or "")) > 255:
        raise Problem(422, "Name is too long (maximum is 255 characters)")
    if len(str(data.get("body") or "")) > 25000:
        raise Problem(422, "Body is too long (maximum is 25000 characters)")
    if data.get("impact_override") is not None and data["impact_override"] not in IMPACT_RANK:
        raise Problem(422, "Impact override is not included in the list")
    metadata = data.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or
                                 not all(isinstance(v, dict) for v in metadata.values())):
        raise Problem(422, "Metadata top-level values must be objects")
    statuses = data.get("components") or {}
    ids = list(data.get("component_ids") or [])
    if not isinstance(statuses, dict) or not isinstance(ids, list):
        raise Problem(422, "components must be an object and component_ids a list")
    for cid in [*ids, *statuses]:
        if cid not in emu.components[pid]:
            raise Problem(422, f"Component {cid} does not belong to this page")
    for status in statuses.values():
        if status not in (*COMPONENT_STATUSES, ""):
            raise Problem(422, f"Component status {status!r} is not included in the list")
    return {cid: statuses.get(cid, "") for cid in dict.fromkeys([*ids, *statuses])}


def _check_schedule(item: dict[str, Any], data: dict[str, Any]) -> None:
    start = _time(data.get("scheduled_for", item.get("scheduled_for")), "scheduled_for")
    end = _time(data.get("scheduled_until", item.get("scheduled_until")), "scheduled_until")
    if end <= start:
        raise Problem(422, "Scheduled until must be after scheduled for")


@route("POST", f"{P}/incidents")
async def create_incident(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    emu.page(pid)
    data = _wrapped(call, "incident")
    if not str(data.get("name") or "").strip():
        raise Problem(422, "Name can't be blank")
    changes = _check_incident_fields(emu, pid, data)
    kind = "scheduled" if data.get("status") in SCHEDULED or data.get("scheduled_for") else "realtime"
    status = data.get("status") or ("scheduled" if kind == "scheduled" else "investigating")
    allowed = SCHEDULED if kind == "scheduled" else REALTIME
    if status not in allowed:
        what = "scheduled maintenance" if kind == "scheduled" else "realtime incident"
        raise Problem(422, f"Status {status!r} is not valid for a {what}")
    at = now()
    stamp = emu.iso(at)
    item: dict[str, Any] = {"id": emu.new_id("inc"), "page_id": pid, "name": data["name"].strip(), "status": status,
                            "created_at": stamp, "updated_at": stamp, "_kind": kind, "_components": list(changes),
                            "_updates": []}
    item["shortlink"] = f"https://stspg.io/{item['id'][-9:]}"
    if kind == "scheduled":
        if not data.get("scheduled_for") or not data.get("scheduled_until"):
            raise Problem(422, "Scheduled for and scheduled until are required for a scheduled maintenance")
        _check_schedule(item, data)
        for key in ("scheduled_for", "scheduled_until"):
            item[key] = emu.iso(_time(data[key], key))
        for key in ("scheduled_remind_prior", "scheduled_auto_in_progress", "scheduled_auto_completed",
                    "auto_transition_to_maintenance_state", "auto_transition_to_operational_state",
                    "auto_transition_deliver_notifications_at_start", "auto_transition_deliver_notifications_at_end"):
            if key in data:
                item[key] = bool(data[key])
    for key in ("impact_override", "metadata"):
        if data.get(key) is not None:
            item[key] = data[key]
    item["impact"] = emu.impact(changes, data.get("impact_override"), kind)
    if status in ("resolved", "completed"):
        item["resolved_at"] = stamp
    affected = emu.set_components(pid, changes, stamp)
    notify = data.get("deliver_notifications", True) is not False  # Statuspage's default is true
    emu.incidents[pid][item["id"]] = item
    emu.add_update(item, status, str(data.get("body") or ""), notify, affected, at)
    return 201, emu.render_incident(item)


@route("PATCH", f"{P}/incidents/{{incident_id}}")
async def patch_incident(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    item = emu.find(emu.incidents, pid, call.params["incident_id"])
    data = _wrapped(call, "incident")
    changes = _check_incident_fields(emu, pid, data)
    allowed = SCHEDULED if item["_kind"] == "scheduled" else REALTIME
    status = data.get("status") or item["status"]
    if status not in allowed:
        kind = "scheduled maintenance" if item["_kind"] == "scheduled" else "realtime incident"
        raise Problem(422, f"Status {status!r} is not valid for a {kind}; use one of {', '.join(allowed)}")
    if item["_kind"] == "scheduled" and ("scheduled_for" in data or "scheduled_until" in data):
        _check_schedule(item, data)
        for key in ("scheduled_for", "scheduled_until"):
            if key in data:
                item[key] = emu.iso(_time(data[key], key))
    at = now()
    stamp = emu.iso(at)
    if data.get("name"):
        item["name"] = data["name"].strip()
    if data.get("impact_override") is not None:
        item["impact_override"] = data["impact_override"]
    for cid in changes:
        if cid not in item["_components"]:
            item["_components"].append(cid)
    affected = emu.set_components(pid, changes, stamp)
    if changes or data.get("impact_override"):
        current = {c: emu.components[pid][c]["status"] for c in item["_components"]}
        item["impact"] = emu.impact(current, item.get("impact_override"), item["_kind"])
    changed = status != item["status"]
    item["status"], item["updated_at"] = status, stamp
    if changed and status in ("resolved", "completed"):
        item["resolved_at"] = stamp
    elif changed and status == "monitoring":
        item["monitoring_at"] = stamp
    elif changed:
        item.pop("resolved_at", None)
    if data.get("body") or changed:
        notify = data.get("deliver_notifications", True) is not False
        emu.add_update(item, status, str(data.get("body") or ""), notify, affected, at)
    return 200, emu.render_incident(item)


# -- metrics --------------------------------------------------------------------------------------
@route("GET", f"{P}/metrics")
async def list_metrics(emu: Emulator, call: Call) -> Result:
    emu.page(call.params["page_id"])
    return _paged(call, list(emu.metrics[call.params["page_id"]].values()))


route("GET", f"{P}/metrics/{{metric_id}}")(_stored(lambda emu: emu.metrics, "metric_id"))


@route("POST", f"{P}/metrics/{{metric_id}}/data")
async def add_metric_data(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    metric = emu.find(emu.metrics, pid, call.params["metric_id"])
    data = call.body.get("data") if isinstance(call.body, dict) else None
    if not isinstance(data, dict):
        raise Problem(400, "data is missing")
    stamp, value = data.get("timestamp"), data.get("value")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise Problem(422, "Timestamp must be an integer (Unix seconds)")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise Problem(422, "Value must be a number")
    moment = now()
    if stamp > moment.timestamp() + 300 or stamp < (moment - timedelta(days=28)).timestamp():
        raise Problem(422, "Timestamp must be within the last 28 days")
    if emu.providers[pid].get(metric["metrics_provider_id"]) != "Self":
        raise Problem(405, "Data can only be submitted to metrics of a Self provider")
    cast = stamp - stamp % 30
    emu.metric_data[metric["id"]][cast] = value
    latest = max(emu.metric_data[metric["id"]])
    metric["most_recent_data_at"] = emu.iso(datetime.fromtimestamp(latest, moment.tzinfo))
    return 201, {"data": {"timestamp": cast, "value": value}}


# -- subscribers ----------------------------------------------------------------------------------
def _subscribers(emu: Emulator, call: Call) -> list[dict[str, Any]]:
    emu.page(call.params["page_id"])
    state = call.query.get("state") or "active"
    kind = call.query.get("type")
    items = [s for s in emu.subscribers[call.params["page_id"]].values() if s["_state"] != "unsubscribed"
             and (state == "all" or s["_state"] == state) and (not kind or s["mode"] == kind)]
    return items


def _primary(sub: dict[str, Any]) -> str:
    return str(sub.get("endpoint") or sub.get("email") or sub.get("phone_number") or "")


@route("GET", f"{P}/subscribers")
async def list_subscribers(emu: Emulator, call: Call) -> Result:
    items = _subscribers(emu, call)
    q = (call.query.get("q") or "").lower()
    if q:
        items = [s for s in items if q in " ".join(str(s.get(k, "")) for k in
                                                  ("email", "endpoint", "phone_number")).lower()]
    field = call.query.get("sort_field") or "primary"
    key = {"created_at": lambda s: s["created_at"], "quarantined_at": lambda s: s.get("quarantined_at", "")}.get(
        field, _primary)
    items.sort(key=key, reverse=call.query.get("sort_direction") == "desc")
    status, page = _paged(call, items, "limit", zero_based=True)
    return status, [emu.public(s) for s in page]


@route("GET", f"{P}/subscribers/count")
async def count_subscribers(emu: Emulator, call: Call) -> Result:
    items = _subscribers(emu, call)
    kinds = [call.query["type"]] if call.query.get("type") else ["email", "sms", "webhook", "slack",
                                                                   "integration_partner"]
    return 200, {k: sum(1 for s in items if s["mode"] == k) for k in kinds}


@route("GET", f"{P}/subscribers/{{subscriber_id}}")
async def get_subscriber(emu: Emulator, call: Call) -> Result:
    return 200, emu.public(emu.find(emu.subscribers, call.params["page_id"], call.params["subscriber_id"]))


@route("POST", f"{P}/subscribers")
async def create_subscriber(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    emu.page(pid)
    data = _wrapped(call, "subscriber")
    email, endpoint, phone = data.get("email"), data.get("endpoint"), data.get("phone_number")
    if phone:
        if not data.get("phone_country") or email or endpoint:
            raise Problem(422, "An SMS subscriber needs phone_country and phone_number only")
        mode, address = "sms", str(phone)
    elif endpoint:
        if not email:
            raise Problem(422, "Email can't be blank for a webhook subscriber")
        mode, address = "webhook", str(endpoint)
    elif email:
        mode, address = "email", str(email)
    else:
        raise Problem(422, "Email, endpoint or phone_number is required")
    if mode != "sms" and ("@" not in str(email) or " " in str(email)):
        raise Problem(422, "Email is invalid")
    if "component_ids" in data:
        ids = data["component_ids"]
        if not isinstance(ids, list) or not ids or any(c not in emu.components[pid] for c in ids):
            raise Problem(422, "Components must be a non-empty list of components of this page")
    for sub in emu.subscribers[pid].values():
        if sub["_state"] != "unsubscribed" and _primary(sub) == address and sub["mode"] == mode:
            raise Problem(422, f"{address} is already subscribed")
    quiet = data.get("skip_confirmation_notification") is True
    sub = emu.add_subscriber(pid, emu.new_id("sub"), mode, address, "active" if quiet else "unconfirmed",
                             data.get("component_ids"), now())
    if mode == "webhook":
        sub["email"] = email
    if mode == "sms":
        sub["phone_country"] = data["phone_country"]
    sub["skip_confirmation_notification"] = quiet
    if not quiet:
        emu.outbox.append({"kind": "subscription_confirmation", "page_id": pid, "subscriber_id": sub["id"]})
    return 201, emu.public(sub)


@route("DELETE", f"{P}/subscribers/{{subscriber_id}}")
async def delete_subscriber(emu: Emulator, call: Call) -> Result:
    pid = call.params["page_id"]
    sub = emu.find(emu.subscribers, pid, call.params["subscriber_id"])
    raw = call.query.get("skip_unsubscription_notification")
    if raw not in (None, "true", "false"):
        raise Problem(400, "skip_unsubscription_notification must be true or false")
    sub["_state"] = "unsubscribed"
    if raw != "true":
        emu.outbox.append({"kind": "unsubscribed", "page_id": pid, "subscriber_id": sub["id"]})
    return 200, emu.public(sub)


# -- organisation ---------------------------------------------------------------------------------
@route("GET", "/organizations/{organization_id}/users")
async def list_users(emu: Emulator, call: Call) -> Result:
    org = call.params["organization_id"]
    if org not in emu.organizations:
        raise Problem(404, NOT_FOUND)
    return _paged(call, emu.users[org])
