"""The JSM Operations emulator over real HTTP for the tests: connectors pointed at it, and a check of every
exchange it saw against Atlassian's OpenAPI document (../shared/vendor-specs/jsm-ops.openapi.json; a gzip'd
copy is kept in tests/jsm/ for a checkout on its own)."""

from __future__ import annotations

import gzip
import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.config.secrets import SecretRef
from mcp_proxy.connectors.base import Connector, Credential
from mcp_proxy.connectors.opsgenie import build
from mcp_proxy.sandbox.jsm import Emulator, create_app, seed
from tests._support.emulators import EmulatorSandbox, served_and_checked
from tests.pagerduty.spec_check import OpenApiChecker, _nullable

SPEC_NAME = "jsm-ops.openapi.json"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "vendor-specs" / SPEC_NAME
COPY = Path(__file__).resolve().parents[1] / "jsm" / f"{SPEC_NAME}.gz"
PREFIX = "/jsm/ops"  # the spec's server URL ends with it; its paths start at /api/{cloudId}
# Statuses the narrative lists for every operation, with the generic bodies (not declared per operation).
GENERIC = {400: "ErrorResponses", 401: "UnauthorizedErrorResponse", 403: "ErrorResponses", 404: "ErrorResponses",
           422: "ErrorResponses", 429: "ErrorResponses"}


def spec_text() -> str:
    if SHARED.exists():
        return SHARED.read_text(encoding="utf-8")
    return gzip.decompress(COPY.read_bytes()).decode("utf-8")


class JsmChecker(OpenApiChecker):
    """The OpenAPI checks of tests/pagerduty/spec_check.py, for the JSM Ops document (no PagerDuty fixes)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        # A quirk of the document: the on-call answers are `oneOf` two schemas that require nothing, so every
        # object matches both and `oneOf` can never hold; read it as `anyOf` (extra properties are still caught).
        for name in ("OnCallResponse", "NextOnCallResponse"):
            schema = spec["components"]["schemas"][name]
            schema["anyOf"] = schema.pop("oneOf")
        self.spec = _nullable(spec)
        self._templates = []
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            literals = len([s for s in template.split("/") if s and "{" not in s])
            self._templates.append((literals, template, re.compile(pattern), item))
        self._templates.sort(key=lambda t: (-t[0], t[1]))
        self._validators = {}

    @classmethod
    def load(cls) -> JsmChecker:
        return cls(json.loads(spec_text()))

    def check_request(self, method: str, path: str, query: str, headers: dict[str, str], body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template}"
        problems: list[str] = []
        declared = {p["name"]: p for p in op.parameters if p.get("in") == "query"}
        seen = set()
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name not in declared:
                problems.append(f"{where}: undeclared query parameter {name!r}")
                continue
            if name in seen:
                problems.append(f"{where}: query {name} given twice")
            seen.add(name)
            problems += [f"{where}: query {name}: {e}" for e in self._query_value(declared[name], value)]
            schema = self.resolve(declared[name].get("schema", {}))
            if schema.get("type") == "integer" and re.fullmatch(r"-?\d+", value):
                if "minimum" in schema and int(value) < schema["minimum"]:
                    problems.append(f"{where}: query {name}={value} below {schema['minimum']}")
                if "maximum" in schema and int(value) > schema["maximum"]:
                    problems.append(f"{where}: query {name}={value} above {schema['maximum']}")
        for p in declared.values():
            if p.get("required") and p["name"] not in seen:
                problems.append(f"{where}: missing required query parameter {p['name']!r}")
        body_spec = self.resolve(op.spec.get("requestBody"))
        if body_spec is None:
            return problems + ([f"{where}: sends a body, the spec declares none"] if body is not None else [])
        if body is None:
            return problems + ([f"{where}: the required body is missing"] if body_spec.get("required") else [])
        schema = body_spec["content"]["application/json"]["schema"]
        return problems + [f"{where}: body {e}" for e in self.errors(schema, body)]

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template} -> {status}"
        responses = op.spec.get("responses", {})
        if str(status) in responses:
            schema = self.resolve(responses[str(status)]).get("content", {}).get("application/json", {}).get("schema")
        elif status in GENERIC:
            schema = {"$ref": f"#/components/schemas/{GENERIC[status]}"}
        else:
            return [f"{where}: status not declared"]
        if schema is None:
            return [] if body in (None, "", {}) else [f"{where}: a body where the spec declares none"]
        problems = [f"{where}: {e}" for e in self.errors(schema, body)]
        if status == 401 and not (isinstance(body, dict) and isinstance(body.get("code"), int) and body.get("message")):
            problems.append(f"{where}: a 401 body is {{code, message}}")
        elif status >= 400 and status != 401 and not (isinstance(body, dict) and body.get("errors")):
            problems.append(f"{where}: an error body is {{errors: [{{title, code}}]}}")
        return problems


def check_exchanges(checker: JsmChecker, emulator: Emulator) -> list[str]:
    problems: list[str] = []
    for entry in emulator.log:
        path = entry["path"]
        if path == "/_edge/tenant_info":
            if entry["method"] != "GET" or entry["authorization"] or set(entry["response"]) != {"cloudId"}:
                problems.append(f"tenant_info exchange not as documented: {entry}")
            continue
        if path == "/oauth/token/accessible-resources":
            ok = entry["status"] != 200 or all(set(s) == {"id", "name", "url", "scopes", "avatarUrl"}
                                               for s in entry["response"])
            problems += [] if ok else [f"accessible-resources answer not as documented: {entry['response']}"]
            continue
        if not path.startswith(PREFIX + "/api/"):
            problems.append(f"{entry['method']} {path}: not under {PREFIX}/api/{{cloudId}}")
            continue
        if entry["status"] != 401 and entry["authorization"] not in ("Basic", "Bearer"):
            problems.append(f"{entry['method']} {path}: sent without Basic or Bearer auth")
        api_path = path[len(PREFIX):]
        body = json.loads(entry["body"]) if entry["body"] else None
        problems += checker.check_request(entry["method"], api_path, entry["query"], {}, body)
        problems += checker.check_response(entry["method"], api_path, entry["status"], entry["response"])
    return problems


def upstream_config(base_url: str | None, **overrides: Any) -> UpstreamConfig:
    values: dict[str, Any] = dict(key="og", kind="opsgenie", api="jsm", auth="basic", base_url=base_url,
                                  email=seed.EMAIL, cloud_id=seed.CLOUD_ID, call_timeout=4.0, max_retries=3,
                                  api_token=SecretRef("keyring", "jsm", "upstreams.og.api_token"))
    values.update(overrides)
    return UpstreamConfig(**values)


def token_provider(token: str = seed.API_TOKEN, scheme: str = "api_token"):
    async def provide() -> Credential:
        return Credential(scheme, token)
    return provide


@dataclass
class Sandbox(EmulatorSandbox):
    emulator: Emulator

    def connector(self, token: str = seed.API_TOKEN, *, scheme: str = "api_token", **cfg: Any) -> Connector:
        return self.keep(build(upstream_config(cfg.pop("base_url", self.url), **cfg), token_provider(token, scheme)))


def serve(checker: JsmChecker, **options: Any) -> AbstractContextManager[Sandbox]:
    return served_and_checked(create_app(**options), Sandbox, lambda box: check_exchanges(checker, box.emulator),
                              "JSM Ops")
