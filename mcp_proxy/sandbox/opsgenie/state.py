"""The Opsgenie emulator's state: alerts and their notes/logs, asynchronous requests,
and the directory (users, teams, escalations, schedules). HTTP lives in `app.py`."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mcp_proxy.sandbox import alert_state
from mcp_proxy.sandbox.alert_state import AlertState, Turn, iso, now
from mcp_proxy.sandbox.opsgenie import seed

ALERT_ACTIONS = {"acknowledge": "Acknowledge", "unacknowledge": "UnAcknowledge", "close": "Close",
                 "notes": "AddNote", "snooze": "Snooze", "escalate": "EscalateToNext", "assign": "Assign"}
TIMELINES = ("base", "forwarding", "override")


class Problem(Exception):
    """An Opsgenie error answer."""

    def __init__(self, status: int, message: str, *, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers, self.code = status, message, errors, headers or {}, code


def parse_time(value: str, field: str) -> datetime:
    parsed = alert_state.read_time(value)
    if parsed is None:
        raise unprocessable({field: f"{field} must be an ISO 8601 date-time"})
    return parsed


def unprocessable(errors: dict[str, str]) -> Problem:
    return Problem(422, "Request body is not processable. Please check the errors.", errors=errors)


class Emulator(AlertState):
    def __init__(self, *, integration_keys: Iterable[str], config_keys: Iterable[str], rate_limit: bool,
                 processing_polls: int, seed_data: bool) -> None:
        super().__init__(processing_polls=processing_polls)
        self.integration_keys = set(integration_keys)
        self.config_keys = set(config_keys)
        self.rate_limit = rate_limit
        self.rate_limit_remaining: int | None = None  # None: every request is throttled while rate_limit is on
        self.rate_limit_period = 1.0
        self.rate_limit_only: str | None = None
        self.echo_key_in_errors = False  # misbehave like some gateways: put the presented key in a 401 message
        self.users: list[dict[str, Any]] = []
        self.escalations: list[dict[str, Any]] = []
        if seed_data:
            self.load_seed()

    # -- setup and toggles -------------------------------------------------
    def load_seed(self) -> None:
        self.load(seed.alerts(), seed.notes(), seed.logs(), seed.TEAMS, seed.SCHEDULES)
        self.users = copy.deepcopy(seed.USERS)
        self.escalations = copy.deepcopy(seed.ESCALATIONS)

    def throttle(self, times: int | None = None, period: float = 1.0, only: str | None = None) -> None:
        """Answer 429 to the next `times` requests (None: to all, until `rate_limit` is set False),
        or only to those whose path contains `only`."""
        self.rate_limit, self.rate_limit_remaining, self.rate_limit_period = True, times, period
        self.rate_limit_only = only

    def take_throttle(self, path: str = "") -> bool:
        if not self.rate_limit or (self.rate_limit_only and self.rate_limit_only not in path):
            return False
        if self.rate_limit_remaining is None:
            return True
        if self.rate_limit_remaining <= 0:
            self.rate_limit = False
            return False
        self.rate_limit_remaining -= 1
        return True

    def key_kind(self, key: str) -> str | None:
        if key in self.integration_keys:
            return "integration"
        if key in self.config_keys:
            return "config"
        return None

    def _append(self, table: dict[str, list[dict[str, Any]]], aid: str, row: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        millis = int(parse_time(row["createdAt"], "createdAt").timestamp() * 1000)
        table.setdefault(aid, []).append({**row, "offset": f"{millis}_{millis * 1000000 + self._seq}"})
        return table[aid][-1]

    def add_note(self, aid: str, text: str, owner: str, created: str | None = None) -> dict[str, Any]:
        return self._append(self.notes, aid, {"note": text, "owner": owner, "createdAt": created or iso(now())})

    def file_log(self, aid: str, row: dict[str, Any]) -> None:
        self._append(self.logs, aid, row)

    # -- alerts --------------------------------------------------------------
    def find_alert(self, identifier: str, kind: str = "id") -> dict[str, Any] | None:
        if kind not in ("id", "alias", "tiny"):
            raise unprocessable({"identifierType": "identifierType must be one of id, alias, tiny"})
        if kind == "id":
            return self.alerts.get(identifier)
        key = "alias" if kind == "alias" else "tinyId"
        found = [a for a in self.alerts.values() if a.get(key) == identifier]
        found.sort(key=lambda a: (a["status"] == "open", a["createdAt"]), reverse=True)
        return found[0] if found else None

    def submit(self, action: str, effect: Callable[[], dict[str, Any]]) -> str:
        """Accept an asynchronous request; its effect runs at once (unless it never completes), its
        status shows after `processing_polls` polls."""
        return self.accept(lambda: {"success": True, "action": action, "processedAt": iso(now()),
                                    "integrationId": seed.INTEGRATION["id"], **effect()})

    def request_status(self, rid: str) -> dict[str, Any]:
        if rid not in self.requests:
            raise Problem(404, f"Request with id [{rid}] does not exist")
        data = self.poll(rid)
        if data is None:
            raise Problem(404, "Request not processed yet. Please try again later.",
                          headers={"X-Opsgenie-Errortype": "RequestNotProcessed"})
        return data

    def matches(self, alert: dict[str, Any], term: str) -> bool:
        if ":" not in term and "=" not in term:
            return term.strip('"').lower() in alert["message"].lower()
        field, _, value = term.replace("=", ":", 1).partition(":")
        field, value = field.strip(), value.strip().strip('"')
        if field == "status":
            if value not in ("open", "closed"):
                raise unprocessable({"query": f"Invalid status value [{value}]: use open or closed"})
            return alert["status"] == value
        if field in ("acknowledged", "snoozed", "isSeen"):
            return str(alert.get(field, False)).lower() == value.lower()
        if field in ("tag", "tags"):
            return value in alert["tags"]
        if field in ("message", "description", "entity", "owner", "alias", "priority", "source", "tinyId"):
            return value.lower() in str(alert.get(field, "")).lower()
        raise unprocessable({"query": f"Unknown field [{field}] in query"})

    def log_event(self, aid: str, text: str, kind: str, owner: str) -> None:
        self._append(self.logs, aid, {"log": text, "type": kind, "owner": owner or "System", "createdAt": iso(now())})

    def create_alert(self, body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        errors: dict[str, str] = {}
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            errors["message"] = "Message can not be empty."
        elif len(message) > 130:
            errors["message"] = "Message can not be longer than 130 characters."
        limits = (("alias", 512), ("description", 15000), ("entity", 512), ("source", 100), ("user", 100),
                  ("note", 25000))
        for field, limit in alert_state.overlong(body, limits):
            errors[field] = f"{field} must be a string of at most {limit} characters."
        tags = body.get("tags", [])
        if not isinstance(tags, list) or len(tags) > 20 or any(not isinstance(t, str) or len(t) > 50 for t in tags):
            errors["tags"] = "Tags can have at most 20 entries of at most 50 characters."
        if not isinstance(body.get("actions", []), list) or len(body.get("actions", [])) > 10:
            errors["actions"] = "Actions can have at most 10 entries."
        details = body.get("details", {})
        if not isinstance(details, dict) or alert_state.text_size(details) > 8000:
            errors["details"] = "Details can not be longer than 8000 characters in total."
        if body.get("priority", "P3") not in alert_state.PRIORITIES:
            errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]."
        for field in ("responders", "visibleTo"):
            for i, r in enumerate(body.get(field) or []):
                if not isinstance(r, dict) or r.get("type") not in ("team", "user", "escalation", "schedule") or \
                        not any(r.get(k) for k in ("id", "name", "username")):
                    errors[f"{field}[{i}]"] = "Responder needs a valid type and an id, name or username."
        if errors:
            raise unprocessable(errors)
        return lambda: self._create(body)

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        alias = body.get("alias")
        actor = body.get("user") or "System"
        existing = self.find_alert(alias, "alias") if alias else None
        if existing and existing["status"] == "open":
            existing["count"] += 1
            existing["lastOccurredAt"] = existing["updatedAt"] = iso(now())
            self.log_event(existing["id"], f"Alert count increased to {existing['count']}", "system", "System")
            return {"isSuccess": True, "status": "Alert deduplicated", "alertId": existing["id"], "alias": alias}
        aid = f"{uuid.uuid4()}-{int(now().timestamp() * 1000)}"
        created = iso(now())
        alert = {"id": aid, "tinyId": self.next_tiny_id(), "alias": alias or aid, "message": body["message"],
                 "status": "open", "acknowledged": False, "isSeen": False, "tags": list(body.get("tags", [])),
                 "snoozed": False, "count": 1, "lastOccurredAt": created, "createdAt": created, "updatedAt": created,
                 "source": body.get("source", "127.0.0.1"), "owner": "", "priority": body.get("priority", "P3"),
                 "responders": [{"type": r["type"], "id": r.get("id") or self._responder_id(r)}
                                for r in body.get("responders") or []],
                 "integration": dict(seed.INTEGRATION), "report": {}, "actions": list(body.get("actions", [])),
                 "entity": body.get("entity", ""), "description": body.get("description", ""),
                 "details": dict(body.get("details", {}))}
        self.alerts[aid] = alert
        self.log_event(aid, f"Alert created by {actor}", "system", actor)
        if body.get("note"):
            self.add_note(aid, body["note"], actor, created)
        return {"isSuccess": True, "status": "Created alert", "alertId": aid, "alias": alert["alias"]}

    def _responder_id(self, r: dict[str, Any]) -> str:
        # As Opsgenie: a user is found by `username`, the others by `name`; another field is not looked at.
        field = "username" if r.get("type") == "user" else "name"
        name = r.get(field) or ""
        pools = {"team": self.teams, "user": self.users, "escalation": self.escalations, "schedule": self.schedules}
        for item in pools.get(r.get("type", ""), []):
            if name and name == item.get(field):
                return item["id"]
        return name

    def alert_action(self, action: str, identifier: str, kind: str,
                     body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        """Validate synchronously (422); the effect, or its failure, comes with the request status."""
        errors: dict[str, str] = {}
        for field, limit in alert_state.overlong(body, (("user", 100), ("source", 100), ("note", 25000))):
            errors[field] = f"{field} must be a string of at most {limit} characters."
        if action == "notes" and not (isinstance(body.get("note"), str) and body["note"].strip()):
            errors["note"] = "Note can not be empty."
        end = None
        if action == "snooze":
            if not body.get("endTime"):
                errors["endTime"] = "endTime can not be empty."
            else:
                end = parse_time(str(body["endTime"]), "endTime")
                if end <= now():
                    errors["endTime"] = "endTime should be in the future."
        if action == "escalate" and not isinstance(body.get("escalation"), dict):
            errors["escalation"] = "Escalation can not be empty."
        if action == "assign" and not isinstance(body.get("owner"), dict):
            errors["owner"] = "Owner can not be empty."
        if errors:
            raise unprocessable(errors)
        self.find_alert(identifier, kind)  # 422 on a bad identifierType

        def effect() -> dict[str, Any]:
            alert = self.find_alert(identifier, kind)
            if alert is None:
                return {"isSuccess": False, "status": "Alert does not exist", "alertId": "", "alias": ""}
            actor = body.get("user") or "System"
            result = {"isSuccess": True, "alertId": alert["id"], "alias": alert["alias"]}
            alert["updatedAt"] = iso(now())
            if action == "acknowledge":
                alert.update(acknowledged=True, isSeen=True, owner=body.get("user", alert["owner"]))
                alert["report"] = {**alert.get("report", {}), "acknowledgedBy": actor, "ackTime": 60000}
                status = "Acknowledged alert"
            elif action == "unacknowledge":
                alert["acknowledged"] = False
                status = "Unacknowledged alert"
            elif action == "close":
                alert.update(status="closed")
                alert["report"] = {**alert.get("report", {}), "closedBy": actor, "closeTime": 120000}
                status = "Closed alert"
            elif action == "snooze":
                alert.update(snoozed=True, snoozedUntil=iso(end))  # type: ignore[arg-type]
                status = "Snoozed alert"
            elif action == "escalate":
                target = body["escalation"]
                if not any(target.get("id") == e["id"] or target.get("name") == e["name"] for e in self.escalations):
                    return {**result, "isSuccess": False, "status": "Escalation does not exist"}
                status = "Escalated alert to next"
            elif action == "assign":
                owner = body["owner"]
                user = next((u for u in self.users if owner.get("id") == u["id"]
                             or owner.get("username") == u["username"]), None)
                if user is None:
                    return {**result, "isSuccess": False, "status": "User does not exist"}
                alert["owner"] = user["username"]
                status = "Assigned alert"
            else:
                status = "Added note"
            if body.get("note"):
                self.add_note(alert["id"], body["note"], actor)
            self.log_event(alert["id"], f"{status} by {actor}", "system", actor)
            return {**result, "status": status}

        return effect

    # -- directory -----------------------------------------------------------
    def find_named(self, items: list[dict[str, Any]], identifier: str, kind: str, what: str) -> dict[str, Any]:
        if kind not in ("id", "name"):
            raise unprocessable({"identifierType": "identifierType must be one of id, name"})
        for item in items:
            if item.get(kind) == identifier:
                return item
        raise Problem(404, f"No {what} exists with {kind} [{identifier}]")

    def find_user(self, identifier: str) -> dict[str, Any]:
        for user in self.users:
            if identifier in (user["id"], user["username"]):
                return user
        raise Problem(404, f"No user exists with identifier [{identifier}]")

    def on_call_at(self, schedule: dict[str, Any], moment: datetime) -> list[tuple[str, str]]:
        """(id, username) on call at `moment` in each rotation."""
        out = []
        for rotation in schedule.get("rotations") or []:
            people = [(p["id"], p["username"]) for p in rotation["participants"]]
            passed = alert_state.turns_passed(rotation, moment)
            if people and passed is not None:
                out.append(people[passed % len(people)])
        return out

    def timeline(self, schedule: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
        def period(turn: Turn) -> dict[str, Any]:
            return {"type": "default",
                    "recipient": {"id": turn.person["id"], "type": "user", "name": turn.person["username"]}}

        return alert_state.schedule_timeline(schedule, start, end, period)
