"""Seed data for the PagerDuty emulator: a small, realistic account with stable ids.

Times are relative to the moment the emulator starts (incidents within the last
30 days, one older), except the schedule rotation, anchored at 2025-01-06T09:00Z.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

ANCHOR = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)

USERS = [  # id, name, email, role, job title, teams
    ("PALICE1", "Alice Archer", "alice@example.com", "admin", "SRE lead", ["PTEAM01"]),
    ("PBOB002", "Bob Baker", "bob@example.com", "user", "SRE", ["PTEAM01"]),
    ("PCAROL3", "Carol Chen", "carol@example.com", "user", "DBA", ["PTEAM02"]),
    ("PDAVE04", "Dave Diaz", "dave@example.com", "limited_user", "DBA", ["PTEAM02"]),
    ("PERIN05", "Erin Evans", "erin@example.com", "observer", "Engineering manager", []),
]
TEAMS = [("PTEAM01", "SRE", "Site reliability engineering"), ("PTEAM02", "Database", "Database operations")]
SCHEDULES = [  # id, name, time zone, rotation (user ids, weekly from ANCHOR), team
    ("PSCHED1", "SRE primary", "Europe/Berlin", ["PALICE1", "PBOB002", "PCAROL3"], "PTEAM01"),
    ("PSCHED2", "Database primary", "America/New_York", ["PCAROL3", "PDAVE04"], "PTEAM02"),
]
POLICIES = [  # id, name, rules [(delay, [(kind, id)])], team
    ("PEP0001", "SRE escalation", [(30, [("schedule", "PSCHED1")]), (30, [("user", "PBOB002")])], "PTEAM01"),
    ("PEP0002", "Database escalation", [(15, [("schedule", "PSCHED2")]), (30, [("user", "PCAROL3"),
                                                                               ("user", "PALICE1")])], "PTEAM02"),
]
SERVICES = [  # id, name, description, policy, team, status
    ("PSVC001", "Checkout API", "Customer checkout and cart", "PEP0001", "PTEAM01", "critical"),
    ("PSVC002", "Payments DB", "PostgreSQL cluster for payments", "PEP0002", "PTEAM02", "warning"),
    ("PSVC003", "Web frontend", "Public website", "PEP0001", "PTEAM01", "active"),
    ("PSVC004", "Batch jobs", "Nightly reports (retired)", "PEP0001", "PTEAM01", "disabled"),
]
PRIORITIES = [("PPRIO01", "P1", "Critical: customer-facing outage"), ("PPRIO02", "P2", "High: degraded service"),
              ("PPRIO03", "P3", "Moderate"), ("PPRIO04", "P4", "Low"), ("PPRIO05", "P5", "Informational")]


def incidents(now: datetime) -> list[dict[str, Any]]:
    """Seed incidents: id, number, title, service, status, urgency, priority, age, assignee, acker, resolver,
    notes [(user, text)], alerts [(summary, severity, key, status)]."""
    h = timedelta(hours=1)
    return [
        dict(id="Q0CHECKOUT1001", number=1001, title="Checkout error rate above 5%", service="PSVC001",
             status="triggered", urgency="high", priority="PPRIO01", created=now - 2 * h, assignee="PALICE1",
             notes=[("PALICE1", "Looking at the load balancer logs."),
                    ("PBOB002", "Deploy 2026.11.21-3 went out 10 minutes before this started.")],
             alerts=[("5xx rate 7.2% on checkout-api", "critical", "checkout-5xx", "triggered"),
                     ("p99 latency 4.1s on checkout-api", "error", "checkout-latency", "triggered")]),
        dict(id="Q0PAYDBLAG1002", number=1002, title="Replication lag on payments-db-2", service="PSVC002",
             status="acknowledged", urgency="high", priority="PPRIO02", created=now - 5 * h, assignee="PCAROL3",
             acker="PCAROL3", notes=[("PCAROL3", "Lag caused by a long-running vacuum; watching.")],
             alerts=[("replication lag 340s on payments-db-2", "warning", "pg-lag-payments-db-2", "triggered")]),
        dict(id="Q0WEBSLOW1003", number=1003, title="Slow page loads in eu-west", service="PSVC003",
             status="triggered", urgency="low", priority="PPRIO03", created=now - 26 * h, assignee="PBOB002",
             notes=[], alerts=[("LCP above 4s for 15 min (eu-west)", "warning", "web-lcp-euw", "triggered")]),
        dict(id="Q0CHK502S1004", number=1004, title="Checkout 502s after deploy", service="PSVC001",
             status="resolved", urgency="high", priority="PPRIO01", created=now - 4 * 24 * h, assignee="PBOB002",
             acker="PBOB002", resolver="PBOB002", notes=[("PBOB002", "Rolled back; 502s stopped.")],
             alerts=[("502 rate 12% on checkout-api", "critical", "checkout-502", "resolved")]),
        dict(id="Q0BACKUP01005", number=1005, title="Nightly backup took longer than usual", service="PSVC002",
             status="triggered", urgency="low", priority=None, created=now - 8 * h, assignee="PDAVE04",
             notes=[], alerts=[("backup duration 3h12m (expected < 2h)", "info", "pg-backup-duration", "triggered")]),
        dict(id="Q0CERTEXP1006", number=1006, title="TLS certificate for api.example.com expires in 7 days",
             service="PSVC003", status="acknowledged", urgency="low", priority="PPRIO04", created=now - 3 * 24 * h,
             assignee="PALICE1", acker="PALICE1", notes=[], alerts=[]),
        dict(id="Q0DISKFULL1007", number=1007, title="Disk 92% full on web-3", service="PSVC003",
             status="resolved", urgency="low", priority="PPRIO03", created=now - 12 * 24 * h, assignee="PBOB002",
             resolver="PBOB002", notes=[], alerts=[("disk /var 92% on web-3", "warning", "disk-web-3", "resolved")]),
        dict(id="Q0OLDOUTG1000", number=1000, title="Checkout outage (card processor down)", service="PSVC001",
             status="resolved", urgency="high", priority="PPRIO01", created=now - 45 * 24 * h, assignee="PALICE1",
             acker="PALICE1", resolver="PALICE1", notes=[("PALICE1", "Processor confirmed the outage on their side.")],
             alerts=[]),
    ]


def overrides(now: datetime) -> list[tuple[str, str, str, datetime, datetime]]:
    """Schedule overrides: id, schedule, user, start, end."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [("PO00001", "PSCHED1", "PDAVE04", day - timedelta(days=1), day + timedelta(days=1)),
            ("PO00002", "PSCHED1", "PALICE1", day + timedelta(days=3), day + timedelta(days=4)),
            ("PO00003", "PSCHED2", "PDAVE04", day - timedelta(days=10), day - timedelta(days=9))]
