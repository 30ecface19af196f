"""Argument constraints: a policy entry narrows an approved tool by the values its arguments may take.

Composite tools (PagerDuty's hosted `manage_incidents` takes an `action` of create, update, add_note, …)
would otherwise be approved whole. A constraint maps a dotted path into the call's arguments to the JSON
values allowed there (`"request.action": ["add_note"]`). Where the path is present, its value, or every
item of a list value, must be one of them. The tool's `inputSchema` is narrowed to match, so the model is
shown only what it may do; the definition hash stays the upstream's own.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JsonValue = Any  # a value decoded from JSON
Constraints = Mapping[str, Sequence[JsonValue]]

_MISSING = object()


@dataclass(frozen=True)
class Violation:
    path: str
    value: JsonValue
    allowed: tuple[JsonValue, ...]

    def message(self, tool: str) -> str:
        allowed = ", ".join(json.dumps(v, ensure_ascii=False) for v in self.allowed)
        return (f"The organisation's approval policy allows '{tool}' only with {self.path} set to one of: "
                f"{allowed}. The call had {json.dumps(self.value, ensure_ascii=False)[:200]}, so it was not made. "
                "Call it again with an allowed value, or ask for access with proxy_request_access.")


def _canonical(value: JsonValue) -> str:
    # JSON equality: 1 and true differ, {"a":1,"b":2} equals {"b":2,"a":1}.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _lookup(arguments: JsonValue, path: str) -> JsonValue:
    value = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def violation(constraints: Constraints, arguments: Mapping[str, JsonValue]) -> Violation | None:
    """The first constraint the arguments break, else None."""
    for path, allowed in constraints.items():
        value = _lookup(arguments, path)
        if value is _MISSING:
            continue
        permitted = {_canonical(a) for a in allowed}
        for item in value if isinstance(value, list) else [value]:
            if _canonical(item) not in permitted:
                return Violation(path, item, tuple(allowed))
    return None


def narrowed_schema(schema: Mapping[str, JsonValue], constraints: Constraints) -> dict[str, JsonValue]:
    """A copy of `schema` in which each constrained path allows only its listed values."""
    narrowed = copy.deepcopy(dict(schema))
    for path, allowed in constraints.items():
        _narrow(narrowed, narrowed, path.split("."), list(allowed))
    return narrowed


def _resolved(root: dict[str, JsonValue], node: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """`node` with a local `$ref` replaced, in place, by a private copy of its target (so that narrowing it
    does not narrow every other use of the same definition)."""
    seen = 0
    while seen < 16 and (target := local_ref_target(root, node)) is not None:
        del node["$ref"]
        node.update({k: copy.deepcopy(v) for k, v in target.items() if k not in node})
        seen += 1
    return node


def local_ref_target(root: Mapping[str, JsonValue], node: Mapping[str, JsonValue]) -> Mapping[str, JsonValue] | None:
    """What `node`'s local `$ref` (`#/$defs/request`) points to in `root`; None when it has none, or one that
    leads nowhere or not to a schema."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return None
    target: JsonValue = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return target if isinstance(target, Mapping) else None


def _narrow(root: dict[str, JsonValue], node: dict[str, JsonValue], path: list[str],
            allowed: list[JsonValue]) -> None:
    node = _resolved(root, node)
    if not path:
        _restrict_leaf(root, node, allowed)
        return
    properties = node.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get(path[0]), dict):
        _narrow(root, properties[path[0]], path[1:], allowed)
        return
    for key in ("anyOf", "oneOf", "allOf"):  # an object reached through alternatives: narrow each that has it
        for branch in node.get(key) or []:
            if isinstance(branch, dict):
                _narrow(root, branch, path, allowed)


def _restrict_leaf(root: dict[str, JsonValue], node: dict[str, JsonValue], allowed: list[JsonValue]) -> None:
    kept: dict[str, JsonValue] = {k: node[k] for k in ("title", "description", "default") if k in node}
    if _is_array(root, node):
        node.clear()
        node.update({**kept, "type": "array", "items": {"enum": allowed}})
        return
    node.clear()
    node.update({**kept, "enum": allowed})
    if "default" in node and _canonical(node["default"]) not in {_canonical(a) for a in allowed}:
        del node["default"]


def _is_array(root: dict[str, JsonValue], node: dict[str, JsonValue]) -> bool:
    if node.get("type") == "array":
        return True
    branches = [_resolved(root, b) for b in node.get("anyOf") or [] if isinstance(b, dict)]
    return any(b.get("type") == "array" for b in branches)
