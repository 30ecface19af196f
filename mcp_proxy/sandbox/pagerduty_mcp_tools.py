"""The tools of PagerDuty's hosted MCP server as the sandbox stand-in serves them: names, the `request`
schemas with each action's fields, the scope each action needs (vendor-specs/pagerduty-hosted-mcp.md).
Data only; the stand-in that answers them is sandbox/pagerduty_mcp.py."""

from __future__ import annotations

from typing import Any

_S: dict[str, Any] = {"type": "string"}
_A: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_O: dict[str, Any] = {"type": "object"}
_B: dict[str, Any] = {"type": "boolean"}
_INT: dict[str, Any] = {"type": "integer"}
_LIMIT: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 100}
_OFFSET: dict[str, Any] = {"type": "integer", "minimum": 0}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def _enums(*values: str) -> dict[str, Any]:
    return {"type": "array", "items": _enum(*values)}


_PAGE = {"limit": _LIMIT, "offset": _OFFSET}
_CHANGE_FILTERS = {"since": _S, "until": _S, "total": _B, "team_ids": _A, "integration_ids": _A, **_PAGE}
_INCIDENT = {"type": "object", "required": ["title", "service"], "properties": {
    "title": _S, "service": {"type": "object", "required": ["id"], "properties": {"id": _S}},
    "urgency": _enum("high", "low"), "body": {"type": "object", "properties": {"details": _S}},
    "assignments": {"type": "array", "items": {"type": "object", "properties": {
        "assignee": {"type": "object", "properties": {"id": _S}}}}}}}
_MANAGE_REQUEST = {"type": "object", "required": ["incident_ids"], "properties": {
    "incident_ids": _A, "assignment": {"type": "object", "properties": {"id": _S}},
    "status": _enum("acknowledged", "resolved"), "urgency": _enum("high", "low"), "escalation_level": _INT}}
_RESPONDERS = {"type": "object", "required": ["message", "responder_request_targets"], "properties": {
    "message": _S, "responder_request_targets": {"type": "array", "items": {"type": "object", "properties": {
        "responder_request_target": {"type": "object", "properties": {
            "id": _S, "type": _enum("user_reference", "escalation_policy_reference")}}}}}}}

# tool -> action -> (its fields, the required ones); vendor-specs/pagerduty-hosted-mcp.md §4.
Action = tuple[dict[str, Any], tuple[str, ...]]
ACTIONS: dict[str, dict[str, Action]] = {
    "browse_users": {"get": ({}, ()), "list": ({"query": _S, "team_ids": _A, **_PAGE}, ())},
    "browse_incidents": {
        "list": ({"request_scope": _enum("all", "teams", "assigned"),
                  "statuses": _enums("triggered", "acknowledged", "resolved"), "since": _S, "until": _S,
                  "urgencies": _enums("high", "low"), "priorities": _A, "service_ids": _A, "team_ids": _A,
                  **_PAGE}, ()),
        "get": ({"incident_id": _S, "include": _A}, ("incident_id",)),
        "list_alerts": ({"incident_id": _S, **_PAGE}, ("incident_id",)),
        "get_alert": ({"incident_id": _S, "alert_id": _S}, ("incident_id", "alert_id")),
        "list_notes": ({"incident_id": _S, **_PAGE}, ("incident_id",)),
        "context": ({"incident_id": _S, "context_type": _enum("related", "past", "outlier"), "limit": _LIMIT,
                     "additional_details": _A}, ("incident_id", "context_type")),
        "list_change_events": ({"incident_id": _S, **_PAGE}, ("incident_id",)),
        "list_workflows": ({"query": _S, "include": _enums("steps", "team"), **_PAGE}, ()),
        "get_workflow": ({"workflow_id": _S}, ("workflow_id",)),
    },
    "browse_services": {"list": ({"query": _S, "team_ids": _A, **_PAGE}, ()),
                        "get": ({"service_id": _S}, ("service_id",))},
    "browse_teams": {"list": ({"scope": _enum("all", "my"), "query": _S, **_PAGE}, ()),
                     "get": ({"team_id": _S}, ("team_id",)),
                     "list_members": ({"team_id": _S, **_PAGE}, ("team_id",))},
    "browse_schedules": {
        "list": ({"query": _S, "team_ids": _A, "user_ids": _A,
                  "include": _enums("schedule_layers", "overrides_subschedule", "final_schedule"),
                  "kind": _enum("legacy", "shift_based"), **_PAGE}, ()),
        "get": ({"schedule_id": _S, "kind": _enum("legacy", "shift_based")}, ("schedule_id",)),
        "list_users": ({"schedule_id": _S}, ("schedule_id",)),
        "list_oncalls": ({"time_zone": _S, "user_ids": _A, "escalation_policy_ids": _A, "schedule_ids": _A,
                          "service_ids": _A, "since": _S, "until": _S, "earliest": _B, **_PAGE}, ()),
        "list_rotations": ({"schedule_id": _S, **_PAGE}, ("schedule_id",)),
        "get_rotation": ({"schedule_id": _S, "rotation_id": _S}, ("schedule_id", "rotation_id")),
        "list_rotation_events": ({"schedule_id": _S, "rotation_id": _S, **_PAGE}, ("schedule_id", "rotation_id")),
        "get_rotation_event": ({"schedule_id": _S, "rotation_id": _S, "event_id": _S},
                               ("schedule_id", "rotation_id", "event_id")),
        "list_custom_shifts": ({"schedule_id": _S, "since": _S, "until": _S, **_PAGE},
                               ("schedule_id", "since", "until")),
        "get_custom_shift": ({"schedule_id": _S, "custom_shift_id": _S}, ("custom_shift_id",)),
        "list_overrides": ({"schedule_id": _S, "since": _S, "until": _S, **_PAGE}, ("schedule_id", "since", "until")),
        "get_override": ({"schedule_id": _S, "override_id": _S}, ("override_id",)),
    },
    "browse_escalation_policies": {
        "list": ({"query": _S, "user_ids": _A, "team_ids": _A, "include": _enums("services", "teams"), **_PAGE}, ()),
        "get": ({"policy_id": _S}, ("policy_id",))},
    "browse_event_orchestrations": {
        "list": ({"sort_by": _enum("name:asc", "name:desc", "routes:asc", "routes:desc", "created_at:asc",
                                   "created_at:desc"), **_PAGE}, ()),
        "get": ({"orchestration_id": _S}, ("orchestration_id",)),
        "get_router": ({"orchestration_id": _S}, ("orchestration_id",)),
        "get_global": ({"orchestration_id": _S}, ("orchestration_id",)),
        "get_service": ({"service_id": _S}, ("service_id",))},
    "browse_alert_grouping": {
        "list": ({"service_ids": _A, "limit": _LIMIT, "after": _S, "before": _S, "total": _B}, ()),
        "get": ({"setting_id": _S}, ("setting_id",))},
    "browse_change_events": {
        "list": (_CHANGE_FILTERS, ()), "get": ({"change_event_id": _S}, ("change_event_id",)),
        "list_service": ({"service_id": _S, **_CHANGE_FILTERS}, ("service_id",))},
    "browse_status_pages": {
        "list": ({"status_page_type": _enum("public", "private", "audience_specific"), **_PAGE}, ()),
        "list_severities": ({"status_page_id": _S, **_PAGE}, ("status_page_id",)),
        "list_impacts": ({"status_page_id": _S, **_PAGE}, ("status_page_id",)),
        "list_statuses": ({"status_page_id": _S, **_PAGE}, ("status_page_id",)),
        "get_post": ({"status_page_id": _S, "post_id": _S, "include": _enums("status_page_post_update")},
                     ("status_page_id", "post_id")),
        "list_post_updates": ({"status_page_id": _S, "post_id": _S, **_PAGE}, ("status_page_id", "post_id"))},
    "browse_activity": {
        "list_log_entries": ({"since": _S, "until": _S, "is_overview": _B,
                              "include": _enums("incidents", "services", "channels", "teams"), **_PAGE}, ()),
        "get_log_entry": ({"log_entry_id": _S}, ("log_entry_id",))},
    "manage_incidents": {
        "create": ({"incident": _INCIDENT}, ("incident",)),
        "update": ({"manage_request": _MANAGE_REQUEST}, ("manage_request",)),
        "add_note": ({"incident_id": _S, "note": _S}, ("incident_id", "note")),
        "add_responders": ({"incident_id": _S, "request": _RESPONDERS}, ("incident_id", "request")),
        "start_workflow": ({"workflow_id": _S, "instance_request": _O}, ("workflow_id", "instance_request"))},
    "manage_services": {"create": ({"service_data": _O}, ("service_data",)),
                        "update": ({"service_id": _S, "service_data": _O}, ("service_id", "service_data"))},
    "manage_schedules": {
        "create": ({"schedule_data": _O}, ("schedule_data",)),
        "update": ({"schedule_id": _S, "schedule_data": _O}, ("schedule_id", "schedule_data")),
        "create_override": ({"schedule_id": _S, "override_request": _O}, ("schedule_id", "override_request")),
        "delete_schedule_v3": ({"schedule_id": _S}, ("schedule_id",)),
        "create_rotation": ({"schedule_id": _S}, ("schedule_id",)),
        "delete_rotation": ({"schedule_id": _S, "rotation_id": _S}, ("schedule_id", "rotation_id")),
        "create_rotation_event": ({"schedule_id": _S, "rotation_id": _S, "event_data": _O},
                                  ("schedule_id", "rotation_id", "event_data")),
        "update_rotation_event": ({"schedule_id": _S, "rotation_id": _S, "event_id": _S, "event_data": _O},
                                  ("schedule_id", "rotation_id", "event_id", "event_data")),
        "delete_rotation_event": ({"schedule_id": _S, "rotation_id": _S, "event_id": _S},
                                  ("schedule_id", "rotation_id", "event_id")),
        "create_custom_shifts": ({"schedule_id": _S, "shifts": {"type": "array", "items": _O}},
                                 ("schedule_id", "shifts")),
        "update_custom_shift": ({"schedule_id": _S, "custom_shift_id": _S, "shift_data": _O},
                                ("custom_shift_id", "shift_data")),
        "delete_custom_shift": ({"schedule_id": _S, "custom_shift_id": _S}, ("custom_shift_id",)),
        "create_overrides": ({"schedule_id": _S, "overrides": {"type": "array", "items": _O}},
                             ("schedule_id", "overrides")),
        "update_override": ({"schedule_id": _S, "override_id": _S, "override_data": _O},
                            ("override_id", "override_data")),
        "delete_override": ({"schedule_id": _S, "override_id": _S}, ("override_id",))},
    "manage_teams": {
        "create": ({"create_model": _O}, ("create_model",)),
        "update": ({"team_id": _S, "update_model": _O}, ("team_id", "update_model")),
        "delete": ({"team_id": _S}, ("team_id",)),
        "add_member": ({"team_id": _S, "member_data": _O}, ("team_id", "member_data")),
        "remove_member": ({"team_id": _S, "user_id": _S}, ("team_id", "user_id"))},
    "manage_event_orchestrations": {
        "update_router": ({"orchestration_id": _S, "router_update": _O}, ("orchestration_id", "router_update")),
        "append_router_rule": ({"orchestration_id": _S, "new_rule": _O}, ("orchestration_id", "new_rule"))},
    "manage_alert_grouping": {
        "create": ({"create_model": _O}, ("create_model",)),
        "update": ({"setting_id": _S, "update_model": _O}, ("setting_id", "update_model")),
        "delete": ({"setting_id": _S}, ("setting_id",))},
    "manage_status_pages": {
        "create_post": ({"status_page_id": _S, "create_model": _O}, ("status_page_id", "create_model")),
        "create_post_update": ({"status_page_id": _S, "post_id": _S, "create_model": _O},
                               ("status_page_id", "post_id", "create_model"))},
}

# The REST scope each tool's actions need (x-pd-requires-scope of the endpoints they call).
_SCOPE_AREA = {"users": "users", "incidents": "incidents", "services": "services", "teams": "teams",
               "schedules": "schedules", "escalation_policies": "escalation_policies",
               "event_orchestrations": "event_orchestrations", "alert_grouping": "incidents",
               "change_events": "change_events", "status_pages": "status_pages", "activity": "incidents"}
_DESCRIPTIONS = {
    "browse": "Read PagerDuty {area}. Put the action and its fields in `request`.",
    "manage": "Change PagerDuty {area}. Put the action and its fields in `request`. Confirm with the user first.",
}


def required_scope(tool: str, action: str) -> str:
    verb, area = tool.split("_", 1)
    if tool == "browse_schedules" and action == "list_oncalls":
        return "oncalls.read"
    return f"{_SCOPE_AREA[area]}.{'read' if verb == 'browse' else 'write'}"


def tool_definitions() -> list[dict[str, Any]]:
    tools = []
    for name, actions in ACTIONS.items():
        verb, area = name.split("_", 1)
        fields: dict[str, Any] = {}
        for action_fields, _required in actions.values():
            fields.update(action_fields)
        request = {"type": "object", "required": ["action"], "additionalProperties": False,
                   "properties": {"action": {"type": "string", "enum": list(actions)}, **fields}}
        read = verb == "browse"
        tools.append({"name": name, "description": _DESCRIPTIONS[verb].format(area=area.replace("_", " ")),
                      "inputSchema": {"type": "object", "required": ["request"], "additionalProperties": False,
                                      "properties": {"request": request}},
                      "annotations": {"readOnlyHint": read, "destructiveHint": not read, "idempotentHint": read}})
    return tools
