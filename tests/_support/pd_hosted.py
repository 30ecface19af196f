"""PagerDuty's hosted MCP server in the tests: the stand-in (mcp_proxy/sandbox/pagerduty_mcp.py), proxy configs
for `kind = "pagerduty"`, `api = "mcp"`, the OAuth sandbox wired to it, and the facts every exchange is checked
against.

`FACTS` is written out from vendor-specs/pagerduty-hosted-mcp.md §4, not imported from the stand-in, so that a
stand-in (or proxy) drifting from PagerDuty's tool names and argument shapes fails `check_exchange`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from mcp_proxy.policy import definition_hash
from mcp_proxy.sandbox import pagerduty_mcp
from mcp_proxy.sandbox.asgi_thread import free_port, serve_in_thread
from mcp_proxy.sandbox.oauth_server import OAuthClient, OAuthServer, create_app
from tests._support.auth import CLIENT_ID, SCOPED_ID, SCOPED_SECRET, Sandbox

USER_KEY = pagerduty_mcp.SANDBOX_USER_KEY
ACCOUNT_KEY = pagerduty_mcp.SANDBOX_ACCOUNT_KEY

_PAGE = ("limit", "offset")
# tool -> action -> (allowed fields, required fields), from the facts file's table (§4).
FACTS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "browse_users": {"get": ((), ()), "list": (("query", "team_ids", *_PAGE), ())},
    "browse_incidents": {
        "list": (("request_scope", "statuses", "since", "until", "urgencies", "priorities", "service_ids",
                  "team_ids", *_PAGE), ()),
        "get": (("incident_id", "include"), ("incident_id",)),
        "list_alerts": (("incident_id", *_PAGE), ("incident_id",)),
        "get_alert": (("incident_id", "alert_id"), ("incident_id", "alert_id")),
        "list_notes": (("incident_id", *_PAGE), ("incident_id",)),
        "context": (("incident_id", "context_type", "limit", "additional_details"), ("incident_id", "context_type")),
        "list_change_events": (("incident_id", *_PAGE), ("incident_id",)),
        "list_workflows": (("query", "include", *_PAGE), ()),
        "get_workflow": (("workflow_id",), ("workflow_id",))},
    "browse_services": {"list": (("query", "team_ids", *_PAGE), ()), "get": (("service_id",), ("service_id",))},
    "browse_teams": {"list": (("scope", "query", *_PAGE), ()), "get": (("team_id",), ("team_id",)),
                     "list_members": (("team_id", *_PAGE), ("team_id",))},
    "browse_schedules": {
        "list": (("query", "team_ids", "user_ids", "include", "kind", *_PAGE), ()),
        "get": (("schedule_id", "kind"), ("schedule_id",)), "list_users": (("schedule_id",), ("schedule_id",)),
        "list_oncalls": (("time_zone", "user_ids", "escalation_policy_ids", "schedule_ids", "service_ids", "since",
                          "until", "earliest", *_PAGE), ())},
    "browse_escalation_policies": {"list": (("query", "user_ids", "team_ids", "include", *_PAGE), ()),
                                   "get": (("policy_id",), ("policy_id",))},
    "browse_activity": {"list_log_entries": (("since", "until", "is_overview", "include", *_PAGE), ()),
                        "get_log_entry": (("log_entry_id",), ("log_entry_id",))},
    "manage_incidents": {
        "create": (("incident",), ("incident",)), "update": (("manage_request",), ("manage_request",)),
        "add_note": (("incident_id", "note"), ("incident_id", "note")),
        "add_responders": (("incident_id", "request"), ("incident_id", "request")),
        "start_workflow": (("workflow_id", "instance_request"), ("workflow_id", "instance_request"))},
}
HOSTED_TOOLS = {*FACTS, "browse_event_orchestrations", "browse_alert_grouping", "browse_change_events",
                "browse_status_pages", "manage_services", "manage_schedules", "manage_teams",
                "manage_event_orchestrations", "manage_alert_grouping", "manage_status_pages"}


def check_exchange(tool: str, arguments: Any) -> None:
    """One `tools/call` as the hosted server would receive it: a known tool, one `request` whose `action` is one of
    the tool's, with that action's fields only and its required ones present."""
    assert tool in HOSTED_TOOLS, f"{tool!r} is not one of PagerDuty's hosted tools"
    assert isinstance(arguments, dict) and set(arguments) == {"request"}, arguments
    request = arguments["request"]
    actions = FACTS.get(tool)
    if actions is None:
        return
    assert request.get("action") in actions, (tool, request)
    allowed, required = actions[request["action"]]
    assert set(request) - {"action"} <= set(allowed), (tool, request)
    assert set(required) <= set(request), (tool, request)
    if tool == "manage_incidents" and request["action"] == "update":
        assert set(request["manage_request"]) <= {"incident_ids", "assignment", "status", "urgency",
                                                  "escalation_level"}, request
        assert "incident_ids" in request["manage_request"]


def check_every_exchange(stand_in: pagerduty_mcp.StandIn) -> int:
    """Every tools/call the stand-in saw matches the facts; returns how many there were."""
    calls = [e for e in stand_in.log if e["rpc"] == "tools/call"]
    for entry in calls:
        check_exchange(entry["tool"], entry["arguments"])
    return len(calls)


def hosted_upstream(sandbox: pagerduty_mcp.Sandbox, **extra: Any) -> dict[str, Any]:
    """`[upstreams.pd]` for the hosted server's stand-in with an API key (from the environment: PD_TEST_KEY)."""
    return {"kind": "pagerduty", "api": "mcp", "url": sandbox.url, "api_key": "env:PD_TEST_KEY",
            "connect_timeout": 10, "call_timeout": 20, **extra}


def live_hashes(sandbox: pagerduty_mcp.Sandbox, key: str = USER_KEY) -> dict[str, str]:
    """The definition hash of each tool as the stand-in lists it on the wire (what a policy pins)."""
    reply = httpx.post(sandbox.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10,
                       headers={"Authorization": f"Token token={key}", "Content-Type": "application/json",
                                "Accept": "application/json, text/event-stream"})
    return {t["name"]: definition_hash(t) for t in reply.json()["result"]["tools"]}


def oauth_sandbox(tmp: Path) -> tuple[Sandbox, pagerduty_mcp.Sandbox]:
    """The sandbox OAuth server and the hosted stand-in accepting its tokens, as tests/_support/auth.py's Sandbox
    (its `pd_url`, the REST API on the stand-in's state, is where the sign-in asks who signed in)."""
    port = free_port()
    redirect = f"http://localhost:{port}/callback"
    server = OAuthServer()
    server.add_client(OAuthClient(CLIENT_ID, (redirect,)))
    server.add_client(OAuthClient(SCOPED_ID, (redirect,), secret=SCOPED_SECRET, scoped=True))
    oauth_http = serve_in_thread(create_app(server))
    hosted = pagerduty_mcp.start(bearer_validator=server.bearer_validator, authorization_server=oauth_http.url)
    return Sandbox(server, oauth_http, hosted._server, redirect, port, tmp), hosted


def oauth_upstream(box: Sandbox, hosted: pagerduty_mcp.Sandbox, **overrides: Any) -> dict[str, Any]:
    return box.upstream(api="mcp", url=hosted.url, connect_timeout=10, **overrides)
