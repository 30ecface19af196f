"""A local stand-in for UptimeObserver's MCP server: Streamable HTTP at `/mcp`.

Start it with `start()` (a background thread on 127.0.0.1) and point an upstream at `sandbox.url`:

    [upstreams.uo]
    kind = "uptimeobserver"
    url = "http://127.0.0.1:PORT/mcp"
    api_key = "env:UO_KEY"

Behaviour (what the vendor documents, and what it leaves open, decided here):
- Keys are MCP API keys starting `uo_`, sent in `X-API-Key: uo_...` or `Authorization: Bearer uo_...`.
  Every HTTP request (POST, the GET stream, DELETE) is checked; failures are 401 with
  `{"error": "unauthorized", "message": ...}` (not a JSON-RPC error, as a gateway in front of an MCP
  server answers), for: no key; a request carrying both headers, or one header twice (the vendor
  says "one header only"; 401 rather than 400 because it is a credential refusal, and the proxy's
  advice for 401 covers it); an `Authorization` scheme other than Bearer; a web-app JWT; a key
  without the `uo_` prefix; an unknown key; a revoked key (`revoke(key)`: disabled at once, as the
  vendor's Revoke button does, also for sessions already open).
- The vendor publishes no tool list; this one is small and plausible: `list_monitors`,
  `get_monitor`, `list_incidents`, `get_status_summary` (read-only) and `pause_monitor`,
  `resume_monitor` (idempotent writes), with closed input schemas. Arguments that do not fit the
  schema, and unknown monitor ids, are `isError` results saying what to fix.
- State is per emulator, shared by all sessions: pausing a monitor shows in every later read;
  `emulator.monitor_down(id, cause)` / `monitor_up(id)` open and resolve incidents (for the demo).
- `emulator.log`: one entry per HTTP request: `method`, `path`, `key_headers` (the names of the key
  headers present, e.g. `["x-api-key"]`), `auth` ("ok" or why it was refused), `rpc` (the JSON-RPC
  method, for POSTs), `status`. The key itself is never logged. `emulator.calls`: (tool, arguments).

Seed: monitors `mon_api01` API health (http, up), `mon_web01` Website (http, up), `mon_db01` Database
port (port, down since 14 minutes ago: ongoing incident `inc_0001`), `mon_dns01` DNS resolver (ping,
paused), `mon_kw01` Checkout page keyword (keyword, up); `inc_0002` on `mon_api01`, resolved
yesterday after 4 minutes. Default key `SANDBOX_KEY`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_proxy.sandbox import mcp_stand_in
from mcp_proxy.sandbox.mcp_stand_in import Served, ToolError, send_json

SANDBOX_KEY = "uo_sandbox_0123456789abcdef0123456789abcdef"
MONITOR_ID = {"type": "string", "pattern": "^mon_[a-z0-9]{2,20}$", "description": "A monitor id, e.g. mon_api01."}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 50, "description": "At most this many rows."}


def _tool(name: str, title: str, description: str, properties: dict[str, Any], required: list[str],
          read_only: bool) -> dict[str, Any]:
    return {"name": name, "title": title, "description": description,
            "inputSchema": {"type": "object", "properties": properties, "required": required,
                            "additionalProperties": False},
            "annotations": {"title": title, "readOnlyHint": read_only, "destructiveHint": False,
                            "idempotentHint": True, "openWorldHint": True}}


TOOLS = [
    _tool("list_monitors", "List monitors",
          "List the account's uptime monitors with their current status. Use it to find a monitor's id or "
          "to see what is down. Returns id, name, type, target, status and 24-hour uptime per monitor.",
          {"status": {"type": "string", "enum": ["up", "down", "paused"]},
           "type": {"type": "string", "enum": ["http", "keyword", "ping", "port"]}, "limit": LIMIT}, [], True),
    _tool("get_monitor", "Get a monitor",
          "One monitor in detail: target, check interval, status, uptime over 24 hours and 30 days, and "
          "its ongoing incident if any.", {"monitor_id": MONITOR_ID}, ["monitor_id"], True),
    _tool("list_incidents", "List incidents",
          "Downtime incidents, newest first, optionally for one monitor or by status. Returns id, monitor, "
          "status, start, end, duration and the cause the checks saw.",
          {"status": {"type": "string", "enum": ["ongoing", "resolved"]}, "monitor_id": MONITOR_ID, "limit": LIMIT},
          [], True),
    _tool("get_status_summary", "Status summary",
          "A one-glance summary: how many monitors are up, down and paused, ongoing incidents, and the "
          "account's average uptime over 24 hours.", {}, [], True),
    _tool("pause_monitor", "Pause a monitor",
          "Stop checking a monitor (no alerts while paused), e.g. during planned work. Pausing a paused "
          "monitor changes nothing. Returns the monitor.", {"monitor_id": MONITOR_ID}, ["monitor_id"], False),
    _tool("resume_monitor", "Resume a monitor",
          "Start checking a paused monitor again. Returns the monitor.", {"monitor_id": MONITOR_ID},
          ["monitor_id"], False),
]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Emulator:
    """The account's state (keys, monitors, incidents) and the request log."""

    def __init__(self, api_keys: Iterable[str] = (SANDBOX_KEY,), *, seed: bool = True) -> None:
        self._lock = threading.Lock()  # tests mutate state from their thread while the server runs in another
        self.keys: dict[str, str] = {k: "active" for k in api_keys}  # key -> "active" | "revoked"
        self.log: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.monitors: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        if seed:
            self._seed(datetime.now(UTC))

    # -- keys ------------------------------------------------------------------
    def issue(self, key: str) -> None:
        with self._lock:
            self.keys[key] = "active"

    def revoke(self, key: str) -> None:
        """Disable a key at once (the vendor's Revoke); sessions opened with it are refused from now on."""
        with self._lock:
            if key not in self.keys:
                raise KeyError("no such key")
            self.keys[key] = "revoked"

    def check(self, headers: list[tuple[str, str]]) -> str:
        """"ok", or why the request's credentials are refused."""
        found = [(n, v) for n, v in headers if n in ("x-api-key", "authorization")]
        if not found:
            return "missing"
        if len(found) > 1:
            return "both"
        name, value = found[0]
        if name == "authorization":
            scheme, _, value = value.partition(" ")
            if scheme.lower() != "bearer":
                return "scheme"
        key = value.strip()
        if key.startswith("ey") and key.count(".") == 2:
            return "jwt"
        if not key.startswith("uo_"):
            return "prefix"
        with self._lock:
            state = self.keys.get(key)
        return {"active": "ok", "revoked": "revoked"}.get(state or "", "unknown")

    # -- state -----------------------------------------------------------------
    def _seed(self, now: datetime) -> None:
        for mid, name, kind, target, status, up24 in (
            ("mon_api01", "API health", "http", "https://api.example.com/health", "up", 99.98),
            ("mon_web01", "Website", "http", "https://www.example.com/", "up", 100.0),
            ("mon_db01", "Database port", "port", "db.example.com:5432", "down", 98.95),
            ("mon_dns01", "DNS resolver", "ping", "10.0.0.53", "paused", 100.0),
            ("mon_kw01", "Checkout page keyword", "keyword", "https://shop.example.com/checkout", "up", 99.9),
        ):
            self.monitors[mid] = {"id": mid, "name": name, "type": kind, "target": target, "status": status,
                                  "interval_seconds": 60, "uptime_24h": up24, "uptime_30d": min(100.0, up24 + 0.01)}
        self.monitors["mon_kw01"]["keyword"] = "Pay now"
        self.incidents["inc_0002"] = {"id": "inc_0002", "monitor_id": "mon_api01", "status": "resolved",
                                      "started_at": _iso(now - timedelta(days=1)),
                                      "resolved_at": _iso(now - timedelta(days=1) + timedelta(minutes=4)),
                                      "duration_seconds": 240, "cause": "HTTP 503 Service Unavailable"}
        self.incidents["inc_0001"] = {"id": "inc_0001", "monitor_id": "mon_db01", "status": "ongoing",
                                      "started_at": _iso(now - timedelta(minutes=14)), "resolved_at": None,
                                      "duration_seconds": None, "cause": "Connection refused"}

    def monitor_down(self, monitor_id: str, cause: str = "Connection timed out") -> str:
        """The checks start failing: the monitor is down and an incident opens. Returns its id."""
        with self._lock:
            monitor = self.monitors[monitor_id]
            monitor["status"] = "down"
            iid = f"inc_{len(self.incidents) + 1:04d}"
            self.incidents[iid] = {"id": iid, "monitor_id": monitor_id, "status": "ongoing",
                                   "started_at": _iso(datetime.now(UTC)), "resolved_at": None,
                                   "duration_seconds": None, "cause": cause}
            return iid

    def monitor_up(self, monitor_id: str) -> None:
        with self._lock:
            now = datetime.now(UTC)
            for incident in self._ongoing(monitor_id):
                started = datetime.fromisoformat(incident["started_at"].replace("Z", "+00:00"))
                incident.update(status="resolved", resolved_at=_iso(now),
                                duration_seconds=int((now - started).total_seconds()))
            if self.monitors[monitor_id]["status"] == "down":
                self.monitors[monitor_id]["status"] = "up"

    def _ongoing(self, monitor_id: str) -> list[dict[str, Any]]:
        return [i for i in self.incidents.values() if i["monitor_id"] == monitor_id and i["status"] == "ongoing"]

    def _monitor(self, monitor_id: str) -> dict[str, Any]:
        if monitor_id not in self.monitors:
            raise ToolError(f"No monitor with id {monitor_id!r}. Call list_monitors to see the ids.")
        return self.monitors[monitor_id]

    # -- tools -------------------------------------------------------------------
    def call(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run one tool: (text, structured content). Raises ToolError."""
        import jsonschema

        tool = next((t for t in TOOLS if t["name"] == name), None)
        if tool is None:
            raise ToolError(f"Unknown tool {name!r}; list the tools again.")
        problem = next(iter(jsonschema.Draft202012Validator(tool["inputSchema"]).iter_errors(args)), None)
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "arguments"
            raise ToolError(f"Invalid arguments ({where}): {problem.message}.")
        with self._lock:
            self.calls.append((name, dict(args)))
            return getattr(self, f"_t_{name}")(args)

    def _t_list_monitors(self, a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        rows = [m for m in self.monitors.values()
                if a.get("status") in (None, m["status"]) and a.get("type") in (None, m["type"])]
        shown = [{k: m[k] for k in ("id", "name", "type", "target", "status", "uptime_24h")}
                 for m in rows[:a.get("limit", 50)]]
        lines = [f"- {m['id']} {m['name']} ({m['type']}): {m['status']}, {m['uptime_24h']}% over 24 h" for m in shown]
        return "\n".join([f"{len(shown)} of {len(rows)} monitors:", *lines]), {"monitors": shown, "total": len(rows)}

    def _t_get_monitor(self, a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        monitor = dict(self._monitor(a["monitor_id"]))
        ongoing = self._ongoing(monitor["id"])
        monitor["ongoing_incident"] = dict(ongoing[0]) if ongoing else None
        text = (f"{monitor['name']} ({monitor['id']}, {monitor['type']} {monitor['target']}, every "
                f"{monitor['interval_seconds']} s): {monitor['status']}; uptime {monitor['uptime_24h']}% over 24 h, "
                f"{monitor['uptime_30d']}% over 30 days")
        if ongoing:
            text += f"; down since {ongoing[0]['started_at']} ({ongoing[0]['cause']})"
        return text, monitor

    def _t_list_incidents(self, a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if "monitor_id" in a:
            self._monitor(a["monitor_id"])
        rows = sorted((i for i in self.incidents.values()
                       if a.get("status") in (None, i["status"]) and a.get("monitor_id") in (None, i["monitor_id"])),
                      key=lambda i: i["started_at"], reverse=True)[:a.get("limit", 50)]
        lines = [f"- {i['id']} {self.monitors[i['monitor_id']]['name']}: {i['status']} since {i['started_at']} "
                 f"({i['cause']})" for i in rows]
        return "\n".join([f"{len(rows)} incidents:", *lines]), {"incidents": [dict(i) for i in rows]}

    def _t_get_status_summary(self, _a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        counts = {s: sum(1 for m in self.monitors.values() if m["status"] == s) for s in ("up", "down", "paused")}
        ongoing = sum(1 for i in self.incidents.values() if i["status"] == "ongoing")
        checked = [m["uptime_24h"] for m in self.monitors.values() if m["status"] != "paused"]
        uptime = round(sum(checked) / len(checked), 2) if checked else None
        summary = {"monitors": {"total": len(self.monitors), **counts}, "ongoing_incidents": ongoing,
                   "average_uptime_24h": uptime}
        text = (f"{len(self.monitors)} monitors: {counts['up']} up, {counts['down']} down, {counts['paused']} paused; "
                f"{ongoing} ongoing incidents; average uptime {uptime}% over 24 h")
        return text, summary

    def _t_pause_monitor(self, a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        monitor = self._monitor(a["monitor_id"])
        was = monitor["status"]
        monitor["status"] = "paused"
        return (f"{monitor['name']} is paused" + (" (it already was)" if was == "paused" else "")
                + "; no checks or alerts until it is resumed", dict(monitor))

    def _t_resume_monitor(self, a: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        monitor = self._monitor(a["monitor_id"])
        if monitor["status"] == "paused":
            monitor["status"] = "down" if self._ongoing(monitor["id"]) else "up"
        return f"{monitor['name']} is being checked again: {monitor['status']}", dict(monitor)


REFUSALS = {
    "missing": "No API key: send an MCP API key (uo_...) in X-API-Key or Authorization: Bearer.",
    "both": "Send the API key in one header only: X-API-Key or Authorization: Bearer, not both.",
    "scheme": "Use Authorization: Bearer uo_... (or X-API-Key).",
    "jwt": "Web-app login tokens (JWT) are not accepted; create an MCP API key under Integrations > MCP.",
    "prefix": "Invalid API key: MCP API keys start with uo_; send the whole key, prefix included.",
    "unknown": "Invalid API key: it was mistyped, rotated or never existed.",
    "revoked": "This API key has been revoked; create a new one under Integrations > MCP.",
}


class _KeyGate:
    """ASGI wrapper: checks the key on every HTTP request and logs it (without the key)."""

    state: Any  # the inner app's, like the other emulators' app.state.emulator

    def __init__(self, app: Any, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in scope["headers"]]
        body = await mcp_stand_in.read_body(receive)
        if body is None:
            return
        entry: dict[str, Any] = {"method": scope["method"], "path": scope["path"],
                                 "rpc": mcp_stand_in.rpc_message(body).get("method"),
                                 "key_headers": [n for n, _ in headers if n in ("x-api-key", "authorization")],
                                 "auth": self.emulator.check(headers), "status": None}
        self.emulator.log.append(entry)
        logged = mcp_stand_in.noting_status(send, entry)
        if entry["auth"] != "ok":
            await send_json(logged, 401, {"error": "unauthorized", "message": REFUSALS[entry["auth"]]})
            return
        await self.app(scope, mcp_stand_in.replaying(body, receive), logged)


def create_app(emulator: Emulator | None = None) -> Any:
    """The ASGI app; `app.state.emulator` is its Emulator."""
    emulator = emulator or Emulator()
    inner = mcp_stand_in.mcp_server("uptimeobserver", TOOLS, emulator.call).streamable_http_app()
    inner.state.emulator = emulator
    gate = _KeyGate(inner, emulator)
    gate.state = inner.state
    return gate


@dataclass
class Sandbox(Served):
    """A running emulator (`url`: for the upstream's `url`)."""

    emulator: Emulator

    def revoke(self, key: str) -> None:
        self.emulator.revoke(key)


def start(api_keys: Iterable[str] = (SANDBOX_KEY,), *, port: int = 0) -> Sandbox:
    """Serve a seeded emulator on 127.0.0.1:port (0 = any free port) from a background thread."""
    from mcp_proxy.sandbox.asgi_thread import serve_in_thread

    emulator = Emulator(api_keys)
    server = serve_in_thread(create_app(emulator), port=port)
    return Sandbox(f"{server.url}/mcp", server, emulator=emulator)
