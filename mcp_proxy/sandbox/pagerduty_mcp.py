"""A local stand-in for PagerDuty's hosted MCP server (`https://mcp.pagerduty.com/mcp`), on the PagerDuty REST
emulator's state (`sandbox/pagerduty/state.py`), for the tests and the demo.

Start it with `start(...)` (a background thread on 127.0.0.1) and point an upstream at it:

    [upstreams.pd]
    kind = "pagerduty"
    api = "mcp"
    url = "http://127.0.0.1:PORT/mcp"
    base_url = "http://127.0.0.1:PORT"     # the REST API (same state): where a sign-in asks who signed in
    api_key = "env:PD_KEY"                  # or auth = "oauth" with the sandbox OAuth server

Behaviour (vendor-specs/pagerduty-hosted-mcp.md):
- `POST /mcp`, Streamable HTTP, stateless, JSON replies: `tools/list` and `tools/call` work without a prior
  `initialize` and without a session header (§2, §7). The REST emulator's routes answer every other path on
  the same port, on the same state: a note added through MCP shows in `GET /incidents/{id}/notes`.
- Credentials on every request (§3.1): `Authorization: Token token=<key>` for a key of `api_keys` (key → the
  email of its user, None for an account-level key), or `Bearer <token>` that `bearer_validator(token)`
  accepts (the sandbox OAuth server's `bearer_validator`: `{"user_id", "scopes"}`). Anything else: 401
  `{"error": "invalid_token", "error_description": "Authentication required: ..."}` with `WWW-Authenticate:
  Bearer resource_metadata=".../.well-known/oauth-protected-resource/mcp"` (§3.2, observed). That document
  and `/.well-known/oauth-authorization-server` (`authorization_server`, no `registration_endpoint`) are served.
- `refuse_access = "reason"`: the account or app may not use the MCP server: every authenticated request is
  403 `{"error": {"code": 2010, "message": "Access Denied", "errors": [reason]}}` (PagerDuty's REST error body,
  which the MCP OpenAPI declares for 403).
- Scoped OAuth (§3.3): a bearer token's scopes must include the REST scope of the action (`incidents.read`,
  `incidents.write`, `users.read`, ...; classic `read`/`write` cover reads/all); else the `tools/call` is
  answered 403 with the error body naming the scope (the facts assume a 403-derived error). API keys have none.
- Tools (§4): the 18 consolidated tools, each with one argument `request` whose `action` picks the rest; the
  input schema lists `action`'s values and every field of every action, and the stand-in checks per action
  (required fields, no field of another action). Served on the emulator's state: users, incidents (list, get,
  alerts, notes), services, teams, schedules (list, get, users, on-calls), escalation policies, log entries,
  and `manage_incidents` (create, update, add_note, add_responders). Other actions answer an `isError` result
  saying the sandbox does not serve them. Results: JSON text (`{"response": ..., "response_summary": ...}`
  for lists) and the same object as structured content.
- Writes act as the key's or token's user; an account-level key has no user: writes answer an error asking for
  a user-level key (the hosted server documents no `From`).
- `log`: one entry per HTTP request (`method`, `path`, `auth` "token"/"bearer"/why refused, `user`, `rpc`,
  `tool`, `arguments`, `status`), never a credential. `calls`: (tool, arguments) of each `tools/call` run.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mcp_proxy.sandbox import mcp_stand_in
from mcp_proxy.sandbox.mcp_stand_in import Served, ToolError, send_json
from mcp_proxy.sandbox.pagerduty.state import Emulator, Problem, iso, now, parse_time
from mcp_proxy.sandbox.pagerduty_mcp_tools import ACTIONS, required_scope, tool_definitions

SANDBOX_USER_KEY = "pdmcpsandboxuserkey0123456789"  # alice's
SANDBOX_ACCOUNT_KEY = "pdmcpsandboxaccountkey0123456"  # account-level


@dataclass
class Caller:
    user_id: str | None  # None: an account-level key
    scopes: list[str] | None  # None: an API key


_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("pd_mcp_caller")  # the request's caller


class StandIn:
    """The hosted server's behaviour on one REST emulator's state."""

    def __init__(self, emulator: Emulator, bearer_validator: Callable[[str], dict | None] | None = None,
                 authorization_server: str = "https://mcp.pagerduty.com/") -> None:
        self.emulator = emulator
        self.bearer_validator = bearer_validator
        self.authorization_server = authorization_server
        self.refuse_access: str | None = None
        self.log: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # -- credentials --------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> tuple[str, Caller | None]:
        """("token"|"bearer", the caller) or (why it is refused, None)."""
        if not authorization:
            return "missing", None
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "token":
            key = value.strip().removeprefix("token=") if value.strip().startswith("token=") else None
            if not key or key not in self.emulator.api_keys:
                return "unknown key", None
            email = self.emulator.api_keys[key]
            user = self.emulator.user_by_email(email) if email else None
            return "token", Caller(user["id"] if user else None, None)
        if scheme.lower() == "bearer" and self.bearer_validator is not None:
            grant = self.bearer_validator(value.strip())
            if grant is None:
                return "unknown token", None
            return "bearer", Caller(grant.get("user_id"), list(grant.get("scopes") or []))
        return "scheme", None

    @staticmethod
    def allowed(caller: Caller, scope: str) -> bool:
        if caller.scopes is None:
            return True
        have = set(caller.scopes)
        return scope in have or "write" in have or (scope.endswith(".read") and "read" in have)

    # -- tools ----------------------------------------------------------------------------------
    def call(self, name: str, arguments: dict[str, Any], caller: Caller) -> dict[str, Any]:
        actions = ACTIONS.get(name)
        if actions is None:
            raise ToolError(f"Unknown tool {name!r}; list the tools again.")
        request = arguments.get("request")
        if not isinstance(request, dict) or set(arguments) != {"request"}:
            raise ToolError("Pass exactly one argument, `request`: an object with `action` and its fields.")
        action = request.get("action")
        if action not in actions:
            raise ToolError(f"request.action must be one of: {', '.join(actions)}.")
        fields, required = actions[action]
        missing = [f for f in required if f not in request]
        extra = [f for f in request if f != "action" and f not in fields]
        if missing or extra:
            raise ToolError(f"For action {action!r}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) +
                ([f"{', '.join(extra)} do not belong to this action"] if extra else [])) + ".")
        handler = getattr(self, f"_{name}_{action}", None)
        if handler is None:
            raise ToolError(f"The sandbox stand-in does not serve {name} action {action!r}.")
        with self.emulator.lock:
            self.calls.append((name, json.loads(json.dumps(arguments))))
            try:
                return handler(request, caller)
            except Problem as exc:
                raise ToolError(f"PagerDuty answered {exc.status}: {exc.message}"
                                + (f" ({'; '.join(exc.errors)})" if exc.errors else "")) from None

    def _actor(self, caller: Caller) -> str:
        if caller.user_id is None:
            raise ToolError("This action needs a user: use a user-level API key or a user's OAuth token.")
        return caller.user_id

    @staticmethod
    def _page(request: dict[str, Any], items: list[Any], what: str) -> dict[str, Any]:
        limit, offset = request.get("limit", 25), request.get("offset", 0)
        shown = items[offset:offset + limit]
        return {"response": shown, "response_summary": f"{len(shown)} of {len(items)} {what}",
                "more": offset + limit < len(items)}

    # browse_users
    def _browse_users_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        if caller.user_id is None:
            raise ToolError("An account-level key has no user of its own; use a user-level key.")
        return self.emulator.users[caller.user_id]

    def _browse_users_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        q = (request.get("query") or "").lower()
        teams = set(request.get("team_ids") or [])
        users = [u for u in self.emulator.users.values() if (not q or q in (u["name"] + u["email"]).lower())
                 and (not teams or teams & {t["id"] for t in u["teams"]})]
        return self._page(request, users, "users")

    # browse_incidents
    def _browse_incidents_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        items = list(self.emulator.incidents.values())
        until = parse_time(request["until"], "until") if request.get("until") else now() + timedelta(seconds=1)
        since = parse_time(request["since"], "since") if request.get("since") else until - timedelta(days=30)
        items = [i for i in items if since <= parse_time(i["created_at"], "") < until]
        for field, get in (("statuses", lambda i: i["status"]), ("urgencies", lambda i: i["urgency"]),
                           ("service_ids", lambda i: i["service"]["id"]),
                           ("priorities", lambda i: (i.get("priority") or {}).get("id"))):
            if request.get(field):
                items = [i for i in items if get(i) in request[field]]
        if request.get("team_ids"):
            items = [i for i in items if {t["id"] for t in i["teams"]} & set(request["team_ids"])]
        if request.get("request_scope") == "assigned":
            me = self._actor(caller)
            items = [i for i in items if me in {a["assignee"]["id"] for a in i["assignments"]}]
        return self._page(request, items, "incidents")

    def _browse_incidents_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self.emulator.find_incident(request["incident_id"])

    def _browse_incidents_list_alerts(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        inc = self.emulator.find_incident(request["incident_id"])
        return self._page(request, self.emulator.alerts.get(inc["id"], []), "alerts")

    def _browse_incidents_list_notes(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        inc = self.emulator.find_incident(request["incident_id"])
        return self._page(request, self.emulator.notes.get(inc["id"], []), "notes")

    # browse_services, teams, escalation policies, schedules
    def _browse_services_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        q = (request.get("query") or "").lower()
        return self._page(request, [s for s in self.emulator.services.values() if q in s["name"].lower()],
                          "services")

    def _browse_services_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self._get(self.emulator.services, request["service_id"], "Service")

    def _browse_teams_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        teams = list(self.emulator.teams.values())
        if request.get("scope") == "my":
            mine = {t["id"] for t in self.emulator.users[self._actor(caller)]["teams"]}
            teams = [t for t in teams if t["id"] in mine]
        return self._page(request, teams, "teams")

    def _browse_teams_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self._get(self.emulator.teams, request["team_id"], "Team")

    def _browse_teams_list_members(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        self._get(self.emulator.teams, request["team_id"], "Team")
        members = [{"user": self.emulator.ref("user", u["id"]), "role": "manager"}
                   for u in self.emulator.users.values() if request["team_id"] in {t["id"] for t in u["teams"]}]
        return self._page(request, members, "members")

    def _browse_escalation_policies_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self._page(request, list(self.emulator.policies.values()), "escalation policies")

    def _browse_escalation_policies_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self._get(self.emulator.policies, request["policy_id"], "Escalation policy")

    def _browse_schedules_list(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        shown = [{k: v for k, v in s.items() if k != "rotation"} for s in self.emulator.schedules.values()]
        return self._page(request, shown, "schedules")

    def _browse_schedules_get(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        schedule = self._get(self.emulator.schedules, request["schedule_id"], "Schedule")
        return {k: v for k, v in schedule.items() if k != "rotation"}

    def _browse_schedules_list_users(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        schedule = self._get(self.emulator.schedules, request["schedule_id"], "Schedule")
        return self._page(request, list(schedule["users"]), "users")

    def _browse_schedules_list_oncalls(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        at = now()
        rows = []
        for sid in request.get("schedule_ids") or list(self.emulator.schedules):
            schedule = self._get(self.emulator.schedules, sid, "Schedule")
            user = self.emulator.on_call(sid, at)
            rows.append({"schedule": self.emulator.ref("schedule", sid), "user": self.emulator.ref("user", user),
                         "escalation_policy": schedule["escalation_policies"][0] if schedule["escalation_policies"]
                         else None, "start": iso(at), "end": None})
        return self._page(request, rows, "on-call entries")

    # browse_activity
    def _browse_activity_list_log_entries(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        entries = [e for es in self.emulator.log_entries.values() for e in es]
        entries.sort(key=lambda e: e["created_at"], reverse=True)
        return self._page(request, entries, "log entries")

    # manage_incidents
    def _manage_incidents_create(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self.emulator.create_incident(request["incident"], self._actor(caller))

    def _manage_incidents_update(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        actor = self._actor(caller)
        change = dict(request["manage_request"])
        ids = change.pop("incident_ids")
        if "assignment" in change:
            change["assignments"] = [{"assignee": change.pop("assignment")}]
        updated = [self.emulator.update_incident(i, change, actor) for i in ids]
        return {"response": updated, "response_summary": f"{len(updated)} incidents updated"}

    def _manage_incidents_add_note(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return self.emulator.add_note(request["incident_id"], request["note"], self._actor(caller))

    def _manage_incidents_add_responders(self, request: dict[str, Any], caller: Caller) -> dict[str, Any]:
        inc = self.emulator.find_incident(request["incident_id"])
        targets = [t["responder_request_target"] for t in request["request"]["responder_request_targets"]]
        return {"incident": {"id": inc["id"], "type": "incident_reference", "summary": inc["summary"]},
                "requester": self.emulator.ref("user", self._actor(caller)),
                "message": request["request"]["message"], "responder_request_targets": targets}

    @staticmethod
    def _get(table: Mapping[str, dict[str, Any]], oid: str, what: str) -> dict[str, Any]:
        if oid not in table:
            raise Problem(404, "Not Found", 2100, [f"{what} {oid} not found"])
        return table[oid]


# -- HTTP ---------------------------------------------------------------------------------------
def _mcp_server(stand_in: StandIn) -> Any:
    def run(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        result = stand_in.call(name, arguments, _CALLER.get())  # the caller the gate let in
        return json.dumps(result), result

    return mcp_stand_in.mcp_server("PagerDuty MCP Server", tool_definitions(), run)


class _Gate:
    """ASGI: the REST emulator for REST paths; for `/mcp`, credentials, account refusal, scopes, and the log."""

    def __init__(self, mcp_app: Any, rest_app: Any, stand_in: StandIn) -> None:
        self.mcp_app = mcp_app
        self.rest_app = rest_app
        self.stand_in = stand_in
        self.state = mcp_app.state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self.mcp_app(scope, receive, send)
        if scope["type"] != "http":
            return None
        path = scope["path"]
        if path.startswith("/.well-known/"):
            return await self._metadata(scope, send)
        if path.rstrip("/") != "/mcp":
            return await self.rest_app(scope, receive, send)
        headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in scope["headers"]}
        body = await mcp_stand_in.read_body(receive)
        if body is None:
            return None
        rpc = mcp_stand_in.rpc_message(body)
        how, caller = self.stand_in.authenticate(headers.get("authorization"))
        entry: dict[str, Any] = {"method": scope["method"], "path": path, "auth": how,
                                 "user": caller.user_id if caller else None, "rpc": rpc.get("method"),
                                 "tool": None, "arguments": None, "status": None}
        params: dict[str, Any] = rpc["params"] if isinstance(rpc.get("params"), dict) else {}
        if rpc.get("method") == "tools/call":
            entry["tool"], entry["arguments"] = params.get("name"), params.get("arguments")
        self.stand_in.log.append(entry)
        logged = mcp_stand_in.noting_status(send, entry)
        if caller is None:
            base = _base_url(scope, headers)
            return await send_json(logged, 401, {"error": "invalid_token", "error_description":
                                                 "Authentication required: the token is invalid or has expired."},
                                   [(b"www-authenticate", f'Bearer error="invalid_token", resource_metadata="{base}'
                                     f'/.well-known/oauth-protected-resource/mcp"'.encode())])
        if self.stand_in.refuse_access:
            return await send_json(logged, 403, {"error": {"code": 2010, "message": "Access Denied",
                                                           "errors": [self.stand_in.refuse_access]}})
        if entry["tool"] in ACTIONS:
            request = (entry["arguments"] or {}).get("request") if isinstance(entry["arguments"], dict) else None
            action = request.get("action") if isinstance(request, dict) else None
            if isinstance(action, str) and action in ACTIONS[entry["tool"]]:
                needed = required_scope(entry["tool"], action)
                if not self.stand_in.allowed(caller, needed):
                    return await send_json(logged, 403, {"error": {"code": 2010, "message": "Access Denied", "errors": [
                        f"The token is missing the scope {needed} needed for {entry['tool']} {action}."]}})
        token = _CALLER.set(caller)
        try:
            await self.mcp_app(scope, mcp_stand_in.replaying(body, receive), logged)
        finally:
            _CALLER.reset(token)
        return None

    async def _metadata(self, scope: dict, send: Any) -> None:
        headers = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in scope["headers"]}
        base = _base_url(scope, headers)
        if scope["path"] == "/.well-known/oauth-protected-resource/mcp":
            return await send_json(send, 200, {"resource": f"{base}/mcp",
                                               "authorization_servers": [self.stand_in.authorization_server],
                                               "bearer_methods_supported": ["header"]})
        if scope["path"] == "/.well-known/oauth-authorization-server":
            issuer = self.stand_in.authorization_server.rstrip("/")
            return await send_json(send, 200, {"issuer": issuer, "authorization_endpoint": f"{issuer}/oauth/authorize",
                                               "token_endpoint": f"{issuer}/oauth/token",
                                               "response_types_supported": ["code"],
                                               "code_challenge_methods_supported": ["S256"]})
        return await send_json(send, 404, {"error": {"code": 2100, "message": "Not Found"}})


def _base_url(scope: dict, headers: dict[str, str]) -> str:
    return f"http://{headers.get('host', '127.0.0.1')}"


def create_app(stand_in: StandIn) -> Any:
    """The ASGI app: `/mcp` the hosted server, `/.well-known/...` its OAuth documents, the rest the REST API."""
    from mcp_proxy.sandbox.pagerduty.app import build_app

    mcp_app = _mcp_server(stand_in).streamable_http_app(stateless_http=True, json_response=True)
    mcp_app.state.stand_in = stand_in
    return _Gate(mcp_app, build_app(stand_in.emulator, stand_in.bearer_validator), stand_in)


@dataclass
class Sandbox(Served):
    """A running stand-in (`url`: for the upstream's `url`); `base_url`: the REST API on the same state."""

    base_url: str
    stand_in: StandIn

    @property
    def emulator(self) -> Emulator:
        return self.stand_in.emulator


def start(api_keys: Mapping[str, str | None] | None = None, *,
          bearer_validator: Callable[[str], dict | None] | None = None, authorization_server: str | None = None,
          port: int = 0, extra_keys: Iterable[tuple[str, str | None]] = ()) -> Sandbox:
    """Serve a seeded stand-in on 127.0.0.1:port (0: any free port) from a background thread."""
    from mcp_proxy.sandbox.asgi_thread import serve_in_thread

    keys = dict(api_keys if api_keys is not None else {SANDBOX_USER_KEY: "alice@example.com",
                                                        SANDBOX_ACCOUNT_KEY: None})
    keys.update(extra_keys)
    stand_in = StandIn(Emulator(keys), bearer_validator, authorization_server or "https://mcp.pagerduty.com/")
    server = serve_in_thread(create_app(stand_in), port=port)
    return Sandbox(f"{server.url}/mcp", server, base_url=server.url, stand_in=stand_in)
