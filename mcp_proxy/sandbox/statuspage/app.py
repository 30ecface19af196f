"""HTTP face of the Statuspage emulator: the `/v1` prefix and `.json` suffix, `Authorization:
OAuth <key>`, the 420/429 rate limit with Retry-After, forced errors, `{"message": ...}` error
bodies, and the request/response log."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_proxy.sandbox.statuspage.handlers import ROUTES, Call
from mcp_proxy.sandbox.statuspage.state import NOT_FOUND, Emulator, Problem

PREFIX = "/v1"


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


_TABLE = [(method, template, _compile(template), handler) for method, template, handler in ROUTES]


def api_path(raw: str) -> str:
    """`/v1/pages/x/incidents.json` → `/pages/x/incidents` (the spec's form)."""
    path = raw[len(PREFIX):] if raw.startswith(PREFIX + "/") else raw
    return path[:-5] if path.endswith(".json") else path


def _route(method: str, path: str) -> tuple[Any, dict[str, str]]:
    allowed = False
    # Literal segments win over parameters (/incidents/unresolved is not /incidents/{id}).
    for m, _template, pattern, handler in sorted(_TABLE, key=lambda r: r[1].count("{")):
        match = pattern.match(path)
        if match:
            if m == method:
                return handler, match.groupdict()
            allowed = True
    raise Problem(405 if allowed else 404, "Method not allowed" if allowed else NOT_FOUND)


def _authenticate(emu: Emulator, request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "oauth" or key not in emu.api_keys:
        raise Problem(401, "Could not authenticate")
    return key


def _throttle(emu: Emulator, key: str) -> None:
    """A rolling window per key: at most rate_per_second × rate_window requests in rate_window seconds."""
    if not emu.rate_limit:
        return
    at = time.monotonic()
    hits = emu.hits[key]
    while hits and hits[0] <= at - emu.rate_window:
        hits.popleft()
    if len(hits) >= max(1, int(emu.rate_per_second * emu.rate_window)):
        wait = max(1, math.ceil(hits[0] + emu.rate_window - at))
        raise Problem(emu.rate_limit_status, "Rate limit exceeded; slow down", {"Retry-After": str(wait)})
    hits.append(at)


def build_app(emu: Emulator) -> Starlette:
    async def endpoint(request: Request) -> Response:
        raw_body = (await request.body()).decode("utf-8", "replace")
        path = api_path(request.url.path)
        method = request.method.upper()
        headers: dict[str, str] = {}
        status: int
        payload: Any
        try:
            if not request.url.path.startswith(PREFIX + "/"):
                raise Problem(404, NOT_FOUND)
            with emu.lock:
                key = _authenticate(emu, request)
                _throttle(emu, key)
                if emu.forced:
                    raise emu.forced.popleft()
            handler, params = _route(method, path)
            body = None
            if raw_body:
                if "json" not in request.headers.get("content-type", ""):
                    raise Problem(400, "This emulator accepts JSON bodies only (Content-Type: application/json)")
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise Problem(400, "The body is not valid JSON") from None
            call = Call(params, dict(request.query_params), body)
            with emu.lock:
                status, payload = await handler(emu, call)
                payload = json.loads(json.dumps(payload))  # a snapshot: later changes must not alter the log
        except Problem as problem:
            status, payload, headers = problem.status, {"message": problem.message}, problem.headers
        with emu.lock:
            emu.log.append({
                "method": method, "raw_path": request.url.path, "path": path, "query": request.url.query,
                "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
                "body": raw_body, "status": status, "response_headers": headers, "response": payload})
        if status == 204:
            return Response(status_code=204, headers=headers)
        return Response(json.dumps(payload), status, headers=headers, media_type="application/json")

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
    app.state.emulator = emu
    return app
