"""The Statuspage emulator's state and rules: tables, rendering to the API's shapes, and changes.

Objects are kept as the API shows them (plus `_`-prefixed bookkeeping that never leaves the
emulator); unset fields are left out, because the spec declares nothing nullable.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

REALTIME = ("investigating", "identified", "monitoring", "resolved")
SCHEDULED = ("scheduled", "in_progress", "verifying", "completed")
COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
IMPACT_OF = {"major_outage": "critical", "partial_outage": "major", "degraded_performance": "minor",
             "under_maintenance": "maintenance"}
IMPACT_RANK = ["none", "maintenance", "minor", "major", "critical"]
NOT_FOUND = "The requested resource could not be found."
FORBIDDEN = "You are not authorized to access this resource."


class Problem(Exception):
    """An error answer: status and `{"message": ...}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def now() -> datetime:
    return datetime.now(UTC)


class Emulator:
    def __init__(self, api_keys: Iterable[str], *, rate_limit: bool = False) -> None:
        self.api_keys = set(api_keys)
        self.lock = threading.RLock()
        self.organizations: dict[str, dict[str, Any]] = {}
        self.users: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.pages: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.incidents: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.providers: dict[str, dict[str, str]] = defaultdict(dict)  # page → provider id → type
        self.metrics: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.metric_data: dict[str, dict[int, float]] = defaultdict(dict)
        self.subscribers: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.forbidden_pages: set[str] = set()  # requests under these pages get 403
        self.outbox: list[dict[str, Any]] = []  # notifications the emulator "sent"
        self.log: list[dict[str, Any]] = []
        # Rate limiting: at most rate_per_second * rate_window requests per key in any rate_window seconds.
        self.rate_limit = rate_limit
        self.rate_per_second = 1.0
        self.rate_window = 60.0
        self.rate_limit_status = 429  # or 420
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self.forced: deque[Problem] = deque()
        self._seq = 0

    # -- test hooks ------------------------------------------------------------------------
    def fail_next(self, status: int, message: str = "Forced error", *, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        """Answer the next `times` requests (after authentication) with this error."""
        with self.lock:
            for _ in range(times):
                self.forced.append(Problem(status, message, headers))

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:0{12 - len(prefix)}d}"

    def page(self, page_id: str) -> dict[str, Any]:
        if page_id not in self.pages:
            raise Problem(404, NOT_FOUND)
        if page_id in self.forbidden_pages:
            raise Problem(403, FORBIDDEN)
        return self.pages[page_id]

    def find(self, table: dict[str, dict[str, dict[str, Any]]], page_id: str, item_id: str) -> dict[str, Any]:
        self.page(page_id)
        item = table[page_id].get(item_id)
        if item is None or item.get("_state") == "unsubscribed":
            raise Problem(404, NOT_FOUND)
        return item

    # -- seeding ---------------------------------------------------------------------------
    def add_page(self, pid: str, org: str, name: str, subdomain: str, created: datetime, **extra: Any) -> None:
        self.pages[pid] = {"id": pid, "name": name, "subdomain": subdomain, "url": f"https://{subdomain}.example",
                           "created_at": self.iso(created), "updated_at": self.iso(created),
                           "allow_page_subscribers": True, "allow_incident_subscribers": True,
                           "allow_email_subscribers": True, "allow_sms_subscribers": True,
                           "allow_webhook_subscribers": True, "allow_rss_atom_feeds": True,
                           "hidden_from_search": False, "viewers_must_be_team_members": False, **extra,
                           "_org": org}

    def add_group(self, pid: str, gid: str, name: str, position: int, created: datetime) -> None:
        self.groups[pid][gid] = {"id": gid, "page_id": pid, "name": name, "components": [], "position": position,
                                 "created_at": self.iso(created), "updated_at": self.iso(created)}

    def add_component(self, pid: str, cid: str, name: str, status: str, group: str | None, position: int,
                      description: str, created: datetime) -> None:
        item = {"id": cid, "page_id": pid, "name": name, "status": status, "description": description,
                "position": position, "group": False, "showcase": True, "only_show_if_degraded": False,
                "created_at": self.iso(created), "updated_at": self.iso(created),
                "start_date": created.date().isoformat()}
        if group:
            item["group_id"] = group
            self.groups[pid][group]["components"].append(cid)
        self.components[pid][cid] = item

    def add_incident(self, pid: str, iid: str, name: str, kind: str, created: datetime, *,
                     updates: list[tuple[str, str, str, datetime]], components: dict[str, str | None], impact: str,
                     scheduled: tuple[datetime, datetime] | None = None, postmortem: str | None = None,
                     status: str | None = None) -> None:
        last = updates[-1]
        item: dict[str, Any] = {
            "id": iid, "page_id": pid, "name": name, "status": status or last[1], "impact": impact,
            "created_at": self.iso(created), "updated_at": self.iso(last[3]),
            "shortlink": f"https://stspg.io/{iid[:9]}", "_kind": kind, "_components": list(components),
            "_updates": [{"id": uid, "incident_id": iid, "status": st, "body": body, "created_at": self.iso(at),
                          "updated_at": self.iso(at), "display_at": self.iso(at), "deliver_notifications": True,
                          "affected_components": []} for uid, st, body, at in updates],
        }
        if item["status"] in ("resolved", "completed"):
            item["resolved_at"] = self.iso(last[3])
        if scheduled:
            item.update({"scheduled_for": self.iso(scheduled[0]), "scheduled_until": self.iso(scheduled[1]),
                         "scheduled_remind_prior": True, "scheduled_auto_in_progress": True,
                         "scheduled_auto_completed": True, "auto_transition_to_maintenance_state": True,
                         "auto_transition_to_operational_state": True})
        if postmortem:
            item["postmortem_body"] = postmortem
        self.incidents[pid][iid] = item

    def add_metric(self, pid: str, mid: str, provider: str, name: str, suffix: str, created: datetime) -> None:
        self.metrics[pid][mid] = {"id": mid, "metrics_provider_id": provider, "metric_identifier": mid,
                                  "name": name, "display": True, "suffix": suffix, "decimal_places": 1,
                                  "y_axis_hidden": False, "backfilled": False, "created_at": self.iso(created),
                                  "updated_at": self.iso(created)}

    def add_subscriber(self, pid: str, sid: str, mode: str, address: str, state: str,
                       components: list[str] | None, created: datetime) -> dict[str, Any]:
        item: dict[str, Any] = {"id": sid, "mode": mode, "created_at": self.iso(created), "_state": state,
                                "components": components or list(self.components[pid]),
                                "skip_confirmation_notification": False}
        if mode == "email":
            item["email"] = address
        elif mode == "webhook":
            item["endpoint"], item["email"] = address, "ops@acme.example"
        elif mode == "sms":
            item.update({"phone_number": address, "phone_country": "US",
                         "display_phone_number": f"+1 ({address[:3]}) {address[3:6]}-{address[6:]}"})
        if state == "quarantined":
            item["quarantined_at"] = self.iso(created)
        self.subscribers[pid][sid] = item
        return item

    # -- rendering -------------------------------------------------------------------------
    def render_incident(self, item: dict[str, Any]) -> dict[str, Any]:
        pid = item["page_id"]
        out = {k: v for k, v in item.items() if not k.startswith("_")}
        out["components"] = [self.components[pid][c] for c in item["_components"] if c in self.components[pid]]
        order = sorted(enumerate(item["_updates"]), key=lambda p: (p[1]["display_at"], p[0]), reverse=True)
        out["incident_updates"] = [u for _, u in order]
        return out

    @staticmethod
    def public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if not k.startswith("_")}

    # -- changes ---------------------------------------------------------------------------
    def notify(self, kind: str, pid: str, **details: Any) -> None:
        count = sum(1 for s in self.subscribers[pid].values() if s["_state"] == "active")
        self.outbox.append({"kind": kind, "page_id": pid, "subscribers": count, **details})

    def set_components(self, pid: str, statuses: dict[str, str], stamp: str) -> list[dict[str, Any]]:
        changes = []
        for cid, status in statuses.items():
            comp = self.components[pid][cid]
            if status and comp["status"] != status:
                changes.append({"code": cid, "name": comp["name"], "old_status": comp["status"],
                                "new_status": status})
                comp["status"], comp["updated_at"] = status, stamp
        return changes

    def impact(self, statuses: dict[str, str], override: str | None, kind: str) -> str:
        if override:
            return override
        if kind == "scheduled":
            return "maintenance"
        ranks = [IMPACT_RANK.index(IMPACT_OF.get(s, "none")) for s in statuses.values() if s]
        return IMPACT_RANK[max(ranks)] if ranks else "none"

    def add_update(self, item: dict[str, Any], status: str, body: str, notify: bool,
                   changes: list[dict[str, Any]], at: datetime) -> None:
        stamp = self.iso(at)
        update = {"id": self.new_id("upd"), "incident_id": item["id"], "status": status, "body": body,
                  "created_at": stamp, "updated_at": stamp, "display_at": stamp, "deliver_notifications": notify,
                  "affected_components": changes}
        item["_updates"].append(update)
        if notify:
            self.notify("incident_update", item["page_id"], incident_id=item["id"], update_id=update["id"],
                        status=status)
