"""Validating call arguments against a tool's input schema before forwarding.

Validators are compiled once per (tool, schema) and reused: the call path pays
only the validation itself. jsonschema is imported on first use, off the
start-up path.

The schema comes from an upstream and the arguments from the client, and a
`pattern` of one matched against a string of the other can take exponential
time (`^(a|a)+$` against "aaa…!"). Python's `re` cannot be interrupted and
holds the GIL, so it would freeze every call and ping. So the keywords that
match regular expressions (`pattern`, `patternProperties` and the
`additionalProperties` that consults them) use the `regex` package instead,
with a timeout and with the GIL released (`concurrent=True`), and a schema that
has any of them is checked in a worker thread under a wall-clock deadline
(`check_arguments_in_time`). Schemas without patterns, the common case, are
checked inline as before: nothing else in JSON Schema is slower than linear
in the size of the arguments, which the wire bounds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import anyio

from mcp_proxy.errors import ProxyError

log = logging.getLogger(__name__)

CHECK_BUDGET = 2.0  # seconds of wall-clock time a call's arguments may take to check against its schema
INLINE_BUDGET = 0.005  # seconds a patterned check may hold the event loop before it moves to a worker thread
_CHECKS_AT_ONCE = 4  # worker threads for pattern checks: a flood of slow ones cannot take every thread
_REGEX_KEYWORDS = ("pattern", "patternProperties")

_validators: dict[int, Any] = {}
_deadline = threading.local()  # .at: time.monotonic() by which the running check must end, in its thread
_limiter: anyio.CapacityLimiter | None = None


class ArgumentsUncheckable(ProxyError):
    """The arguments could not be checked against the tool's schema within the budget."""

    error_type = "arguments_check_timeout"

    def __init__(self, tool: str = "") -> None:
        name = f" for '{tool}'" if tool else ""
        super().__init__(
            f"The arguments{name} could not be checked against the tool's schema in time ({CHECK_BUDGET:g} s): a "
            "`pattern` in the schema takes too long on these values, so the call was not made. Use shorter or "
            "simpler values for the patterned arguments, or ask the tool's maintainers to fix the pattern.")


class _OutOfTime(Exception):
    pass


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    import regex  # type: ignore[import-untyped]  # ships no stubs; types-regex is not a dependency

    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, ValueError):
        # Keeps the rule for an unusable upstream schema: what cannot be compiled cannot be enforced.
        log.warning("a tool's schema has a pattern the proxy cannot compile; it is not enforced: %r", pattern)
        return None


def _search(pattern: str, text: str) -> bool:
    """re.search(pattern, text) is not None, bounded by the running check's deadline."""
    compiled = _compiled(pattern)
    if compiled is None:
        return True
    at = getattr(_deadline, "at", None)
    left = CHECK_BUDGET if at is None else at - time.monotonic()
    if left <= 0:
        raise _OutOfTime
    try:
        # The timeout counts the process's CPU time; the caller's wall-clock deadline is the other bound.
        return compiled.search(text, timeout=left, concurrent=True) is not None
    except TimeoutError as exc:
        raise _OutOfTime from exc


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")  # jsonschema's own wording


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Any, schema: Any) -> Iterator[Any]:
    properties = schema.get("properties", {})
    patterns = "|".join(schema.get("patternProperties", {}))
    for key in instance:
        if key not in properties and not (patterns and _search(patterns, key)):
            yield key


def _additional_properties(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """jsonschema's `additionalProperties`, its messages kept, with the patterns matched by `_search`."""
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    extras = set(_additional(instance, schema))
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            ordered = sorted(extras, key=str)
            verb = "was" if len(ordered) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({', '.join(repr(e) for e in ordered)} "
                                  f"{verb} unexpected)")


_bounded_classes: dict[type, type] = {}


def _bounded(cls: type) -> type:
    """`cls` with the regex keywords replaced (only those its draft has)."""
    bounded = _bounded_classes.get(cls)
    if bounded is None:
        from jsonschema import validators

        replacements = {"pattern": _pattern, "patternProperties": _pattern_properties,
                        "additionalProperties": _additional_properties}
        known = cls.VALIDATORS  # type: ignore[attr-defined]  # every jsonschema validator class has it
        chosen = {k: v for k, v in replacements.items() if k in known}
        bounded = validators.extend(cls, chosen)  # type: ignore[no-untyped-call]  # unannotated in the stubs
        _bounded_classes[cls] = bounded
    return bounded


def _uses_patterns(schema: Any) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(k in node for k in _REGEX_KEYWORDS):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _validator_for(schema: dict[str, Any]) -> Any:
    """(validator or None, whether it matches patterns) for `schema`, compiled once."""
    key = id(schema)
    cached = _validators.get(key)
    if cached is not None and cached[0] is schema:
        return cached[1]
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    patterned = _uses_patterns(schema)
    try:
        cls.check_schema(schema)
        validator = (_bounded(cls) if patterned else cls)(schema)
    except Exception:  # noqa: BLE001 - an unusable upstream schema cannot be enforced
        validator = None
    _validators[key] = (schema, (validator, patterned))
    return _validators[key][1]


def _path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else ""


def _problems(validator: Any, schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
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


def _check_by(validator: Any, schema: dict[str, Any], arguments: dict[str, Any], deadline: float) -> str | None:
    """`_problems` by `deadline` (time.monotonic()), or `_OutOfTime`."""
    _deadline.at = deadline
    try:
        return _problems(validator, schema, arguments)
    finally:
        _deadline.at = None


def check_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """None when valid; otherwise a message naming the bad argument and what is expected. Raises
    `ArgumentsUncheckable` when a pattern takes longer than CHECK_BUDGET. Blocks: on the event loop, use
    `check_arguments_in_time`."""
    validator, _ = _validator_for(schema)
    if validator is None:
        return None
    try:
        return _check_by(validator, schema, arguments, time.monotonic() + CHECK_BUDGET)
    except _OutOfTime:
        raise ArgumentsUncheckable() from None


async def check_arguments_in_time(schema: dict[str, Any], arguments: dict[str, Any], tool: str = "") -> str | None:
    """`check_arguments` that never holds up the event loop for long: a schema with patterns is tried inline
    for INLINE_BUDGET (a worker thread costs more than most checks), then checked in a worker thread, and the
    call gets `ArgumentsUncheckable` once CHECK_BUDGET has passed (the thread, abandoned, ends at its next
    pattern: each match is bounded by the same budget)."""
    global _limiter
    validator, patterned = _validator_for(schema)
    if validator is None:
        return None
    if not patterned:
        return _problems(validator, schema, arguments)
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(_CHECKS_AT_ONCE)
    started = time.monotonic()
    if "regex" in sys.modules:  # its first import takes ~70 ms: that happens in the worker thread
        try:
            return _check_by(validator, schema, arguments, started + INLINE_BUDGET)
        except _OutOfTime:
            pass  # a slow pattern: the rest of the budget, off the event loop
    with anyio.move_on_after(CHECK_BUDGET - (time.monotonic() - started) + 0.05):
        try:
            return await anyio.to_thread.run_sync(_check_by, validator, schema, arguments, started + CHECK_BUDGET,
                                                  abandon_on_cancel=True, limiter=_limiter)
        except _OutOfTime:
            pass
    raise ArgumentsUncheckable(tool)
