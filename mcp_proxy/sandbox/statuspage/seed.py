"""The emulator's seed data: one organisation, two pages, components and groups, incidents with
updates, maintenances, metrics, subscribers and users. Ids are stable (documented in the package
docstring); times are relative to start-up."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_proxy.sandbox.statuspage.state import Emulator

ORG = "acmeorg00001"
PAGE = "acmepage0001"
PAGE2 = "acmeintpage2"


def seed(emu: Emulator, now: datetime) -> None:
    def ago(**kw: Any) -> datetime:
        return now - timedelta(**kw)

    def later(**kw: Any) -> datetime:
        return now + timedelta(**kw)

    emu.organizations[ORG] = {"id": ORG, "name": "Acme Corp"}
    emu.add_page(PAGE, ORG, "Acme Cloud", "acme", ago(days=400), time_zone="Etc/UTC",
                 headline="Live status of Acme Cloud services", support_url="https://support.acme.example")
    emu.add_page(PAGE2, ORG, "Acme Internal Tools", "acme-internal", ago(days=200), time_zone="Europe/Berlin")
    for uid, email, first, last in (("usralice0001", "alice@example.com", "Alice", "Archer"),
                                    ("usrbob000001", "bob@example.com", "Bob", "Baker"),
                                    ("usrcarol0001", "carol@example.com", "Carol", "Chen")):
        emu.users[ORG].append({"id": uid, "organization_id": ORG, "email": email, "first_name": first,
                               "last_name": last, "created_at": emu.iso(ago(days=300)),
                               "updated_at": emu.iso(ago(days=30))})

    emu.add_group(PAGE, "grpcore00001", "Core platform", 1, ago(days=400))
    emu.add_group(PAGE, "grpdata00001", "Data", 2, ago(days=400))
    for cid, name, group, position, status, description in (
            ("cmpapi000001", "API", "grpcore00001", 1, "operational", "Public REST API"),
            ("cmpweb000001", "Website", "grpcore00001", 2, "under_maintenance", "www.acme.example"),
            ("cmpauth00001", "Login", "grpcore00001", 3, "operational", "Sign-in and SSO"),
            ("cmpdb0000001", "Database", "grpdata00001", 1, "degraded_performance", "Primary database cluster"),
            ("cmpstore0001", "File storage", "grpdata00001", 2, "operational", "Object storage"),
            ("cmpmail00001", "Email delivery", None, 3, "operational", "Outgoing notification email")):
        emu.add_component(PAGE, cid, name, status, group, position, description, ago(days=400))
    emu.add_component(PAGE2, "cmpwiki00001", "Wiki", "operational", None, 1, "Internal wiki", ago(days=200))

    emu.add_incident(PAGE, "incdblag0001", "Elevated database latency", "realtime", ago(hours=2), updates=[
        ("upddblag0001", "investigating", "We are investigating slow queries on the primary database.",
         ago(hours=2)),
        ("upddblag0002", "identified", "A replica fell behind; we are rebuilding it. Writes may be slow.",
         ago(minutes=40))], components={"cmpdb0000001": "degraded_performance"}, impact="minor")
    emu.add_incident(PAGE, "inclogin0001", "Login failures for SSO users", "realtime", ago(days=1, hours=3), updates=[
        ("updlogin0001", "investigating", "Some SSO users cannot sign in.", ago(days=1, hours=3)),
        ("updlogin0002", "monitoring", "A fix for the identity provider timeout is deployed; we are monitoring.",
         ago(days=1, hours=2)),
        ("updlogin0003", "resolved", "Sign-in works again for everyone.", ago(days=1, hours=1))],
        components={"cmpauth00001": "operational"}, impact="major")
    emu.add_incident(PAGE, "incapi500001", "API returning 500 errors", "realtime", ago(days=8), updates=[
        ("updapi500001", "investigating", "The API returns errors for some requests.", ago(days=8)),
        ("updapi500002", "resolved", "A faulty deploy was rolled back.", ago(days=8) + timedelta(minutes=35))],
        components={"cmpapi000001": "operational"}, impact="critical",
        postmortem="A configuration change disabled the connection pool; we added a canary stage.")
    emu.add_incident(PAGE, "mntdbupg0001", "Database version upgrade", "scheduled", ago(days=2), updates=[
        ("upddbupg0001", "scheduled", "We will upgrade the database cluster; expect brief read-only periods.",
         ago(days=2))], components={"cmpdb0000001": None}, impact="maintenance",
        scheduled=(later(days=3), later(days=3, hours=2)))
    emu.add_incident(PAGE, "mntcdn000001", "CDN migration", "scheduled", ago(days=5), updates=[
        ("updcdn000001", "scheduled", "We are moving the website to a new CDN.", ago(days=5)),
        ("updcdn000002", "in_progress", "The migration has started.", ago(minutes=30))],
        components={"cmpweb000001": None}, impact="maintenance", scheduled=(ago(minutes=30), later(hours=1)),
        status="in_progress")

    emu.providers[PAGE] = {"mprself00001": "Self", "mprdatadog01": "Datadog"}
    emu.add_metric(PAGE, "metapilat001", "mprself00001", "API response time", "ms", ago(days=300))
    emu.add_metric(PAGE, "meterrrate01", "mprself00001", "API error rate", "%", ago(days=300))
    emu.add_metric(PAGE, "metddcpu0001", "mprdatadog01", "Web CPU", "%", ago(days=100))

    for sid, mode, address, state, components in (
            ("subalice0001", "email", "alice@example.com", "active", None),
            ("subbob000001", "email", "bob@example.com", "active", ["cmpapi000001", "cmpdb0000001"]),
            ("subdave00001", "email", "dave@example.net", "active", None),
            ("subhook00001", "webhook", "https://hooks.acme.example/statuspage", "active", None),
            ("subsms000001", "sms", "2025550105", "active", None),
            ("subnew000001", "email", "newbie@example.org", "unconfirmed", None),
            ("subquar00001", "email", "bounces@example.com", "quarantined", None)):
        emu.add_subscriber(PAGE, sid, mode, address, state, components, ago(days=60))
