"""Seed data of the JSM Operations emulator: stable ids the tests can name."""

from __future__ import annotations

from typing import Any

CLOUD_ID = "5f1c0a9e-7b3d-4c2e-9a8f-1d2e3f4a5b6c"
SITE = "acme.atlassian.net"
EMAIL = "alice@example.com"
API_TOKEN = "ATATT3xFfGF0-jsm-sandbox-token-0001"
BEARER_TOKEN = "jsm-sandbox-bearer-token-0001"
INTEGRATION_ID = "c0ffee00-1111-4222-8333-jsmintegr001"

ALICE = "712020:0a11ce00-0000-4000-8000-000000000001"
BOB = "712020:0b0b0000-0000-4000-8000-000000000002"
CAROL = "712020:0ca10100-0000-4000-8000-000000000003"
USERS = {ALICE: "alice@example.com", BOB: "bob@example.com", CAROL: "carol@example.com"}

SRE_TEAM_ID = "8b3e5f2d-1b2c-4d5e-8f90-5e7e00000001"
DB_TEAM_ID = "8b3e5f2d-1b2c-4d5e-8f90-db0000000002"
TEAMS = [{"teamId": SRE_TEAM_ID, "teamName": "SRE"}, {"teamId": DB_TEAM_ID, "teamName": "Database"}]

SRE_SCHEDULE_ID = "e2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000001"
DB_SCHEDULE_ID = "e2c1b0a9-8f7e-4d6c-9b5a-5c4ed0000002"
SRE_ESCALATION_ID = "ac8b7a6d-5e4f-4a3b-9c2d-e5ca1a7e0001"
DB_ESCALATION_ID = "ac8b7a6d-5e4f-4a3b-9c2d-e5ca1a7e0002"

ESCALATIONS: dict[str, list[dict[str, Any]]] = {
    SRE_TEAM_ID: [{"id": SRE_ESCALATION_ID, "name": "SRE_escalation", "description": "Page the SRE on call",
                   "enabled": True, "repeat": {"waitInterval": 10, "count": 1, "resetRecipientStates": False,
                                               "closeAlertAfterAll": False},
                   "rules": [{"condition": "if-not-acked", "notifyType": "default", "delay": 1,
                              "recipient": {"id": SRE_SCHEDULE_ID, "type": "schedule"}},
                             {"condition": "if-not-acked", "notifyType": "default", "delay": 10,
                              "recipient": {"id": SRE_TEAM_ID, "type": "team"}}]}],
    DB_TEAM_ID: [{"id": DB_ESCALATION_ID, "name": "Database_escalation", "description": "", "enabled": True,
                  "repeat": {"waitInterval": 0, "count": 1, "resetRecipientStates": False,
                             "closeAlertAfterAll": False},
                  "rules": [{"condition": "if-not-closed", "notifyType": "default", "delay": 5,
                             "recipient": {"id": CAROL, "type": "user"}}]}],
}

SCHEDULES: list[dict[str, Any]] = [
    {"id": SRE_SCHEDULE_ID, "name": "SRE_schedule", "description": "Primary SRE on call", "timezone": "Europe/Berlin",
     "enabled": True, "teamId": SRE_TEAM_ID,
     "rotations": [{"id": "f1a2b3c4-0000-4000-8000-000000000001", "name": "Weekly", "type": "weekly", "length": 1,
                    "startDate": "2025-01-06T09:00:00Z",
                    "participants": [{"type": "user", "id": ALICE}, {"type": "user", "id": BOB},
                                     {"type": "user", "id": CAROL}]}]},
    {"id": DB_SCHEDULE_ID, "name": "Database_schedule", "description": "", "timezone": "UTC", "enabled": False,
     "teamId": DB_TEAM_ID, "rotations": []},
]

ALERT_DB_ID = "b418d193-2dab-4490-b331-8c02cdd196b7"
ALERT_DISK_ID = "b418d193-2dab-4490-b331-8c02cdd19602"
ALERT_CERT_ID = "b418d193-2dab-4490-b331-8c02cdd19603"
ALERT_CPU_ID = "b418d193-2dab-4490-b331-8c02cdd19600"
ALERT_QUEUE_ID = "b418d193-2dab-4490-b331-8c02cdd19604"


def _alert(aid: str, tiny: str, alias: str, message: str, priority: str, created: str, **extra: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "id": aid, "tinyId": tiny, "alias": alias, "message": message, "status": "open", "acknowledged": False,
        "seen": False, "tags": [], "extraProperties": {}, "snoozed": False, "count": 1, "lastOccuredAt": created,
        "createdAt": created, "updatedAt": created, "source": "prometheus", "owner": "", "priority": priority,
        "responders": [{"type": "team", "id": SRE_TEAM_ID}], "integrationType": "API",
        "integrationName": "Sandbox API", "actions": [], "entity": "",
        # not part of AlertResponse: kept by the emulator only (the API does not return it)
        "_description": "",
    }
    alert.update(extra)
    return alert


def alerts() -> list[dict[str, Any]]:
    return [
        _alert(ALERT_CPU_ID, "100", "cpu-batch-1", "CPU high on batch-1", "P2", "2026-11-22T07:00:00.000Z",
               status="closed", closeTime="2026-11-22T07:30:00.000Z", tags=["cpu"]),
        _alert(ALERT_DB_ID, "101", "db-primary-replication-lag", "Replication lag on db-primary", "P1",
               "2026-11-22T08:00:00.000Z", tags=["db", "replication"], extraProperties={"lag_seconds": "45"},
               entity="db-primary"),
        _alert(ALERT_DISK_ID, "102", "disk-full-web-3", "Disk 95% full on web-3", "P3", "2026-11-22T08:10:00.000Z",
               tags=["disk"]),
        _alert(ALERT_CERT_ID, "103", "cert-expiry-api", "TLS certificate of api expires in 7 days", "P4",
               "2026-11-22T08:20:00.000Z", tags=["tls"]),
        _alert(ALERT_QUEUE_ID, "104", "queue-backlog-orders", "Orders queue backlog", "P2", "2026-11-22T08:30:00.000Z",
               status="acked", acknowledged=True, ackTime="2026-11-22T08:35:00.000Z", owner=USERS[BOB]),
    ]


def notes() -> dict[str, list[dict[str, Any]]]:
    texts = ["Looking into it", "Replica is 45 s behind", "Vacuum running on primary", "Lag decreasing",
             "Watching for an hour"]
    return {ALERT_DB_ID: [{"note": t, "owner": USERS[ALICE], "createdAt": f"2026-11-22T08:0{i + 1}:00.000Z"}
                          for i, t in enumerate(texts)]}


def logs() -> dict[str, list[dict[str, Any]]]:
    texts = ["Alert created via Sandbox API", "Notified alice@example.com", "Alert seen by alice@example.com",
             "Note added", "Note added", "Alert count increased to 1"]
    return {ALERT_DB_ID: [{"log": t, "logType": "system", "owner": "System", "logTime": f"2026-11-22T08:0{i}:30.000Z"}
                          for i, t in enumerate(texts)]}
