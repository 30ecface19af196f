"""Validating call arguments against a tool's input schema before forwarding.

Validators are compiled once per (tool, schema) and reused: the call path pays
only the validation itself. jsonschema is imported on first use, off the
start-up path.
"""

from __future__ import annotations

from typing import Any

_validators: dict[int, Any] = {}


def _validator_for(schema: dict[str, Any]) -> Any:
    key = id(schema)
    cached = _validators.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
        validator = cls(schema)
    except Exception:  # noqa: BLE001 - an unusable upstream schema cannot be enforced
        validator = None
    _validators[key] = (schema, validator)
    return validator


def _path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else ""


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """None when valid; otherwise a message naming the bad argument and what is expected."""
    validator = _validator_for(schema)
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(arguments), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if not errors:
        return None
    problems = []
    for error in errors[:5]:
        where = _path(error)
        if error.validator == "required":
            problems.append(error.message.replace("is a required property", "is required"))
        elif error.validator == "additionalProperties":
            allowed = sorted((schema.get("properties") or {}).keys()) if not where else []
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            problems.append(f"{error.message}{hint}")
        else:
            label = f"argument '{where}'" if where else "arguments"
            problems.append(f"{label}: {error.message}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(problems) + more
