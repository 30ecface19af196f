"""State of the PagerDuty emulator: the account's objects, incident changes with their log
entries, on-call computation, and the request log. No HTTP here (see app.py)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_proxy.sandbox.pagerduty import seed

WEB = "https://acme.pagerduty.com"
# The codes PagerDuty documents (developer docs, "Errors").
ALREADY_RESOLVED, ALREADY_ACKNOWLEDGED, INVALID_INPUT, AUTH_FAILED = 1001, 1002, 2001, 2006
ACCESS_DENIED, RATE_LIMITED, NOT_FOUND, MISSING_FROM = 2010, 2020, 2100, 2016
_PATHS = {"user": "users", "team": "teams", "schedule": "schedules", "escalation_policy": "escalation_policies",
          "service": "services", "priority": "priorities", "incident": "incidents"}


class Problem(Exception):
    """An error answer: HTTP status plus PagerDuty's error body."""

    def __init__(self, status: int, message: str, code: int, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.errors = status, message, code, errors

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            err["errors"] = self.errors
        return {"error": err}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, "Invalid Input Provided", INVALID_INPUT, [f"{name} is not a valid date-time"]) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Emulator:
    def __init__(self, api_keys: Mapping[str, str | None], seed_data: bool = True, rate_limit: bool = False) -> None:
        self.lock = threading.Lock()
        self.started = now()
        self.api_keys = dict(api_keys)
        self.log: list[dict[str, Any]] = []
        self.rate_limit = rate_limit
        self.throttled = 0  # answer this many more requests with 429
        self.ratelimit_reset = 0
        self._ids = itertools.count(1)
        self.users: dict[str, dict[str, Any]] = {}
        self.teams: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.priorities: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.alerts: dict[str, list[dict[str, Any]]] = {}
        self.log_entries: dict[str, list[dict[str, Any]]] = {}
        self.overrides: list[dict[str, Any]] = []
        if seed_data:
            self._seed()
        for email in self.api_keys.values():  # one user per user-level sandbox key
            if email and self.user_by_email(email) is None:
                self.add_user(f"PU{len(self.users) + 1:05d}", email.split("@")[0].title(), email, "user", "", [])

    # -- references and objects ---------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):0{14 - len(prefix)}d}"

    def ref(self, kind: str, oid: str) -> dict[str, Any]:
        table = {"user": self.users, "team": self.teams, "schedule": self.schedules, "service": self.services,
                 "escalation_policy": self.policies, "priority": self.priorities}[kind]
        obj = table.get(oid, {})
        summary = obj.get("name") or obj.get("summary") or oid
        return {"id": oid, "type": f"{kind}_reference", "summary": summary, "self": f"/{_PATHS[kind]}/{oid}",
                "html_url": f"{WEB}/{_PATHS[kind]}/{oid}"}

    def _base(self, kind: str, oid: str, name: str) -> dict[str, Any]:
        return {"id": oid, "type": kind, "summary": name, "name": name, "self": f"/{_PATHS[kind]}/{oid}",
                "html_url": f"{WEB}/{_PATHS[kind]}/{oid}"}

    def add_user(self, oid: str, name: str, email: str, role: str, title: str, teams: list[str]) -> None:
        self.users[oid] = {**self._base("user", oid, name), "email": email, "role": role, "job_title": title,
                           "time_zone": "Europe/London", "color": "purple", "description": None,
                           "invitation_sent": False, "teams": [self.ref("team", t) for t in teams],
                           "contact_methods": [], "notification_rules": []}

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["email"].lower() == email.strip().lower()), None)

    def _seed(self) -> None:
        start = self.started
        for tid, name, desc in seed.TEAMS:
            self.teams[tid] = {**self._base("team", tid, name), "description": desc, "default_role": "manager"}
        for u in seed.USERS:
            self.add_user(*u)
        for pid, name, desc in seed.PRIORITIES:
            self.priorities[pid] = {**self._base("priority", pid, name), "description": desc}
        for sid, name, tz, rotation, team in seed.SCHEDULES:
            self.schedules[sid] = {**self._base("schedule", sid, name), "time_zone": tz, "description": f"{name} "
                                   "on-call rotation", "rotation": rotation, "users": [self.ref("user", u) for u in
                                   rotation], "teams": [self.ref("team", team)], "escalation_policies": []}
        for pid, name, rules, team in seed.POLICIES:
            self.policies[pid] = {**self._base("escalation_policy", pid, name), "description": f"{name} policy",
                                  "num_loops": 1, "on_call_handoff_notifications": "if_has_services",
                                  "teams": [self.ref("team", team)], "services": [], "escalation_rules": [
                {"id": f"PR{pid[-3:]}{i}", "escalation_delay_in_minutes": delay,
                 "targets": [self.ref(kind, tid) | {"type": f"{kind}_reference"} for kind, tid in targets]}
                for i, (delay, targets) in enumerate(rules, 1)]}
            for _, targets in rules:
                for kind, tid in targets:
                    if kind == "schedule":
                        self.schedules[tid]["escalation_policies"].append(self.ref("escalation_policy", pid))
        for sid, name, desc, policy, team, status in seed.SERVICES:
            self.services[sid] = {**self._base("service", sid, name), "description": desc, "status": status,
                                  "auto_resolve_timeout": 14400, "acknowledgement_timeout": 1800,
                                  "created_at": "2024-03-01T10:00:00Z", "escalation_policy":
                                  self.ref("escalation_policy", policy), "teams": [self.ref("team", team)],
                                  "integrations": [], "alert_creation": "create_alerts_and_incidents"}
            self.policies[policy]["services"].append(self.ref("service", sid))
        for oid, sched, user, begin, end in seed.overrides(start):
            self.overrides.append({"id": oid, "schedule": sched, "start": iso(begin), "end": iso(end),
                                   "user": self.ref("user", user)})
        for spec in sorted(seed.incidents(start), key=lambda s: s["number"]):
            self._seed_incident(spec)

    def _seed_incident(self, s: dict[str, Any]) -> None:
        created = s["created"]
        inc = self._new_incident(s["id"], s["number"], s["title"], s["service"], s["urgency"], s["priority"],
                                 created, None, None, [s["assignee"]])
        self.log_entries[inc["id"]] = []
        self._log(inc, "trigger_log_entry", None, created, channel="api")
        self._log(inc, "assign_log_entry", None, created, assignees=[s["assignee"]])
        for i, (user, content) in enumerate(s["notes"]):
            at = created + timedelta(minutes=10 * (i + 1))
            self.notes[inc["id"]].append({"id": f"PN{s['number']}{i}", "user": self.ref("user", user),
                                          "content": content, "created_at": iso(at), "channel": {"summary": "The API"}})
            self._log(inc, "annotate_log_entry", user, at)
        for i, (summary, severity, key, status) in enumerate(s["alerts"]):
            self.alerts[inc["id"]].append(self._alert(inc, f"PA{s['number']}{i}", summary, severity, key, status,
                                                      created))
        if s.get("acker"):
            self._set_status(inc, "acknowledged", s["acker"], created + timedelta(minutes=5))
        if s.get("resolver"):
            self._set_status(inc, "resolved", s["resolver"], created + timedelta(hours=1), "Fixed.")

    def _alert(self, inc: dict[str, Any], aid: str, summary: str, severity: str, key: str, status: str,
               at: datetime) -> dict[str, Any]:
        return {"id": aid, "type": "alert", "summary": summary, "self": f"/alerts/{aid}",
                "html_url": f"{WEB}/alerts/{aid}", "created_at": iso(at), "status": status, "alert_key": key,
                "suppressed": False, "severity": severity, "service": self.ref("service", inc["service"]["id"]),
                "incident": {"id": inc["id"], "type": "incident_reference", "summary": inc["summary"],
                             "self": f"/incidents/{inc['id']}", "html_url": inc["html_url"]},
                "body": {"type": "alert_body", "contexts": [], "details": {"summary": summary, "source": key}}}

    def _new_incident(self, iid: str, number: int, title: str, service: str, urgency: str, priority: str | None,
                      created: datetime, incident_key: str | None, policy: str | None,
                      assignees: list[str] | None) -> dict[str, Any]:
        svc = self.services[service]
        policy = policy or svc["escalation_policy"]["id"]
        inc = {"id": iid, "type": "incident", "summary": f"[#{number}] {title}", "self": f"/incidents/{iid}",
               "html_url": f"{WEB}/incidents/{iid}", "incident_number": number, "title": title,
               "created_at": iso(created), "updated_at": iso(created), "status": "triggered",
               "incident_key": incident_key or f"{iid.lower()}", "service": self.ref("service", service),
               "assignments": [], "assigned_via": "escalation_policy", "last_status_change_at": iso(created),
               "first_trigger_log_entry": {"id": f"PL{iid[-4:]}T", "type": "trigger_log_entry_reference",
                                           "self": f"/log_entries/PL{iid[-4:]}T"},
               "alert_counts": {"all": 0, "triggered": 0, "resolved": 0}, "is_mergeable": True,
               "escalation_policy": self.ref("escalation_policy", policy), "teams": list(svc["teams"]),
               "pending_actions": [], "acknowledgements": [], "urgency": urgency, "_level": 1,
               "priority": ({**self.priorities[priority], "type": "priority"} if priority else None)}
        if inc["priority"] is None:
            del inc["priority"]
        targets = assignees if assignees else self.level_users(policy, 1, created)
        inc["assignments"] = [{"at": iso(created), "assignee": self.ref("user", u)} for u in targets]
        if assignees:
            inc["assigned_via"] = "direct_assignment"
        self.incidents[iid] = inc
        self.notes[iid], self.alerts[iid], self.log_entries[iid] = [], [], []
        return inc

    # -- on-call ---------------------------------------------------------------
    def on_call(self, schedule_id: str, at: datetime) -> str:
        for o in self.overrides:
            if o["schedule"] == schedule_id and parse_time(o["start"], "") <= at < parse_time(o["end"], ""):
                return o["user"]["id"]
        rotation = self.schedules[schedule_id]["rotation"]
        return rotation[int((at - seed.ANCHOR) // seed.WEEK) % len(rotation)]

    def level_users(self, policy_id: str, level: int, at: datetime) -> list[str]:
        rules = self.policies[policy_id]["escalation_rules"]
        if not 1 <= level <= len(rules):
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT,
                          [f"Escalation level must be between 1 and {len(rules)} for this escalation policy."])
        users: list[str] = []
        for t in rules[level - 1]["targets"]:
            uid = self.on_call(t["id"], at) if t["type"] == "schedule_reference" else t["id"]
            if uid not in users:
                users.append(uid)
        return users

    # -- incident changes ----------------------------------------------------------
    def _log(self, inc: dict[str, Any], kind: str, actor: str | None, at: datetime, *, note: str | None = None,
             assignees: list[str] | None = None, channel: str = "api") -> None:
        lid = f"PL{inc['id'][-4:]}T" if kind == "trigger_log_entry" else self.new_id("PL")
        words = {"trigger_log_entry": "Triggered through the API", "acknowledge_log_entry": "Acknowledged",
                 "resolve_log_entry": "Resolved", "assign_log_entry": "Assigned", "escalate_log_entry": "Escalated",
                 "annotate_log_entry": "Note added"}[kind]
        who = self.users[actor]["name"] if actor else "the escalation policy"
        entry: dict[str, Any] = {
            "id": lid, "type": kind, "summary": f"{words} by {who}", "self": f"/log_entries/{lid}",
            "html_url": None, "created_at": iso(at), "channel": {"type": channel},
            "service": self.ref("service", inc["service"]["id"]),
            "incident": {"id": inc["id"], "type": "incident_reference", "summary": inc["summary"],
                         "self": inc["self"], "html_url": inc["html_url"]},
            "teams": list(inc["teams"]), "contexts": []}
        if kind in ("assign_log_entry", "escalate_log_entry"):
            entry["summary"] = f"{words} to {', '.join(self.users[u]['name'] for u in assignees or [])} by {who}"
            entry["assignees"] = [self.ref("user", u) for u in assignees or []]
        if actor:
            entry["agent"] = self.ref("user", actor)
        if note:
            entry["note"] = note
        self.log_entries[inc["id"]].insert(0, entry)  # newest first, as PagerDuty lists them

    def _set_status(self, inc: dict[str, Any], status: str, actor: str, at: datetime,
                    resolution: str | None = None) -> None:
        inc["status"], inc["updated_at"], inc["last_status_change_at"] = status, iso(at), iso(at)
        inc["last_status_change_by"] = self.ref("user", actor)
        if status == "acknowledged":
            inc["acknowledgements"].append({"at": iso(at), "acknowledger": self.ref("user", actor)})
            self._log(inc, "acknowledge_log_entry", actor, at)
        elif status == "resolved":
            inc["resolved_at"], inc["assignments"], inc["acknowledgements"] = iso(at), [], []
            for alert in self.alerts.get(inc["id"], []):
                alert["status"] = "resolved"
            self._log(inc, "resolve_log_entry", actor, at, note=resolution)
        self._count_alerts(inc)

    def _count_alerts(self, inc: dict[str, Any]) -> None:
        alerts = self.alerts.get(inc["id"], [])
        inc["alert_counts"] = {"all": len(alerts), "triggered": sum(a["status"] == "triggered" for a in alerts),
                               "resolved": sum(a["status"] == "resolved" for a in alerts)}

    def find_incident(self, key: str) -> dict[str, Any]:
        inc = self.incidents.get(key) or next((i for i in self.incidents.values()
                                               if str(i["incident_number"]) == key), None)
        if inc is None:
            raise Problem(404, "Not Found", NOT_FOUND, [f"Incident {key} not found"])
        return inc

    def update_incident(self, key: str, change: dict[str, Any], actor: str) -> dict[str, Any]:
        inc = self.find_incident(key)
        at = max(now(), parse_time(inc["updated_at"], ""))
        status = change.get("status")
        if inc["status"] == "resolved" and status != "triggered":
            raise Problem(400, "Incident Already Resolved", ALREADY_RESOLVED)
        if status == "acknowledged" and inc["status"] == "acknowledged":
            raise Problem(400, "Incident Already Acknowledged", ALREADY_ACKNOWLEDGED)
        if status in ("acknowledged", "resolved"):
            self._set_status(inc, status, actor, at, change.get("resolution"))
        elif status == "triggered":
            inc.update(status="triggered", updated_at=iso(at), last_status_change_at=iso(at))
            inc.pop("resolved_at", None)
        if "escalation_level" in change:
            level = change["escalation_level"]
            users = self.level_users(inc["escalation_policy"]["id"], level, at)
            inc["_level"] = level
            self._assign(inc, users, at)
            self._log(inc, "escalate_log_entry", actor, at, assignees=users)
        if "escalation_policy" in change:
            pid = change["escalation_policy"].get("id")
            if pid not in self.policies:
                raise Problem(404, "Not Found", NOT_FOUND, [f"Escalation policy {pid} not found"])
            inc["escalation_policy"] = self.ref("escalation_policy", pid)
            users = self.level_users(pid, 1, at)
            inc["assigned_via"], inc["_level"] = "escalation_policy", 1
            self._assign(inc, users, at)
            self._log(inc, "assign_log_entry", actor, at, assignees=users)
        if "assignments" in change:
            users = [a["assignee"]["id"] for a in change["assignments"]]
            missing = [u for u in users if u not in self.users]
            if missing or not users:
                raise Problem(400, "Invalid Input Provided", INVALID_INPUT, [f"User {u} not found" for u in missing]
                              or ["assignments must not be empty"])
            inc["assigned_via"] = "direct_assignment"
            self._assign(inc, users, at)
            self._log(inc, "assign_log_entry", actor, at, assignees=users)
        for name in ("title", "urgency"):
            if change.get(name):
                inc[name] = change[name]
        inc["updated_at"] = iso(at)
        return inc

    def _assign(self, inc: dict[str, Any], users: list[str], at: datetime) -> None:
        inc["assignments"] = [{"at": iso(at), "assignee": self.ref("user", u)} for u in users]
        if inc["status"] == "acknowledged":
            inc["status"], inc["acknowledgements"] = "triggered", []

    def add_note(self, key: str, content: str, actor: str) -> dict[str, Any]:
        inc = self.find_incident(key)
        at = now()
        note = {"id": self.new_id("PN"), "user": self.ref("user", actor), "content": content,
                "created_at": iso(at), "channel": {"summary": "The API"}}
        self.notes[inc["id"]].append(note)
        self._log(inc, "annotate_log_entry", actor, at)
        return note

    def create_incident(self, data: dict[str, Any], actor: str) -> dict[str, Any]:
        service = (data.get("service") or {}).get("id")
        if service not in self.services:
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["Service not found"])
        key = data.get("incident_key")
        if key and any(i["incident_key"] == key and i["service"]["id"] == service and i["status"] != "resolved"
                       for i in self.incidents.values()):
            raise Problem(400, "Open incident with matching dedup key already exists on this service",
                          INVALID_INPUT, [f"incident_key {key} is in use by an open incident"])
        priority = (data.get("priority") or {}).get("id")
        if priority and priority not in self.priorities:
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["Priority not found"])
        policy = (data.get("escalation_policy") or {}).get("id")
        if policy and policy not in self.policies:
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["Escalation policy not found"])
        assignees = [a["assignee"]["id"] for a in data.get("assignments") or []]
        if any(u not in self.users for u in assignees):
            raise Problem(400, "Invalid Input Provided", INVALID_INPUT, ["Assignee not found"])
        number = max((i["incident_number"] for i in self.incidents.values()), default=1000) + 1
        urgency = data.get("urgency") or "high"
        at = now()
        inc = self._new_incident(self.new_id("Q"), number, data["title"], service, urgency, priority, at, key,
                                 policy, assignees or None)
        self._log(inc, "trigger_log_entry", actor, at, channel="api")
        self._log(inc, "assign_log_entry", None, at, assignees=[a["assignee"]["id"] for a in inc["assignments"]])
        if data.get("body", {}).get("details"):
            inc["body"] = {"type": "incident_body", "details": data["body"]["details"]}
        return inc
