"""A small OpenAPI 3.0 checker for the Statuspage spec: is this request (and its response) what the
spec describes?

Finds the operation by method and path template (literal segments win, so /incidents/unresolved is
not /incidents/{incident_id}), checks query parameters (declared, integer / boolean / enum values),
the JSON body against its schema (plus: no undeclared properties, which catches misspelt fields),
and the response status and body. `$ref`s are JSON pointers into the spec, resolved by jsonschema
against the whole document.

The spec has a few errors of its own; SPEC_FIXES corrects them (each with its reason) in the
checker's copy, so the emulator can answer as the real API does. test_sp_spec_checker.py checks
that each error is still in the published file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.vendor_specs import spec_text

SPEC_NAME = "statuspage.openapi.yaml"
ERROR_ENTITY = {"$ref": "#/components/schemas/ErrorEntity"}
# Statuses any operation may answer although few declare them all: 401 (every call needs the key),
# 403 (the key's user lacks access to the page), 404 (an unknown page or id; the incident operations
# declare no error status at all), 420 and 429 (the rate limit, per the spec's info). Operations with
# a body may also answer 400 and 422 (invalid input), which the incident operations do not declare.
GENERIC_ERROR_STATUSES = {401, 403, 404, 420, 429}
GENERIC_BODY_ERROR_STATUSES = {400, 422}


def _pointer(doc: Any, ref: str) -> Any:
    node = doc
    for part in ref.lstrip("#/").split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _fix_metadata_type(spec: dict[str, Any]) -> None:
    """Incident.metadata is typed `Object` (capital O), which is no JSON Schema type; the request
    schemas beside it say `object`."""
    spec["components"]["schemas"]["Incident"]["properties"]["metadata"]["type"] = "object"


def _fix_group_components(spec: dict[str, Any]) -> None:
    """GroupComponent.components is typed string, but its own example is a JSON array of ids
    (`["abc123","abc124"]`), as the API returns it; and its `position` is typed string while the
    Component position beside it is an int32: both are accepted."""
    props = spec["components"]["schemas"]["GroupComponent"]["properties"]
    props["components"] = {"type": "array", "items": {"type": "string"}}
    props["position"] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def _fix_subscriber_components(spec: dict[str, Any]) -> None:
    """Subscriber.components is typed string, but its example is a JSON array of component ids
    (`["l1mr4jcmzgkr"]`), as the API returns it."""
    spec["components"]["schemas"]["Subscriber"]["properties"]["components"] = {
        "type": "array", "items": {"type": "string"}}


def _fix_metrics_list(spec: dict[str, Any]) -> None:
    """GET /pages/{page_id}/metrics is a paged list (page, per_page) but its 200 response is typed
    as one Metric; every other list in the spec is an array of its items."""
    response = spec["paths"]["/pages/{page_id}/metrics"]["get"]["responses"]["200"]
    response["content"]["application/json"]["schema"] = {
        "type": "array", "items": {"$ref": "#/components/schemas/Metric"}}


SPEC_FIXES: list[Callable[[dict[str, Any]], None]] = [_fix_metadata_type, _fix_group_components,
                                                      _fix_subscriber_components, _fix_metrics_list]


class Operation:
    def __init__(self, method: str, template: str, spec: dict[str, Any], parameters: list[dict[str, Any]]) -> None:
        self.method, self.template, self.spec, self.parameters = method, template, spec, parameters


class OpenApiChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        for fix in SPEC_FIXES:
            fix(spec)
        self.spec = spec
        self._templates = []
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            literals = len([s for s in template.split("/") if s and "{" not in s])
            self._templates.append((literals, template, re.compile(pattern), item))
        self._templates.sort(key=lambda t: (-t[0], t[1]))
        self._validators: dict[str, Any] = {}

    @classmethod
    def load(cls) -> OpenApiChecker:
        import yaml

        return cls(yaml.safe_load(spec_text(SPEC_NAME)))

    # -- schema validation ---------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            node = _pointer(self.spec, node["$ref"])
        return node

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True, default=str)
        if key not in self._validators:
            import jsonschema

            checker = jsonschema.FormatChecker(formats=())

            @checker.checks("date-time", raises=ValueError)
            def _date_time(value: object) -> bool:
                if isinstance(value, str):
                    if "T" not in value:
                        raise ValueError("no T between date and time")
                    if datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is None:
                        raise ValueError("no time zone")
                return True

            @checker.checks("date", raises=ValueError)
            def _date(value: object) -> bool:
                if isinstance(value, str):
                    date.fromisoformat(value)
                return True

            root = {"components": self.spec["components"], "allOf": [schema]}
            self._validators[key] = jsonschema.Draft4Validator(root, format_checker=checker)
        return self._validators[key]

    def errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        found = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
                 for e in self._validator(schema).iter_errors(value)]
        return found + [f"{at or '<root>'}: undeclared property {key!r}"
                        for at, key in self._undeclared(schema, value, "")]

    def _undeclared(self, schema: Any, value: Any, at: str) -> list[tuple[str, str]]:
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return []
        if isinstance(value, list):
            items = schema.get("items")
            return [e for i, v in enumerate(value) for e in self._undeclared(items, v, f"{at}/{i}")] if items else []
        if not isinstance(value, dict):
            return []
        props = schema.get("properties") or {}
        if not props or schema.get("additionalProperties", False) is not False:
            return []
        # A schema whose only property is a placeholder describes a map (the incident's
        # `components`: {component_id: status}); its keys are not property names.
        if list(props) == ["component_id"]:
            return []
        found = [(at, k) for k in value if k not in props]
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
        raise AssertionError(f"{method} {path}: no such operation in the Statuspage spec")

    def check_request(self, method: str, path: str, query: str, headers: dict[str, str], body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template}"
        problems: list[str] = []
        declared = {p["name"]: p for p in op.parameters if p["in"] == "query"}
        seen: set[str] = set()
        for name, value in parse_qsl(query, keep_blank_values=True):
            p = declared.get(name)
            if p is None:
                problems.append(f"{where}: undeclared query parameter {name!r}")
                continue
            if name in seen:
                problems.append(f"{where}: query {name} given more than once")
            seen.add(name)
            problems += [f"{where}: query {name}: {e}" for e in self._query_value(p, value)]
        for p in declared.values():
            if p.get("required") and p["name"] not in seen:
                problems.append(f"{where}: missing required query parameter {p['name']!r}")
        lower = {k.lower(): v for k, v in headers.items()}
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
        kind = schema.get("type", "string")
        errors = []
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", raw):
                errors.append(f"{raw!r} is not an integer")
            else:
                if "minimum" in schema and int(raw) < schema["minimum"]:
                    errors.append(f"{raw} < minimum {schema['minimum']}")
                if "maximum" in schema and int(raw) > schema["maximum"]:
                    errors.append(f"{raw} > maximum {schema['maximum']}")
        elif kind == "boolean" and raw not in ("true", "false"):
            errors.append(f"{raw!r} is not a boolean")
        if "enum" in schema and raw not in schema["enum"]:
            errors.append(f"{raw!r} not in {schema['enum']}")
        return errors

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op = self.operation(method, path)
        where = f"{method} {op.template} -> {status}"
        responses = op.spec.get("responses", {})
        if str(status) in responses:
            response = self.resolve(responses[str(status)])
            schema = response.get("content", {}).get("application/json", {}).get("schema")
        elif status in GENERIC_ERROR_STATUSES or (status in GENERIC_BODY_ERROR_STATUSES
                                                   and op.spec.get("requestBody") is not None):
            schema = ERROR_ENTITY
        else:
            return [f"{where}: status not declared"]
        if schema is None:
            return [] if body in (None, "", {}) else [f"{where}: a body where the spec declares none"]
        problems = [f"{where}: {e}" for e in self.errors(schema, body)]
        if status >= 400 and not (isinstance(body, dict) and isinstance(body.get("message"), str)):
            problems.append(f"{where}: error body lacks message")
        return problems
