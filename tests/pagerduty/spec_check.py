"""A small OpenAPI 3.0 checker for the PagerDuty REST spec: is this request (and its response)
what the spec describes?

Finds the operation by method and path template (literal segments win, so /users/me is not
/users/{id}), checks query parameters (declared, `name[]` arrays one item per value, `sort_by`
comma-separated, enums, integers, booleans, date-times, required ones), the Accept, From and
Content-Type headers, the JSON body against its schema (plus: no undeclared properties), and
the response status and body. `$ref`s are JSON pointers into the spec (`~1` = `/`) and resolved
by jsonschema against the whole document; OpenAPI's `nullable` becomes a JSON-Schema null type.

The spec has a few errors of its own; SPEC_FIXES corrects them (each with its reason) in the
checker's copy, so the emulator can answer as the real API does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.vendor_specs import spec_text

SPEC_NAME = "pagerduty-rest.openapi.json"
# Error statuses PagerDuty documents for every endpoint (developer docs, "Errors"); many operations
# do not list them all (PUT /incidents/{id} omits 400, the status of "already resolved" and of a
# missing From), so they are checked against the generic error schema.
GENERIC_ERROR_STATUSES = {400, 401, 402, 403, 404, 429}
GENERIC_ERROR = "#/components/responses/Conflict/content/application~1json/schema"
# A success status the spec gets wrong: GET overrides answers 200 (the spec says 201).
STATUS_ALIASES = {("GET", "/schedules/{id}/overrides", 200): "201"}


def _pointer(doc: Any, ref: str) -> Any:
    node = doc
    for part in ref.lstrip("#/").split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _fix_ack_type(spec: dict[str, Any]) -> None:
    """AcknowledgeLogEntry says `acknowledgement_log_entry`; LogEntry's enum and the API say
    `acknowledge_log_entry`, so as published no acknowledge entry can validate."""
    _pointer(spec, "#/components/schemas/AcknowledgeLogEntry/allOf/1/properties/type")["enum"] = [
        "acknowledge_log_entry"]


def _fix_channel(spec: dict[str, Any]) -> None:
    """Channel's oneOf alternatives have no required fields that tell them apart, so any channel
    matches several and fails oneOf; they are alternatives in the anyOf sense."""
    channel = spec["components"]["schemas"]["Channel"]
    channel["anyOf"] = channel.pop("oneOf")


def _fix_incident_body(spec: dict[str, Any]) -> None:
    """IncidentBody.details is typed object, but the spec's own createIncident example (and the
    API) use a string; and IncidentBody requires `type` (`incident_body`) without declaring it."""
    body = spec["components"]["schemas"]["IncidentBody"]
    body["properties"]["type"] = {"type": "string", "enum": ["incident_body"]}
    details = body["properties"]["details"]
    details.pop("type", None)
    details["anyOf"] = [{"type": "object"}, {"type": "string"}]


def _fix_priority_filter(spec: dict[str, Any]) -> None:
    """GET /incidents filters by `priority_ids[]` (PagerDuty's own MCP server uses it; vendors.md
    §3.1) although the spec does not declare it."""
    spec["paths"]["/incidents"]["get"]["parameters"].append({
        "name": "priority_ids[]", "in": "query", "explode": True,
        "schema": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}})


SPEC_FIXES: list[Callable[[dict[str, Any]], None]] = [_fix_ack_type, _fix_channel, _fix_incident_body,
                                                      _fix_priority_filter]


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.get("nullable") is True:
            if isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = [*node["enum"], None]
            if "type" not in node and any(k in node for k in ("allOf", "oneOf", "anyOf", "$ref")):
                node = {"anyOf": [{"type": "null"}, {k: v for k, v in node.items() if k != "nullable"}]}
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


class Operation:
    def __init__(self, method: str, template: str, spec: dict[str, Any], parameters: list[dict[str, Any]]) -> None:
        self.method, self.template, self.spec, self.parameters = method, template, spec, parameters


class OpenApiChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        for fix in SPEC_FIXES:
            fix(spec)
        self.spec = _nullable(spec)
        self._templates = []
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            literals = len([s for s in template.split("/") if s and "{" not in s])
            self._templates.append((literals, template, re.compile(pattern), item))
        self._templates.sort(key=lambda t: (-t[0], t[1]))
        self._validators: dict[str, Any] = {}

    @classmethod
    def load(cls) -> OpenApiChecker:
        return cls(json.loads(spec_text(SPEC_NAME)))

    # -- schema validation ---------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = _pointer(self.spec, node["$ref"])
        return node

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            import jsonschema

            checker = jsonschema.FormatChecker(formats=())

            @checker.checks("date-time", raises=ValueError)
            def _date_time(value: object) -> bool:
                if isinstance(value, str):
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                return True

            root = {"components": self.spec["components"], "allOf": [schema]}
            self._validators[key] = jsonschema.Draft4Validator(root, format_checker=checker)
        return self._validators[key]

    def errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        found = []
        for e in self._validator(schema).iter_errors(value):
            context = "; ".join(sorted({c.message[:160] for c in e.context}))[:600] if e.context else ""
            found.append(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
                         + (f" ({context})" if context else ""))
        return found + [f"{at or '<root>'}: undeclared property {key!r}" for at, key in self._undeclared(schema,
                                                                                                            value, "")]

    def _props(self, schema: Any, value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Declared properties (through $ref, allOf, and the oneOf/anyOf alternatives the value
        matches), and whether the schema explicitly allows others (`additionalProperties`)."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}, True
        props: dict[str, Any] = dict(schema.get("properties", {}))
        explicit = schema.get("additionalProperties", False) is not False
        alternatives = schema.get("oneOf", []) + schema.get("anyOf", [])
        matching = [a for a in alternatives if self._validator(a).is_valid(value)] or alternatives
        for part in schema.get("allOf", []) + matching:
            more, more_open = self._props(part, value)
            props.update(more)
            explicit = explicit or more_open
        return props, explicit

    def _undeclared(self, schema: Any, value: Any, at: str) -> list[tuple[str, str]]:
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return []
        if isinstance(value, list):
            items = schema.get("items")
            if items is None:
                for part in schema.get("allOf", []):
                    items = self.resolve(part).get("items") if isinstance(self.resolve(part), dict) else None
                    if items:
                        break
            return [e for i, v in enumerate(value) for e in self._undeclared(items, v, f"{at}/{i}")] if items else []
        if not isinstance(value, dict):
            return []
        props, explicit = self._props(schema, value)
        found = [] if explicit or not props else [(at, k) for k in value if k not in props]
        for key, sub in value.items():
            if key in props:
                found += self._undeclared(props[key], sub, f"{at}/{key}")
        return found

    # -- operations ------------------------------------------------------------------------
    def operation(self, method: str, path: str) -> Operation:
        for _, template, pattern, item in self._templates:
            if pattern.match(path) and method.lower() in item:
                op = item[method.lower()]
                params = [self.resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
                return Operation(method.upper(), template, op, params)
        raise AssertionError(f"{method} {path}: no such operation in the PagerDuty spec")

    def scope(self, method: str, template: str) -> str | None:
        return self.spec["paths"][template][method.lower()].get("x-pd-requires-scope")

    def check_request(self, method: str, path: str, query: str, headers: dict[str, str], body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template}"
        problems: list[str] = []
        declared = {p["name"]: p for p in op.parameters}
        values = parse_qsl(query, keep_blank_values=True)
        seen: dict[str, list[str]] = {}
        for name, value in values:
            p = declared.get(name)
            if p is None or p["in"] != "query":
                problems.append(f"{where}: undeclared query parameter {name!r}")
                continue
            seen.setdefault(name, []).append(value)
            problems += [f"{where}: query {name}: {e}" for e in self._query_value(p, value)]
        for name, got in seen.items():
            p = declared[name]
            if len(got) > 1 and not name.endswith("[]"):
                problems.append(f"{where}: query {name} given {len(got)} times")
            if len(set(got)) < len(got):
                problems.append(f"{where}: query {name} repeats a value")
        lower = {k.lower(): v for k, v in headers.items()}
        for p in op.parameters:
            if p.get("required") and p["in"] == "query" and p["name"] not in seen:
                problems.append(f"{where}: missing required query parameter {p['name']!r}")
            if p["in"] == "header" and p["name"] == "From" and p.get("required"):
                sender = lower.get("from")
                if not sender:
                    problems.append(f"{where}: missing required header 'From'")
                elif not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", sender):
                    problems.append(f"{where}: From {sender!r} is not an email address")
        if lower.get("accept") != "application/vnd.pagerduty+json;version=2":
            problems.append(f"{where}: Accept is {lower.get('accept')!r}, not the version-2 media type")
        body_spec = self.resolve(op.spec.get("requestBody"))
        if body_spec is None:
            if body is not None:
                problems.append(f"{where}: sends a body, the spec declares none")
            return problems
        if body is None:
            if body_spec.get("required", False):
                problems.append(f"{where}: the required body is missing")
            return problems
        if not lower.get("content-type", "").startswith("application/json"):
            problems.append(f"{where}: body sent as {lower.get('content-type')!r}, not application/json")
        schema = body_spec["content"]["application/json"]["schema"]
        return problems + [f"{where}: body {e}" for e in self.errors(schema, body)]

    def _query_value(self, p: dict[str, Any], raw: str) -> list[str]:
        schema = self.resolve(p.get("schema", {}))
        if schema.get("type") == "array" and not p["name"].endswith("[]") and p.get("explode") is False:
            parts = raw.split(",")
            if "maxItems" in schema and len(parts) > schema["maxItems"]:
                return [f"{len(parts)} items > maxItems {schema['maxItems']}"]
        else:
            parts = [raw]
        item = self.resolve(schema.get("items", {})) if schema.get("type") == "array" else schema
        errors = []
        for value in parts:
            kind = item.get("type", "string")
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                errors.append(f"{value!r} is not an integer")
            elif kind == "boolean" and value not in ("true", "false"):
                errors.append(f"{value!r} is not a boolean")
            if "enum" in item and value not in item["enum"]:
                errors.append(f"{value!r} not in {item['enum']}")
            if item.get("format") == "date-time":
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    errors.append(f"{value!r} is not a date-time")
        return errors

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template} -> {status}"
        responses = op.spec.get("responses", {})
        key = STATUS_ALIASES.get((op.method, op.template, status), str(status))
        if key in responses:
            response = self.resolve(responses[key])
            schema = response.get("content", {}).get("application/json", {}).get("schema")
        elif status in GENERIC_ERROR_STATUSES:
            schema = {"$ref": GENERIC_ERROR}
        else:
            return [f"{where}: status not declared"]
        if schema is None:
            return [] if body in (None, "", {}) else [f"{where}: a body where the spec declares none"]
        problems = [f"{where}: {e}" for e in self.errors(schema, body)]
        if status >= 400 and not (isinstance(body, dict) and isinstance(body.get("error"), dict)
                                  and isinstance(body["error"].get("code"), int) and body["error"].get("message")):
            problems.append(f"{where}: error body lacks error.message and error.code")
        return problems
