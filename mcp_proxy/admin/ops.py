"""Operations on a policy document (its JSON object), shared by `policy approve|disable|classify|toolset|profile`
and the admin console, so that a change reviewed in the console can also be a pull request.

Every operation edits only what it names and keeps every other field; `finish` then gives the document a new
`revision` and `issued_at` (and `expires_at` when asked) and validates it with `parse_document`, so nothing
invalid is ever written, signed or published.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.document import CLASSES, PolicyDocument, format_time, parse_document, parse_time

if TYPE_CHECKING:
    from mcp_proxy.admin.inventory import Inventory

GLOB = re.compile(r"[*?\[]")


class OpError(PolicyError):
    """An operation that cannot be done as asked; the text says what to do instead."""


def match_keys(patterns: Iterable[str], known: Iterable[str]) -> list[str]:
    """The tool keys the patterns name: a glob matches known keys (the document's and the inventory's), a plain
    key names itself even when nothing knows it yet. A glob that matches nothing is an error."""
    known = sorted(set(known))
    out: list[str] = []
    for pattern in patterns:
        if GLOB.search(pattern):
            hits = [k for k in known if fnmatchcase(k, pattern)]
            if not hits:
                raise OpError(f"{pattern!r} matches no tool key in the policy or the inventory")
            out += hits
        else:
            if "." not in pattern:
                raise OpError(f"{pattern!r} is not a tool key: use <upstream>.<tool>, e.g. pd.list_incidents")
            out.append(pattern)
    return list(dict.fromkeys(out))


def class_from_annotations(annotations: Mapping[str, Any]) -> str:
    if annotations.get("readOnlyHint") is True:
        return "read"
    return "destructive" if annotations.get("destructiveHint") is True else "write"


def _tools(doc: dict[str, Any]) -> dict[str, Any]:
    tools = doc.setdefault("tools", {})
    if not isinstance(tools, dict):
        raise OpError("the document's tools is not an object; fix it with `policy validate`")
    return tools


def _entry(doc: dict[str, Any], key: str) -> dict[str, Any]:
    entry = _tools(doc).setdefault(key, {})
    if not isinstance(entry, dict):
        raise OpError(f"tools[{key!r}] is not an object")
    return entry


def approve(doc: dict[str, Any], keys: Sequence[str], *, classification: str | None = None,
            sha256: str | None = None, inventory: Inventory | None = None) -> list[str]:
    """State approved, pinned to `sha256`, else to the inventory's latest definition, else the entry's own.
    Returns notes for the human (what was pinned, what could not be)."""
    if classification is not None and classification not in CLASSES:
        raise OpError(f"{classification!r} is not a class; use one of {', '.join(CLASSES)}")
    if sha256 is not None and len(keys) != 1:
        raise OpError("--sha256 pins one tool; give one KEY, or use --from-inventory for several")
    notes = []
    for key in keys:
        entry = _entry(doc, key)
        seen = inventory.tools.get(key) if inventory is not None else None
        pin = sha256 or (seen.latest().sha256 if seen is not None else None) or entry.get("sha256")
        if inventory is not None and seen is None and sha256 is None:
            raise OpError(f"{key} is not in the inventory, so its definition hash is unknown; give --sha256")
        entry["state"] = "approved"
        if pin:
            entry["sha256"] = pin
        else:
            notes.append(f"{key}: approved without sha256 (not pinned); give --sha256 or --from-inventory")
        if classification:
            entry["class"] = classification
        elif "class" not in entry and seen is not None:
            entry["class"] = class_from_annotations(seen.latest().annotations)
        if str(entry.get("note", "")).startswith("definition changed"):
            del entry["note"]
    return notes


def disable(doc: dict[str, Any], keys: Sequence[str]) -> None:
    for key in keys:
        _entry(doc, key)["state"] = "disabled"


def set_state(doc: dict[str, Any], keys: Sequence[str], state: str) -> None:
    for key in keys:
        _entry(doc, key)["state"] = state


def classify(doc: dict[str, Any], keys: Sequence[str], classification: str) -> None:
    if classification not in CLASSES:
        raise OpError(f"{classification!r} is not a class; use one of {', '.join(CLASSES)}")
    for key in keys:
        _entry(doc, key)["class"] = classification


def constrain(doc: dict[str, Any], key: str, path: str, values: Sequence[Any] | None) -> None:
    """Allow only `values` at the argument `path` of tool `key` (None or []: remove the constraint)."""
    entry = _entry(doc, key)
    constraints = dict(entry.get("constraints") or {})
    if values:
        constraints[path] = list(values)
    else:
        constraints.pop(path, None)
    if constraints:
        entry["constraints"] = constraints
    else:
        entry.pop("constraints", None)


def toolset(doc: dict[str, Any], name: str, action: str, patterns: Sequence[str]) -> None:
    sets = doc.setdefault("toolsets", {})
    current = list(sets.get(name) or [])
    if action == "add":
        current += [p for p in patterns if p not in current]
    elif action == "remove":
        missing = [p for p in patterns if p not in current]
        if missing:
            raise OpError(f"toolset {name!r} has no {', '.join(missing)}; it has {', '.join(current) or 'nothing'}")
        current = [p for p in current if p not in patterns]
    else:
        raise OpError(f"unknown toolset action {action!r}; use add or remove")
    if current:
        sets[name] = current
    else:
        sets.pop(name, None)


def profile(doc: dict[str, Any], name: str, *, members: Sequence[str] | None = None,
            toolsets: Sequence[str] | None = None, add: bool = False, delete: bool = False) -> None:
    """Create or change the profile `name`: `members`/`toolsets` replace the lists (with `add`, extend them)."""
    profiles = doc.setdefault("profiles", [])
    found = next((p for p in profiles if isinstance(p, dict) and p.get("name") == name), None)
    if delete:
        if found is None:
            raise OpError(f"no profile {name!r}")
        profiles.remove(found)
        return
    if found is None:
        if not members or not toolsets:
            raise OpError(f"a new profile needs --members and --toolsets (profile {name!r} does not exist yet)")
        found = {"name": name, "members": [], "toolsets": []}
        profiles.append(found)
    for field, values in (("members", members), ("toolsets", toolsets)):
        if values is None:
            continue
        found[field] = list(dict.fromkeys([*found.get(field, []), *values])) if add else list(values)


def next_revision(old: object, now: datetime) -> str:
    """`YYYY-MM-DD.N`: N one more than the old revision's when it is of today, else 1."""
    day = now.strftime("%Y-%m-%d")
    m = re.fullmatch(rf"{day}\.(\d+)", str(old or ""))
    return f"{day}.{int(m.group(1)) + 1 if m else 1}"


def finish(doc: dict[str, Any], now: float, *, expires_in_days: float | None = None) -> PolicyDocument:
    """New revision and issued_at (and expires_at, when given), then validated: DocumentError says what is
    wrong. An expiry already past (or too close) without `expires_in_days` is an OpError naming the option."""
    issued = datetime.fromtimestamp(now, UTC)
    doc["schema"] = doc.get("schema", 1)
    doc["revision"] = next_revision(doc.get("revision"), issued)
    doc["issued_at"] = format_time(issued)
    if expires_in_days is not None:
        if expires_in_days <= 0:
            raise OpError("the expiry must be a positive number of days")
        doc["expires_at"] = format_time(issued + timedelta(days=expires_in_days))
    else:
        expires = parse_time(doc.get("expires_at"))
        if expires is None or expires <= issued:
            raise OpError(f"expires_at ({doc.get('expires_at')}) is not later than now: give an expiry "
                          "(--expires-in DAYS)")
    doc.setdefault("tools", {})
    return parse_document(doc)


def render(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def working_copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(dict(doc))
