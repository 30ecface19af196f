"""Seed data for the Opsgenie emulator: stable ids (see the package docstring)."""

from __future__ import annotations

from typing import Any

# Users
ALICE_ID = "4e1b2c3d-0a11-4a7e-9c51-a11ce0000001"
BOB_ID = "4e1b2c3d-0a11-4a7e-9c51-b0b000000002"
CAROL_ID = "4e1b2c3d-0a11-4a7e-9c51-ca1010000003"
DAVE_ID = "4e1b2c3d-0a11-4a7e-9c51-da7e00000004"
ERIN_ID = "4e1b2c3d-0a11-4a7e-9c51-e11400000005"
# Teams, escalation, schedules
SRE_TEAM_ID = "7a3f5e2d-1b2c-4d5e-8f90-5e7e00000001"
DB_TEAM_ID = "7a3f5e2d-1b2c-4d5e-8f90-db0000000002"
ESCALATION_ID = "9c8b7a6d-5e4f-4a3b-9c2d-e5ca1a7e0001"
SCHEDULE_ID = "d2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000001"
DB_SCHEDULE_ID = "d2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000002"
ROTATION_ID = "f0e1d2c3-b4a5-4968-8776-0a7a71000001"
ROTATION_START = "2025-01-06T09:00:00Z"  # a Monday; weekly hand-over alice → bob → carol
# Alerts
ALERT_DB_ID = "8418d193-2dab-4490-b331-8c02cdd196b7-1763800000000"
ALERT_DISK_ID = "2a6b2f49-1c5e-4f0b-8a3e-6c1d4e5f7a8b-1763803600000"
ALERT_CERT_ID = "c3f4a1b2-9d8e-4c7b-a6f5-e4d3c2b1a090-1763807200000"
ALERT_CLOSED_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9-1763700000000"
ALERT_ACKED_ID = "5d6e7f80-9a1b-4c2d-8e3f-4051627384a5-1763810800000"
INTEGRATION = {"id": "0d9c8b7a-6f5e-4d3c-2b1a-090807060504", "name": "Sandbox API", "type": "API"}

USERS: list[dict[str, Any]] = [
    {"id": ALICE_ID, "username": "alice@example.com", "fullName": "Alice Archer", "role": {"id": "Admin",
     "name": "Admin"}, "timeZone": "Europe/Berlin", "locale": "en_US", "blocked": False, "verified": True,
     "createdAt": "2024-03-01T08:00:00.000Z", "tags": ["sre"]},
    {"id": BOB_ID, "username": "bob@example.com", "fullName": "Bob Baker", "role": {"id": "User", "name": "User"},
     "timeZone": "America/New_York", "locale": "en_US", "blocked": False, "verified": True,
     "createdAt": "2024-03-02T08:00:00.000Z", "tags": ["sre"]},
    {"id": CAROL_ID, "username": "carol@example.com", "fullName": "Carol Chen", "role": {"id": "User",
     "name": "User"}, "timeZone": "Asia/Singapore", "locale": "en_GB", "blocked": False, "verified": True,
     "createdAt": "2024-04-10T08:00:00.000Z", "tags": ["dba"]},
    {"id": DAVE_ID, "username": "dave@example.com", "fullName": "Dave Diaz", "role": {"id": "Owner",
     "name": "Owner"}, "timeZone": "America/Los_Angeles", "locale": "en_US", "blocked": False, "verified": True,
     "createdAt": "2023-11-20T08:00:00.000Z", "tags": []},
    {"id": ERIN_ID, "username": "erin@example.com", "fullName": "Erin Evans", "role": {"id": "User",
     "name": "User"}, "timeZone": "Europe/London", "locale": "en_GB", "blocked": False, "verified": False,
     "createdAt": "2025-02-14T08:00:00.000Z", "tags": ["dba"]},
]
CONTACTS = {uid: [{"id": f"c-{uid[-4:]}", "contactMethod": "email", "to": u["username"], "enabled": True}]
            for uid, u in ((u["id"], u) for u in USERS)}

TEAMS: list[dict[str, Any]] = [
    {"id": SRE_TEAM_ID, "name": "SRE", "description": "Site reliability engineering",
     "members": [{"user": {"id": ALICE_ID, "username": "alice@example.com"}, "role": "admin"},
                 {"user": {"id": BOB_ID, "username": "bob@example.com"}, "role": "user"}]},
    {"id": DB_TEAM_ID, "name": "Database", "description": "Database operations",
     "members": [{"user": {"id": CAROL_ID, "username": "carol@example.com"}, "role": "admin"},
                 {"user": {"id": ERIN_ID, "username": "erin@example.com"}, "role": "user"}]},
]

ESCALATIONS: list[dict[str, Any]] = [
    {"id": ESCALATION_ID, "name": "SRE_escalation", "description": "Page the SRE on call, then the whole team",
     "ownerTeam": {"id": SRE_TEAM_ID, "name": "SRE"},
     "rules": [
         {"condition": "if-not-acked", "notifyType": "default", "delay": {"timeAmount": 0, "timeUnit": "minutes"},
          "recipient": {"type": "schedule", "id": SCHEDULE_ID, "name": "SRE_schedule"}},
         {"condition": "if-not-acked", "notifyType": "next", "delay": {"timeAmount": 10, "timeUnit": "minutes"},
          "recipient": {"type": "schedule", "id": SCHEDULE_ID, "name": "SRE_schedule"}},
         {"condition": "if-not-acked", "notifyType": "default", "delay": {"timeAmount": 20, "timeUnit": "minutes"},
          "recipient": {"type": "team", "id": SRE_TEAM_ID, "name": "SRE"}}],
     "repeat": {"waitInterval": 30, "count": 2, "resetRecipientStates": False, "closeAlertAfterAll": False}},
]

ROTATION_PARTICIPANTS = [(ALICE_ID, "alice@example.com"), (BOB_ID, "bob@example.com"), (CAROL_ID, "carol@example.com")]
SCHEDULES: list[dict[str, Any]] = [
    {"id": SCHEDULE_ID, "name": "SRE_schedule", "description": "Primary SRE on call", "timezone": "Europe/Berlin",
     "enabled": True, "ownerTeam": {"id": SRE_TEAM_ID, "name": "SRE"},
     "rotations": [{"id": ROTATION_ID, "name": "weekly", "startDate": ROTATION_START, "type": "weekly",
                    "length": 1, "participants": [{"type": "user", "id": i, "username": n}
                                                  for i, n in ROTATION_PARTICIPANTS]}]},
    {"id": DB_SCHEDULE_ID, "name": "Database_schedule", "description": "DBA on call (no rotation yet)",
     "timezone": "Asia/Singapore", "enabled": False, "ownerTeam": {"id": DB_TEAM_ID, "name": "Database"},
     "rotations": []},
]


def _alert(aid: str, tiny: str, alias: str, message: str, status: str, priority: str, created: str, *,
           acked: bool = False, tags: tuple[str, ...] = (), owner: str = "", entity: str = "",
           description: str = "", details: dict[str, str] | None = None, count: int = 1) -> dict[str, Any]:
    return {"id": aid, "tinyId": tiny, "alias": alias, "message": message, "status": status,
            "acknowledged": acked, "isSeen": acked, "tags": list(tags), "snoozed": False, "count": count,
            "lastOccurredAt": created, "createdAt": created, "updatedAt": created, "source": "prometheus",
            "owner": owner, "priority": priority,
            "responders": [{"type": "team", "id": SRE_TEAM_ID}], "integration": dict(INTEGRATION),
            "report": {"ackTime": 120000, "acknowledgedBy": owner} if acked else {},
            "actions": ["Restart"], "entity": entity, "description": description, "details": details or {}}


def alerts() -> list[dict[str, Any]]:
    return [
        _alert(ALERT_DB_ID, "101", "db-primary-replication-lag", "Replication lag on db-primary above 30 s", "open",
               "P1", "2026-11-22T08:13:20.000Z", tags=("db", "prod"), entity="db-primary",
               description="Replica db-replica-2 is 45 s behind.", details={"lag_seconds": "45"}, count=3),
        _alert(ALERT_DISK_ID, "102", "disk-full-web-3", "Disk 92% full on web-3", "open", "P3",
               "2026-11-22T09:13:20.000Z", tags=("disk",), entity="web-3"),
        _alert(ALERT_CERT_ID, "103", "cert-expiry-api", "TLS certificate for api.example.com expires in 7 days",
               "open", "P4", "2026-11-22T10:13:20.000Z", tags=("tls",), entity="api.example.com"),
        _alert(ALERT_CLOSED_ID, "100", "cpu-batch-1", "CPU above 95% on batch-1", "closed", "P2",
               "2026-11-21T04:26:40.000Z", tags=("cpu",), entity="batch-1"),
        _alert(ALERT_ACKED_ID, "104", "queue-backlog-orders", "Orders queue backlog above 10k", "open", "P2",
               "2026-11-22T11:13:20.000Z", acked=True, owner="bob@example.com", tags=("queue", "prod"),
               entity="orders-queue"),
    ]


def notes() -> dict[str, list[dict[str, Any]]]:
    texts = ["Looking into it", "Replica restarted", "Lag going down", "Lag at 5 s", "Watching for an hour"]
    return {ALERT_DB_ID: [{"note": t, "owner": "alice@example.com",
                           "createdAt": f"2026-11-22T08:{20 + i * 5}:00.000Z"} for i, t in enumerate(texts)]}


def logs() -> dict[str, list[dict[str, Any]]]:
    rows = [("Alert created via Sandbox API", "system", "System"),
            ("Notified alice@example.com via email", "notification", "System"),
            ("Alert count increased to 2", "system", "System"),
            ("Alert count increased to 3", "system", "System"),
            ("Notified alice@example.com via sms", "notification", "System"),
            ("Note added by alice@example.com", "alertNote", "alice@example.com")]
    return {ALERT_DB_ID: [{"log": text, "type": kind, "owner": owner,
                           "createdAt": f"2026-11-22T08:{14 + i * 3}:00.000Z"}
                          for i, (text, kind, owner) in enumerate(rows)]}
