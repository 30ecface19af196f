"""The JSM Operations emulator's state: alerts with notes and logs, asynchronous requests, teams,
escalations and schedules. HTTP lives in `app.py`."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mcp_proxy.sandbox import alert_state
from mcp_proxy.sandbox.alert_state import AlertState, Turn, iso, now
from mcp_proxy.sandbox.jsm import seed

# The `action` a request status reports, per write.
ACTIONS = {"create": "Create", "acknowledge": "Acknowledge", "unacknowledge": "UnAcknowledge", "close": "Close",
           "snooze": "Snooze", "escalate": "EscalateToNext", "assign": "Assign"}
RESULT_CAP = 20000  # offset + size must stay below it


class Problem(Exception):
    """A JSM error answer: `{"errors": [{"title", "code"}]}` (401: `{"code", "message"}`)."""

    def __init__(self, status: int, title: str, code: str = "BAD_REQUEST", *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.code, self.headers = status, title, code, headers or {}


def parse_time(value: Any, field: str) -> datetime:
    parsed = alert_state.read_time(value)
    if parsed is None:
        raise Problem(422, f"{field} must be an ISO 8601 date-time", "INVALID_INPUT")
    return parsed


def invalid(title: str) -> Problem:
    return Problem(422, title, "INVALID_INPUT")


class Emulator(AlertState):
    def __init__(self, *, accounts: dict[str, str], bearer_tokens: set[str], cloud_id: str, site: str,
                 processing_polls: int, seed_data: bool) -> None:
        super().__init__(processing_polls=processing_polls)
        self.accounts = dict(accounts)  # email -> API token
        self.bearer_tokens = set(bearer_tokens)  # OAuth (3LO) access tokens: the hook for later
        self.cloud_id = cloud_id
        self.site = site
        self.absolute_links = False  # links.next as an absolute URL (the narrative) or relative (the examples)
        self.missing_scopes: set[str] = set()  # e.g. {"write"}: those calls get 401 "scope does not match"
        self.throttled: int | None = 0  # requests still to answer 429 (None: all)
        self.retry_after = 1.0
        self.throttle_only: str | None = None
        self.escalations: dict[str, list[dict[str, Any]]] = {}  # team id -> its escalations
        if seed_data:
            self.load_seed()

    def load_seed(self) -> None:
        self.load(seed.alerts(), seed.notes(), seed.logs(), seed.TEAMS, seed.SCHEDULES)
        self.escalations = copy.deepcopy(seed.ESCALATIONS)

    # -- toggles ------------------------------------------------------------------------
    def throttle(self, times: int | None = 1, retry_after: float = 1.0, only: str | None = None) -> None:
        """Answer 429 (with Retry-After) to the next `times` requests (None: all, until `throttle(0)`)."""
        self.throttled, self.retry_after, self.throttle_only = times, retry_after, only

    def take_throttle(self, path: str) -> bool:
        if self.throttled == 0 or (self.throttle_only and self.throttle_only not in path):
            return False
        if self.throttled is not None:
            self.throttled -= 1
        return True

    def add_alerts(self, count: int, prefix: str = "bulk") -> None:
        """Many open P5 alerts, for paging tests."""
        for i in range(count):
            self._create({"message": f"{prefix} alert {i}", "alias": f"{prefix}-{i}", "priority": "P5",
                          "tags": [prefix]}, seen_alias=False)

    # -- rows with cursors ------------------------------------------------------------------
    def _cursor_row(self, table: dict[str, list[dict[str, Any]]], aid: str, row: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        row["_cursor"] = self._seq
        table.setdefault(aid, []).append(row)
        return row

    def add_note(self, aid: str, text: str, owner: str, created: str | None = None) -> dict[str, Any]:
        at = created or iso(now())
        row = {"id": str(1704869443312000000 + self._seq + 1), "createdAt": at, "updatedAt": at, "note": text,
               "owner": owner}
        return self._cursor_row(self.notes, aid, row)

    def file_log(self, aid: str, row: dict[str, Any]) -> None:
        self._cursor_row(self.logs, aid, dict(row))

    def log_event(self, aid: str, text: str, owner: str = "System") -> None:
        self._cursor_row(self.logs, aid, {"logTime": iso(now()), "logType": "system", "log": text, "owner": owner})

    # -- alerts -------------------------------------------------------------------------------
    def alert(self, aid: str) -> dict[str, Any]:
        alert = self.alerts.get(aid)
        if alert is None:
            raise Problem(404, f"Alert with id [{aid}] does not exist", "NOT_FOUND")
        return alert

    def by_alias(self, alias: str) -> dict[str, Any]:
        found = sorted((a for a in self.alerts.values() if a.get("alias") == alias),
                       key=lambda a: (a["status"] != "closed", a["createdAt"]), reverse=True)
        if not found:
            raise Problem(404, f"Alert with alias [{alias}] does not exist", "NOT_FOUND")
        return found[0]

    def matches(self, alert: dict[str, Any], term: str) -> bool:
        if ":" not in term:
            return term.strip('"').strip("*").lower() in alert["message"].lower()
        field, _, value = term.partition(":")
        field, value = field.strip(), value.strip().strip('"')
        if field == "status":
            if value not in ("open", "acked", "resolved", "snoozed", "closed"):
                raise Problem(400, f"Invalid status value [{value}] in query", "BAD_REQUEST")
            if value == "open":  # open covers acknowledged and snoozed alerts that are not closed
                return alert["status"] != "closed"
            return alert["status"] == value
        if field in ("acknowledged", "snoozed", "seen"):
            return str(alert.get(field, False)).lower() == value.lower()
        if field in ("tag", "tags"):
            return value in alert["tags"]
        if field in ("tinyId", "priority", "alias"):
            return str(alert.get(field, "")) == value
        if field in ("message", "entity", "owner", "source"):
            return value.strip("*").lower() in str(alert.get(field, "")).lower()
        raise Problem(400, f"Unknown field [{field}] in query", "BAD_REQUEST")

    def submit(self, action: str, effect: Callable[[], dict[str, Any]]) -> str:
        """Accept an asynchronous write: its effect runs at once (unless requests never complete); its
        status shows after `processing_polls` polls (404 before)."""
        return self.accept(lambda: {"action": ACTIONS[action], "processedAt": iso(now()),
                                    "integrationId": seed.INTEGRATION_ID, **effect()})

    def request_status(self, rid: str) -> dict[str, Any]:
        data = self.poll(rid)
        if data is None:  # Observed: a request still queued is answered 404, like an unknown one.
            raise Problem(404, f"Request with id [{rid}] does not exist", "NOT_FOUND")
        return data

    def validate_create(self, body: dict[str, Any]) -> None:
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise invalid("message can not be empty")
        if len(message) > 130:
            raise invalid("message can not be longer than 130 characters")
        limits = (("alias", 512), ("description", 15000), ("entity", 512), ("source", 100), ("note", 25000))
        for field, limit in alert_state.overlong(body, limits):
            raise invalid(f"{field} must be a string of at most {limit} characters")
        if body.get("priority", "P3") not in alert_state.PRIORITIES:
            raise invalid("priority must be one of P1, P2, P3, P4, P5")
        props = body.get("extraProperties", {})
        if not isinstance(props, dict) or alert_state.text_size(props) > 8000:
            raise invalid("extraProperties can not be longer than 8000 characters")
        for field in ("responders", "visibleTo"):
            for r in body.get(field) or []:
                if not isinstance(r, dict) or not r.get("id") or not r.get("type"):
                    raise invalid(f"each of {field} needs an id and a type")

    def create(self, body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        self.validate_create(body)
        return lambda: self._create(body)

    def _create(self, body: dict[str, Any], seen_alias: bool = True) -> dict[str, Any]:
        alias = body.get("alias")
        if alias and seen_alias:
            same = [a for a in self.alerts.values() if a.get("alias") == alias and a["status"] != "closed"]
            if same:
                alert = same[0]
                alert["count"] += 1
                alert["lastOccuredAt"] = alert["updatedAt"] = iso(now())
                self.log_event(alert["id"], f"Alert count increased to {alert['count']}")
                return {"isSuccess": True, "status": "Alert deduplicated", "alertId": alert["id"], "alias": alias}
        aid = str(uuid.uuid4())
        created = iso(now())
        alert = {"id": aid, "tinyId": self.next_tiny_id(), "alias": alias or aid, "message": body["message"],
                 "status": "open", "acknowledged": False, "seen": False, "tags": list(body.get("tags", [])),
                 "extraProperties": dict(body.get("extraProperties", {})), "snoozed": False, "count": 1,
                 "lastOccuredAt": created, "createdAt": created, "updatedAt": created,
                 "source": body.get("source", "127.0.0.1"), "owner": "", "priority": body.get("priority", "P3"),
                 "responders": [{"type": r["type"], "id": r["id"]} for r in body.get("responders") or []],
                 "integrationType": "API", "integrationName": "Sandbox API",
                 "actions": list(body.get("actions", [])), "entity": body.get("entity", ""),
                 "_description": body.get("description", "")}
        self.alerts[aid] = alert
        self.log_event(aid, "Alert created via API")
        if body.get("note"):
            self.add_note(aid, body["note"], "System", created)
        return {"isSuccess": True, "status": "Created alert", "alertId": aid, "alias": alert["alias"]}

    def action(self, action: str, aid: str, body: dict[str, Any], actor: str) -> Callable[[], dict[str, Any]]:
        """Validate the body now (422); the effect, or its failure, shows in the request status."""
        end = None
        if action == "snooze":
            if not body.get("endTime"):
                raise invalid("endTime can not be empty")
            end = parse_time(body["endTime"], "endTime")
            if end <= now():
                raise invalid("endTime should be in the future")
        if action == "escalate" and not isinstance(body.get("escalationId"), str):
            raise invalid("escalationId can not be empty")
        if action == "assign" and not isinstance(body.get("accountId"), str):
            raise invalid("accountId can not be empty")

        def effect() -> dict[str, Any]:
            alert = self.alerts.get(aid)
            if alert is None:
                return {"isSuccess": False, "status": "Alert does not exist", "alertId": aid}
            result = {"isSuccess": True, "alertId": alert["id"], "alias": alert["alias"]}
            alert["updatedAt"] = iso(now())
            if action == "acknowledge":
                alert.update(acknowledged=True, seen=True, status="acked", ackTime=iso(now()))
                status = "Acknowledged alert"
            elif action == "unacknowledge":
                alert.update(acknowledged=False, status="open")
                status = "Unacknowledged alert"
            elif action == "close":
                alert.update(status="closed", closeTime=iso(now()))
                status = "Closed alert"
            elif action == "snooze":
                alert.update(snoozed=True, snoozedUntil=iso(end or now()), status="snoozed")
                status = "Snoozed alert"
            elif action == "escalate":
                if not any(e["id"] == body["escalationId"] for rows in self.escalations.values() for e in rows):
                    return {**result, "isSuccess": False, "status": "Escalation does not exist"}
                status = "Escalated alert to next"
            else:  # assign
                if body["accountId"] not in seed.USERS:
                    return {**result, "isSuccess": False, "status": "User does not exist"}
                alert["owner"] = seed.USERS[body["accountId"]]
                status = "Assigned alert"
            self.log_event(alert["id"], f"{status} by {actor}", actor)
            return {**result, "status": status}

        return effect

    # -- schedules ------------------------------------------------------------------------------
    def schedule(self, sid: str) -> dict[str, Any]:
        for schedule in self.schedules:
            if schedule["id"] == sid:
                return schedule
        raise Problem(404, f"Schedule with id [{sid}] does not exist", "NOT_FOUND")

    def on_call_at(self, schedule: dict[str, Any], moment: datetime) -> list[str]:
        out = []
        for rotation in schedule.get("rotations") or []:
            people = [p["id"] for p in rotation["participants"] if p.get("type") == "user"]
            passed = alert_state.turns_passed(rotation, moment)
            if people and passed is not None:
                out.append(people[passed % len(people)])
        return out

    def next_on_call(self, schedule: dict[str, Any], moment: datetime) -> list[str]:
        out = []
        for rotation in schedule.get("rotations") or []:
            people = [p["id"] for p in rotation["participants"] if p.get("type") == "user"]
            passed = alert_state.turns_passed(rotation, moment)
            if people:
                out.append(people[(0 if passed is None else passed + 1) % len(people)])
        return out

    def timeline(self, schedule: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
        def period(turn: Turn) -> dict[str, Any]:
            who = {"id": turn.person["id"], "type": "user"}
            return {"type": "historical" if turn.end <= now() else "base", "responder": who,
                    "flattenedResponders": [who]}

        return alert_state.schedule_timeline(schedule, start, end, period, deleted=False)
