"""What a model is shown of PagerDuty objects: references cut to id and summary, and compact list rows.

PagerDuty's objects are large and nest full references; a list of them would fill the result limit
after a few items. The get_ tools show an object whole; the list tools show these.
"""

from __future__ import annotations

from typing import Any


def ref(value: Any) -> Any:
    """A reference object reduced to what a model needs: id and summary."""
    if isinstance(value, dict):
        return {k: value[k] for k in ("id", "summary") if value.get(k) is not None} or None
    return value


def refs(values: Any) -> list[Any]:
    return [ref(v) for v in values or []]


def fields(item: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: item.get(k) for k in names if item.get(k) is not None}


def compact_user(u: dict[str, Any]) -> dict[str, Any]:
    return fields(u, ("id", "name", "email", "role", "job_title", "time_zone", "html_url")) \
        | ({"teams": refs(u["teams"])} if u.get("teams") else {})


def compact_service(s: dict[str, Any]) -> dict[str, Any]:
    return fields(s, ("id", "name", "description", "status", "last_incident_timestamp", "html_url")) \
        | {"escalation_policy": ref(s.get("escalation_policy")), "teams": refs(s.get("teams"))}


def compact_policy(p: dict[str, Any]) -> dict[str, Any]:
    rules = [{"level": i + 1, "delay_minutes": r.get("escalation_delay_in_minutes"),
              "targets": [{"type": t.get("type"), **(ref(t) or {})} for t in r.get("targets") or []]}
             for i, r in enumerate(p.get("escalation_rules") or [])]
    return fields(p, ("id", "name", "description", "num_loops", "html_url")) | {
        "levels": rules, "services": refs(p.get("services")), "teams": refs(p.get("teams"))}


def compact_schedule(s: dict[str, Any]) -> dict[str, Any]:
    return fields(s, ("id", "name", "description", "time_zone", "html_url")) \
        | {"users": refs(s.get("users")), "escalation_policies": refs(s.get("escalation_policies")),
           "teams": refs(s.get("teams"))}


def compact_oncall(o: dict[str, Any]) -> dict[str, Any]:
    return {"user": ref(o.get("user")), "schedule": ref(o.get("schedule")),
            "escalation_policy": ref(o.get("escalation_policy")), "escalation_level": o.get("escalation_level"),
            "start": o.get("start"), "end": o.get("end")}


def compact_incident(inc: dict[str, Any]) -> dict[str, Any]:
    """What a list shows per incident; get_incident has everything."""
    out = {k: inc.get(k) for k in ("id", "incident_number", "title", "status", "urgency", "created_at",
                                   "updated_at", "last_status_change_at", "resolved_at", "incident_key", "html_url")
           if inc.get(k) is not None}
    out["service"] = ref(inc.get("service"))
    if inc.get("priority"):
        out["priority"] = ref(inc["priority"])
    out["escalation_policy"] = ref(inc.get("escalation_policy"))
    out["assignees"] = [ref(a.get("assignee")) for a in inc.get("assignments") or []]
    if inc.get("acknowledgements"):
        out["acknowledged_by"] = [ref(a.get("acknowledger")) for a in inc["acknowledgements"]]
    if inc.get("teams"):
        out["teams"] = refs(inc["teams"])
    return out
