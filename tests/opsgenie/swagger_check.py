"""A small Swagger 2.0 checker: is this request (and its response) what the spec describes?

Finds the operation by method and path template (literal segments win over
parameters, so /v2/alerts/count is not /v2/alerts/{identifier}), checks query
and path parameters (declared, typed, enums, bounds, required), the JSON body
against its schema (plus: no undeclared properties, discriminators resolved),
and the response status and body against the declared response schema.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.vendor_specs import spec_text

SPEC_NAME = "opsgenie.swagger.json"


def _nullable(node: Any) -> Any:
    """Swagger 2 has no null; this spec marks some fields OpenAPI-3 style (`nullable`)."""
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if (node.get("nullable") or node.get("x-nullable")) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


# Fields real Opsgenie answers carry that the 2021 spec leaves out (reference/vendors.md §2):
# field errors on 4xx bodies, and `success` in a request status.
RESPONSE_EXTRAS = frozenset({"/errors", "/data/success"})


@dataclass
class Operation:
    method: str
    template: str
    spec: dict[str, Any]
    parameters: list[dict[str, Any]]


class SwaggerChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.definitions = _nullable(spec.get("definitions", {}))
        self._templates = []
        for template, item in spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            names = re.findall(r"\{([^}]+)\}", template)
            literals = len([s for s in template.split("/") if s and "{" not in s])
            self._templates.append((literals, template, re.compile(pattern), names, item))
        self._templates.sort(key=lambda t: (-t[0], t[1]))

    @classmethod
    def load(cls) -> SwaggerChecker:
        return cls(json.loads(spec_text(SPEC_NAME)))

    @cached_property
    def _validator_cls(self):
        import jsonschema

        checker = jsonschema.FormatChecker(formats=())

        @checker.checks("date-time", raises=ValueError)
        def _date_time(value: object) -> bool:
            if isinstance(value, str):
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True

        self._format_checker = checker
        return jsonschema.Draft4Validator

    def _errors(self, schema: dict[str, Any], value: Any, allowed_extra: frozenset[str] = frozenset()) -> list[str]:
        root = {"allOf": [_nullable(schema)], "definitions": self.definitions}
        validator = self._validator_cls(root, format_checker=self._format_checker)
        found = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                 for e in validator.iter_errors(value)]
        return found + [f"{at or '<root>'}: undeclared property {key!r}"
                        for at, key in self._undeclared(schema, value, "") if f"{at}/{key}" not in allowed_extra]

    # -- operations ---------------------------------------------------------
    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        for _, template, pattern, names, item in self._templates:
            match = pattern.match(path)
            if match and method.lower() in item:
                op = item[method.lower()]
                params = [self._param(p) for p in item.get("parameters", []) + op.get("parameters", [])]
                return Operation(method.upper(), template, op, params), {
                    n: unquote(v) for n, v in zip(names, match.groups(), strict=True)}
        raise AssertionError(f"{method} {path}: no such operation in the Opsgenie spec")

    def _param(self, p: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in p:
            return self.spec["parameters"][p["$ref"].split("/")[-1]]
        return p

    def check_request(self, method: str, path: str, query: str, body: Any) -> list[str]:
        op, path_values = self.operation(method, path)
        where = f"{method} {op.template}"
        problems: list[str] = []
        declared = {p["name"]: p for p in op.parameters}
        values = parse_qsl(query, keep_blank_values=True)
        for name, value in values:
            p = declared.get(name)
            if p is None or p["in"] != "query":
                problems.append(f"{where}: undeclared query parameter {name!r}")
                continue
            problems += [f"{where}: query {name}: {e}" for e in self._scalar(p, value)]
        for p in op.parameters:
            if p.get("required") and p["in"] == "query" and p["name"] not in dict(values):
                problems.append(f"{where}: missing required query parameter {p['name']!r}")
            if p["in"] == "path":
                problems += [f"{where}: path {p['name']}: {e}" for e in self._scalar(p, path_values.get(p["name"], ""))]
        body_param = next((p for p in op.parameters if p["in"] == "body"), None)
        if body_param is None:
            if body is not None:
                problems.append(f"{where}: sends a body, the spec declares none")
        elif body is None:
            if body_param.get("required"):
                problems.append(f"{where}: the required body is missing")
        else:
            problems += [f"{where}: body {e}" for e in self._errors(body_param["schema"], body)]
        return problems

    def _scalar(self, p: dict[str, Any], raw: str) -> list[str]:
        items = raw.split(",") if p.get("type") == "array" else [raw]
        item_spec = p.get("items", {}) if p.get("type") == "array" else p
        errors = []
        for value in items:
            kind = item_spec.get("type", "string")
            if kind == "integer":
                if not re.fullmatch(r"-?\d+", value):
                    errors.append(f"{value!r} is not an integer")
                    continue
                number = int(value)
                if "minimum" in item_spec and number < item_spec["minimum"]:
                    errors.append(f"{number} < minimum {item_spec['minimum']}")
                if "maximum" in item_spec and number > item_spec["maximum"]:
                    errors.append(f"{number} > maximum {item_spec['maximum']}")
            elif kind == "boolean" and value not in ("true", "false"):
                errors.append(f"{value!r} is not a boolean")
            if "enum" in item_spec and value not in item_spec["enum"]:
                errors.append(f"{value!r} not in {item_spec['enum']}")
            if item_spec.get("format") == "date-time":
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    errors.append(f"{value!r} is not a date-time")
        return errors

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op, _ = self.operation(method, path)
        where = f"{method} {op.template} -> {status}"
        responses = op.spec.get("responses", {})
        response = responses.get(str(status)) or responses.get("default")
        if response is None:
            return [f"{where}: status not declared"]
        if str(status) not in responses:
            return [f"{where}: status not declared (only 'default' would cover it)"]
        if "$ref" in response:
            response = self.spec["responses"][response["$ref"].split("/")[-1]]
        schema = response.get("schema")
        if schema is None:
            return []
        return [f"{where}: {e}" for e in self._errors(schema, body, RESPONSE_EXTRAS)]

    # -- undeclared properties -------------------------------------------------------
    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.definitions[schema["$ref"].split("/")[-1]]
        return schema

    def _props(self, schema: dict[str, Any], value: dict[str, Any],
               follow: bool = True) -> tuple[dict[str, Any], bool]:
        """Declared properties (through allOf and discriminators), and whether others are allowed."""
        schema = self._resolve(schema)
        props: dict[str, Any] = dict(schema.get("properties", {}))
        open_ = "additionalProperties" in schema or not (props or "allOf" in schema)
        for part in schema.get("allOf", []):
            more, more_open = self._props(part, value, follow)
            props.update(more)
            open_ = open_ and more_open
        disc = schema.get("discriminator")
        if follow and disc and isinstance(value.get(disc), str):
            for sub in self.definitions.values():
                if sub.get("x-discriminator-value") == value[disc]:
                    props.update(self._props(sub, value, follow=False)[0])
        return props, open_

    def _undeclared(self, schema: dict[str, Any], value: Any, at: str) -> list[tuple[str, str]]:
        schema = self._resolve(schema)
        if isinstance(value, list) and "items" in schema:
            return [e for i, v in enumerate(value) for e in self._undeclared(schema["items"], v, f"{at}/{i}")]
        if not isinstance(value, dict):
            return []
        props, open_ = self._props(schema, value)
        errors = [] if open_ else [(at, k) for k in value if k not in props]
        for key, sub in value.items():
            if key in props:
                errors += self._undeclared(copy.deepcopy(props[key]), sub, f"{at}/{key}")
        return errors
