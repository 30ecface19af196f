"""The policy document (schema 1): parsing and validation.

Validation is hand-written rather than JSON Schema so that every problem is
reported with its JSON path and the fix, and so that `serve` does not import
jsonschema to load the cached policy at start-up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.jsondepth import MAX_DEPTH, too_deep

SCHEMA_VERSION = 1
STATES = ("pending", "approved", "disabled")
CLASSES = ("read", "write", "destructive")
AUTO_APPROVE = ("none", "read_only")
TOP_LEVEL = ("schema", "revision", "issued_at", "expires_at", "defaults", "tools", "toolsets", "groups",
             "profiles", "description", "comment")
DEFAULTS_FIELDS = ("auto_approve", "trust_annotations")
TOOL_FIELDS = ("state", "class", "sha256", "redact", "hash", "constraints", "comment", "note")
PROFILE_FIELDS = ("name", "members", "toolsets", "description", "comment")
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+\.[^\s]+$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_ARG_PATH_RE = re.compile(r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")


class DocumentError(PolicyError):
    """The document is not a valid schema-1 policy; `problems` are "path: what is wrong; fix" lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        first = problems[0] if problems else "invalid policy document"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class ToolEntry:
    key: str
    state: str = "pending"
    classification: str | None = None
    sha256: str | None = None
    redact: tuple[str, ...] = ()
    hash: tuple[str, ...] = ()
    # Argument constraints (policy/constraints.py): dotted argument path -> the JSON values allowed there.
    constraints: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    members: tuple[str, ...]
    toolsets: tuple[str, ...]


@dataclass(frozen=True)
class PolicyDocument:
    revision: str
    issued_at: datetime
    expires_at: datetime
    auto_approve: str = "none"
    trust_annotations: tuple[str, ...] = ()  # upstream keys whose own readOnlyHint counts for auto_approve
    tools: dict[str, ToolEntry] = field(default_factory=dict)
    toolsets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    profiles: tuple[Profile, ...] = ()
    warnings: tuple[str, ...] = ()

    def expired(self, now: float) -> bool:
        return now >= self.expires_at.timestamp()


def _p(path: str, key: str) -> str:
    """The JSON path of `key` under `path`, bracketed when the key is not a plain identifier."""
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{path}[{json.dumps(key)}]"


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp with a zone (`Z` or an offset), or None."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def format_time(value: datetime | float) -> str:
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def known(self, obj: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        for k in obj:
            if k not in allowed:
                self.add(_p(path, k), f"unknown field; remove it or use one of {', '.join(allowed)}")

    def strings(self, value: object, path: str, what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.add(path, f"must be a list of {what} (non-empty strings), e.g. [\"...\"]")
            return ()
        return tuple(value)


def _parse_tools(c: _Checker, raw: object) -> dict[str, ToolEntry]:
    tools: dict[str, ToolEntry] = {}
    if not isinstance(raw, dict):
        c.add("$.tools", 'must be an object keyed by tool key, e.g. {"pd.list_incidents": {"state": "approved"}}')
        return tools
    for key, entry in raw.items():
        path = _p("$.tools", key)
        if not _KEY_RE.match(key):
            c.add(path, "a tool key is <upstream key>.<upstream tool name>, e.g. pd.list_incidents "
                        "(see `mcp-access-proxy tools --all --json`)")
            continue
        if not isinstance(entry, dict):
            c.add(path, 'must be an object, e.g. {"state": "approved", "class": "read", "sha256": "..."}')
            continue
        c.known(entry, path, TOOL_FIELDS)
        state = entry.get("state", "pending")
        if state not in STATES:
            c.add(f"{path}.state", f"{json.dumps(state)} is not a state; use one of {', '.join(STATES)}")
            continue
        cls = entry.get("class")
        if cls is not None and cls not in CLASSES:
            c.add(f"{path}.class", f"{json.dumps(cls)} is not a class; use one of {', '.join(CLASSES)}")
        sha = entry.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not _SHA_RE.match(sha)):
            c.add(f"{path}.sha256", "must be the tool's definition hash: 64 lowercase hex digits, as printed by "
                                   "`mcp-access-proxy tools --all --json` (or leave it out to not pin the tool)")
            sha = None
        redact = c.strings(entry["redact"], f"{path}.redact", "argument field names") if "redact" in entry else ()
        hashed = c.strings(entry["hash"], f"{path}.hash", "argument field names") if "hash" in entry else ()
        constraints = _parse_constraints(c, entry["constraints"], f"{path}.constraints") \
            if "constraints" in entry else ()
        if state == "approved" and sha is None:
            c.warnings.append(f"{path}: approved without sha256, so a changed definition stays approved; "
                              "pin it with the hash from `mcp-access-proxy tools --all --json`")
        tools[key] = ToolEntry(key, state, cls if cls in CLASSES else None, sha, redact, hashed, constraints)
    return tools


def _parse_constraints(c: _Checker, raw: object, path: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """`{"request.action": ["add_note", "update"]}`: each key a dotted argument path, each value a non-empty
    list of the JSON values allowed there."""
    example = '{"request.action": ["add_note", "update"]}'
    if not isinstance(raw, dict) or not raw:
        c.add(path, f"must be an object of dotted argument paths to the values allowed there, e.g. {example}")
        return ()
    parsed = []
    for arg_path, allowed in raw.items():
        where = _p(path, arg_path)
        if not _ARG_PATH_RE.match(arg_path):
            c.add(where, "an argument path is names joined by dots, e.g. request.action")
            continue
        if not isinstance(allowed, list) or not allowed:
            c.add(where, f"must be a non-empty list of the values allowed there, e.g. {example}")
            continue
        parsed.append((arg_path, tuple(allowed)))
    return tuple(parsed)


def _parse_named_lists(c: _Checker, raw: object, where: str, kind: str, shape: str, what: str,
                       each: Callable[[str, tuple[str, ...]], tuple[str, ...]] | None = None,
                       ) -> dict[str, tuple[str, ...]]:
    """The object at `where`: `kind` name -> list of `what`; `each` checks and normalises one list."""
    if not isinstance(raw, dict):
        c.add(where, f"must be an object: {shape}")
        return {}
    named: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        path = _p(where, name)
        if not _NAME_RE.match(name):
            c.add(path, f"a {kind} name uses letters, digits, _ . : - only")
        items = c.strings(values, path, what)
        named[name] = items if each is None else each(path, items)
    return named


def _parse_toolsets(c: _Checker, raw: object) -> dict[str, tuple[str, ...]]:
    return _parse_named_lists(c, raw, "$.toolsets", "toolset",
                              'toolset name -> list of tool key globs, e.g. {"read": ["pd.list_*"]}',
                              "tool key globs such as \"pd.list_*\"")


def _parse_groups(c: _Checker, raw: object) -> dict[str, tuple[str, ...]]:
    def members(path: str, emails: tuple[str, ...]) -> tuple[str, ...]:
        for i, email in enumerate(emails):
            if not _EMAIL_RE.match(email):
                c.add(f"{path}[{i}]", f"{json.dumps(email)} is not an email address (groups hold emails only)")
        return tuple(e.lower() for e in emails)

    return _parse_named_lists(c, raw, "$.groups", "group",
                              'group name -> list of member emails, e.g. {"sre": ["a@example.com"]}',
                              "member emails", members)


def _parse_profiles(c: _Checker, raw: object, toolsets: dict[str, tuple[str, ...]],
                    groups: dict[str, tuple[str, ...]]) -> tuple[Profile, ...]:
    if not isinstance(raw, list):
        c.add("$.profiles", 'must be a list of {"name", "members", "toolsets"} objects (or [] for no profiles)')
        return ()
    profiles: list[Profile] = []
    for i, entry in enumerate(raw):
        path = f"$.profiles[{i}]"
        if not isinstance(entry, dict):
            c.add(path, 'must be an object {"name": ..., "members": [...], "toolsets": [...]}')
            continue
        c.known(entry, path, PROFILE_FIELDS)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            c.add(f"{path}.name", "required: a non-empty string")
            name = f"#{i}"
        members = c.strings(entry.get("members"), f"{path}.members", 'member emails or "group:NAME"')
        for j, m in enumerate(members):
            if m.startswith("group:"):
                if m[6:] not in groups:
                    c.add(f"{path}.members[{j}]",
                          f"no group {json.dumps(m[6:])} in $.groups; define it or fix the name")
            elif not _EMAIL_RE.match(m):
                c.add(f"{path}.members[{j}]", f'{json.dumps(m)} is neither an email nor "group:NAME"')
        sets = c.strings(entry.get("toolsets"), f"{path}.toolsets", "toolset names")
        for j, t in enumerate(sets):
            if t not in toolsets:
                c.add(f"{path}.toolsets[{j}]", f"no toolset {json.dumps(t)} in $.toolsets; define it or fix the name")
        profiles.append(Profile(name, tuple(m if m.startswith("group:") else m.lower() for m in members), sets))
    return tuple(profiles)


def parse_document(data: object) -> PolicyDocument:
    """A validated document (from any JSON value), or DocumentError listing every problem found."""
    c = _Checker()
    if not isinstance(data, dict):
        raise DocumentError(["$: the policy must be a JSON object with schema, revision, issued_at, expires_at, tools"])
    c.known(data, "$", TOP_LEVEL)
    if data.get("schema") != SCHEMA_VERSION:
        c.add("$.schema", f"must be {SCHEMA_VERSION} (this proxy reads schema {SCHEMA_VERSION}; "
                          f"got {json.dumps(data.get('schema'))}); upgrade the proxy for newer schemas")
    revision = data.get("revision")
    if not isinstance(revision, str) or not revision.strip():
        c.add("$.revision", 'required: a non-empty string that changes with every edit, e.g. "2026-11-22.1"')
        revision = ""
    times: dict[str, datetime] = {}
    for name in ("issued_at", "expires_at"):
        parsed = parse_time(data.get(name))
        if parsed is None:
            c.add(f"$.{name}", f"required: an RFC 3339 time with a zone, e.g. \"2026-11-22T09:00:00Z\" "
                               f"(got {json.dumps(data.get(name))})")
        else:
            times[name] = parsed
    if len(times) == 2 and times["expires_at"] <= times["issued_at"]:
        c.add("$.expires_at", "must be later than issued_at")
    defaults = data.get("defaults", {})
    auto = "none"
    trust: tuple[str, ...] = ()
    if not isinstance(defaults, dict):
        c.add("$.defaults", 'must be an object, e.g. {"auto_approve": "none"}')
    else:
        c.known(defaults, "$.defaults", DEFAULTS_FIELDS)
        auto = defaults.get("auto_approve", "none")
        if auto not in AUTO_APPROVE:
            c.add("$.defaults.auto_approve", f"{json.dumps(auto)} is not allowed; use \"none\" or \"read_only\"")
            auto = "none"
        if "trust_annotations" in defaults:
            trust = c.strings(defaults["trust_annotations"], "$.defaults.trust_annotations",
                              "upstream keys whose MCP annotations are trusted")
    if "tools" not in data:
        c.add("$.tools", 'required: an object keyed by tool key (may be {} when auto_approve is "read_only")')
    tools = _parse_tools(c, data.get("tools", {}))
    toolsets = _parse_toolsets(c, data.get("toolsets", {}))
    groups = _parse_groups(c, data.get("groups", {}))
    profiles = _parse_profiles(c, data.get("profiles", []), toolsets, groups)
    if c.problems:
        raise DocumentError(c.problems)
    return PolicyDocument(
        revision=revision, issued_at=times["issued_at"], expires_at=times["expires_at"], auto_approve=auto,
        trust_annotations=trust, tools=tools, toolsets=toolsets, groups=groups, profiles=profiles,
        warnings=tuple(c.warnings),
    )


def parse_json(payload: bytes) -> object:
    """The JSON value of a payload, or DocumentError saying where the syntax breaks; parse_document checks
    its shape."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError([f"$: not UTF-8 text (byte {exc.start}); save the policy as UTF-8 JSON"]) from None
    deep = too_deep(text)
    if deep is not None:  # refused before json.loads, which would raise RecursionError
        raise DocumentError([f"$: nested more than {MAX_DEPTH} levels deep (at character {deep}); a policy "
                             "document is a few levels deep, so this is not one: check the file or URL"])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError([f"$: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                             "fix the syntax (a JSON linter shows the spot)"]) from None
