"""The review model behind the console: the working policy document and the inventory, as the page sees them.

A tool's review state, in the order the page lists them:

* `pending`: discovered (or listed) but neither approved nor disabled;
* `changed`: approved and pinned, but the definition seen last has another hash (pending again for users);
* `approved`, `disabled`: as the document says.

Everything is computed here, server-side, so the page stays a thin view: the rows (`rows`), one tool's details
with the readable diff of its pinned and its latest definition and the values its schema allows (`detail`),
and what a user gets and why (`explain`, the policy's own decision rule).
"""

from __future__ import annotations

import difflib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_proxy.admin import ops
from mcp_proxy.admin.inventory import Inventory, InventoryTool, Version
from mcp_proxy.errors import PolicyError
from mcp_proxy.policy.constraints import local_ref_target
from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.document import DocumentError, parse_document
from mcp_proxy.policy.evaluate import Step, evaluate, matching_toolsets, user_profiles

ORDER = {"pending": 0, "changed": 1, "approved": 2, "disabled": 3}


@dataclass
class Review:
    """The document being edited (`draft`), the one it started from (`base`), the inventory, and a lock: the
    console's server is threaded."""

    draft: dict[str, Any]
    inventory: Inventory
    source: str = ""
    signature: str = "unsigned"
    base: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    published: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.base:
            self.base = ops.working_copy(self.draft)

    # -- reading ---------------------------------------------------------------
    def keys(self) -> list[str]:
        return sorted({*self.inventory.tools, *(self.draft.get("tools") or {})})

    def state_of(self, key: str) -> str:
        entry = (self.draft.get("tools") or {}).get(key) or {}
        state = entry.get("state", "pending") if isinstance(entry, dict) else "pending"
        if state == "approved":
            seen = self.inventory.tools.get(key)
            pinned = entry.get("sha256")
            if seen is not None and pinned and seen.latest().sha256 != pinned:
                return "changed"
        return state if state in ORDER else "pending"

    def warm(self) -> None:
        """Compute the inventory's part of every row now (before the page asks), not at the first request."""
        for key in self.inventory.tools:
            self._seen(key)
        self._inventory_summary()

    def _seen(self, key: str) -> dict[str, Any]:
        """The inventory's part of a row (computed once: the inventory does not change while the console runs)."""
        cache = self.__dict__.setdefault("_seen_cache", {})
        if key not in cache:
            seen = self.inventory.tools.get(key)
            if seen is None:
                cache[key] = {"title": "", "latest": "", "annotations": {}, "versions": 0, "users": 0, "who": [],
                              "first": "", "last": ""}
            else:
                latest = seen.latest()
                users = _users_by_last(seen)
                cache[key] = {"title": latest.title, "latest": latest.sha256, "annotations": latest.annotations,
                              "versions": len(seen.versions), "users": len(users), "who": users[:3],
                              "first": seen.first, "last": seen.last}
        return dict(cache[key])

    def rows(self) -> list[dict[str, Any]]:
        tools = self.draft.get("tools") or {}
        base_tools = self.base.get("tools") or {}
        toolsets = {k: v for k, v in (self.draft.get("toolsets") or {}).items() if isinstance(v, list)}
        out: list[dict[str, Any]] = []
        for key in self.keys():
            entry: dict[str, Any] = tools[key] if isinstance(tools.get(key), dict) else {}
            row = self._seen(key)
            annotations = row.pop("annotations")
            state = entry.get("state", "pending")
            if state == "approved" and entry.get("sha256") and row["latest"] and row["latest"] != entry["sha256"]:
                state = "changed"
            row.update({
                "key": key, "state": state if state in ORDER else "pending",
                "class": entry.get("class") or (ops.class_from_annotations(annotations) if row["latest"] else ""),
                "classSet": "class" in entry, "pinned": entry.get("sha256") or "",
                "constrained": bool(entry.get("constraints")),
                "toolsets": [n for n, globs in toolsets.items() if any(_match(key, g) for g in globs)],
                "changedHere": entry != (base_tools.get(key) or {}),
            })
            out.append(row)
        out.sort(key=lambda r: (ORDER[r["state"]], _negated(r["last"]), r["key"]))
        return out

    def summary(self, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        d = self.draft
        rows = self.rows() if rows is None else rows
        counts = {s: sum(1 for r in rows if r["state"] == s) for s in ORDER}
        return {"revision": d.get("revision"), "issued_at": d.get("issued_at"), "expires_at": d.get("expires_at"),
                "source": self.source, "signature": self.signature, "counts": counts,
                "dirty": self.draft != self.base, "toolsets": d.get("toolsets") or {},
                "profiles": d.get("profiles") or [], "groups": d.get("groups") or {},
                "inventory": self._inventory_summary(),
                "published": self.published[-5:]}

    def _inventory_summary(self) -> dict[str, Any]:
        if "_inv_summary" not in self.__dict__:
            self.__dict__["_inv_summary"] = {
                "files": len(self.inventory.files), "records": self.inventory.records,
                "tools": len(self.inventory.tools),
                "users": len({u for t in self.inventory.tools.values() for u in t.users()})}
        return dict(self.__dict__["_inv_summary"])

    def state(self) -> dict[str, Any]:
        with self.lock:
            rows = self.rows()
            return {"summary": self.summary(rows), "rows": rows}

    def detail(self, key: str) -> dict[str, Any]:
        with self.lock:
            entry = (self.draft.get("tools") or {}).get(key) or {}
            seen = self.inventory.tools.get(key)
            versions = []
            if seen is not None:
                for v in sorted(seen.versions.values(), key=lambda v: v.last, reverse=True):
                    versions.append({"sha256": v.sha256, "title": v.title, "annotations": v.annotations,
                                     "first": v.first, "last": v.last, "exposed": v.exposed,
                                     "users": [{"email": u, "first": s.first, "last": s.last}
                                               for u, s in sorted(v.users.items(), key=lambda i: i[1].last,
                                                                  reverse=True)],
                                     "hosts": sorted(v.hosts), "sources": sorted(v.sources),
                                     "definition": v.definition is not None})
            latest = seen.latest() if seen is not None else None
            pinned = seen.versions.get(entry.get("sha256", "")) if seen is not None else None
            diff = definition_diff(pinned, latest) if pinned is not None and latest is not None and \
                pinned.sha256 != latest.sha256 else []
            schema = _schema_of(seen)
            return {"key": key, "state": self.state_of(key), "entry": entry, "versions": versions,
                    "pinnedKnown": pinned is not None, "diff": diff,
                    "choices": enum_paths(schema) if schema is not None else [],
                    "schemaKnown": schema is not None,
                    "toolsets": matching_toolsets_raw(self.draft, key)}

    # -- editing ---------------------------------------------------------------
    def apply(self, op: Mapping[str, Any]) -> None:
        """One operation of the page; applied to a copy and validated first, so the draft stays valid."""
        with self.lock:
            doc = ops.working_copy(self.draft)
            name = op.get("op")
            keys = [str(k) for k in op.get("keys") or []]
            if name == "approve":
                for key in keys:  # each pinned to the latest definition seen, else kept as is
                    ops.approve(doc, [key], classification=op.get("class") or None,
                                inventory=self.inventory if key in self.inventory.tools else None)
            elif name in ("disable", "pending"):
                ops.set_state(doc, keys, "disabled" if name == "disable" else "pending")
            elif name == "classify":
                ops.classify(doc, keys, str(op.get("class")))
            elif name == "toolset":
                ops.toolset(doc, str(op.get("toolset") or ""), str(op.get("action") or "add"),
                            [str(p) for p in op.get("patterns") or keys])
            elif name == "profile":
                ops.profile(doc, str(op.get("profile") or ""), members=op.get("members"),
                            toolsets=op.get("toolsets"), add=bool(op.get("add")), delete=bool(op.get("delete")))
            elif name == "constrain":
                for key in keys:
                    ops.constrain(doc, key, str(op.get("path")), op.get("values"))
            elif name == "reset":
                doc = ops.working_copy(self.base)
            else:
                raise ops.OpError(f"unknown operation {name!r}")
            if name in ("toolset", "profile") and not str(op.get("toolset") or op.get("profile") or "").strip():
                raise ops.OpError("give a name")
            parse_document(doc)  # DocumentError: not applied
            self.draft = doc

    def finish(self, now: float, expires_in_days: float | None) -> tuple[dict[str, Any], str]:
        """The document to publish: a copy of the draft with a new revision, validated."""
        with self.lock:
            doc = ops.working_copy(self.draft)
            parsed = ops.finish(doc, now, expires_in_days=expires_in_days)
            return doc, parsed.revision

    def published_as(self, doc: dict[str, Any], where: list[str]) -> None:
        with self.lock:
            self.draft = ops.working_copy(doc)
            self.base = ops.working_copy(doc)
            self.published.append({"revision": doc["revision"], "at": doc["issued_at"], "to": where})

    # -- explain -----------------------------------------------------------------
    def explain(self, user: str, now: float | None = None) -> dict[str, Any]:
        with self.lock:
            try:
                doc = parse_document(self.draft)
            except DocumentError as exc:
                return {"user": user, "error": str(exc)}
            when = time.time() if now is None else now
            available: list[dict[str, Any]] = []
            unavailable: list[dict[str, Any]] = []
            for key, seen in sorted(self.inventory.tools.items()):
                trace: list[Step] = []
                decision = evaluate(doc, facts_of(seen), user, when, trace=trace)
                item = {"key": key, "code": decision.code, "message": decision.message,
                        "steps": [{"rule": s.rule, "passed": s.passed, "detail": s.detail} for s in trace]}
                (available if decision.allowed else unavailable).append(item)
            counts: dict[str, int] = {}
            for item in unavailable:
                code = str(item["code"])
                counts[code] = counts.get(code, 0) + 1
            return {"user": user, "profiles": user_profiles(doc, user), "available": available,
                    "unavailable": unavailable[:500], "unavailableCounts": counts,
                    "notInInventory": sorted(set(doc.tools) - set(self.inventory.tools))}


def facts_of(tool: InventoryTool) -> ToolFacts:
    v = tool.latest()
    return ToolFacts(key=tool.key, upstream=tool.upstream, name=tool.name,
                     exposed_name=v.exposed or f"{tool.upstream}_{tool.name}", definition_hash=v.sha256,
                     read_only=v.annotations.get("readOnlyHint") is True,
                     destructive=v.annotations.get("destructiveHint") is True,
                     annotations=dict(v.annotations), builtin=v.builtin, title=v.title)


def matching_toolsets_raw(doc: Mapping[str, Any], key: str) -> list[str]:
    try:
        return matching_toolsets(parse_document(doc), key)
    except PolicyError:
        return []


def _match(key: str, glob: object) -> bool:
    from fnmatch import fnmatchcase

    return isinstance(glob, str) and fnmatchcase(key, glob)


def _negated(when: str) -> str:
    """A key that sorts fixed-width times newest first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in when) if when else "\U0010ffff"


def _users_by_last(tool: InventoryTool) -> list[str]:
    return sorted(tool.users(), key=lambda u: _last_by(tool, u), reverse=True)


def _last_by(tool: InventoryTool, user: str) -> str:
    return max((v.users[user].last for v in tool.versions.values() if user in v.users), default="")


def _schema_of(tool: InventoryTool | None) -> dict[str, Any] | None:
    if tool is None:
        return None
    for v in sorted(tool.versions.values(), key=lambda v: v.last, reverse=True):
        if v.definition is not None and isinstance(v.definition.get("inputSchema"), dict):
            return dict(v.definition["inputSchema"])
    return None


# -- the diff ---------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def definition_diff(old: Version, new: Version) -> list[dict[str, Any]]:
    """Per field (title, annotations, and with full definitions description and schemas): old, new and a
    line diff; a field both versions agree on is left out. Fields a version's source did not carry are
    reported as unknown rather than guessed."""
    fields: list[tuple[str, Any, Any]] = [("title", old.title, new.title),
                                          ("annotations", old.annotations, new.annotations)]
    if old.definition is not None and new.definition is not None:
        for name in ("description", "inputSchema", "outputSchema"):
            fields.append((name, old.definition.get(name), new.definition.get(name)))
    out: list[dict[str, Any]] = []
    for name, a, b in fields:
        if a == b:
            continue
        lines = [[line[:1], line[1:]] for line in difflib.unified_diff(
            _text(a or "").splitlines(), _text(b or "").splitlines(), lineterm="", n=3)][2:]
        out.append({"field": name, "old": _text(a or ""), "new": _text(b or ""), "lines": lines})
    if old.definition is None or new.definition is None:
        out.append({"field": "description and schemas", "old": None, "new": None, "lines": [],
                    "unknown": "not in the inventory for " + ("either version" if old.definition is None and
                                                              new.definition is None else "one version") +
                               ": give `admin --config` a config that reaches this upstream, or an inventory "
                               "that carries full definitions"})
    return out


# -- the values a schema allows -------------------------------------------------------------
def enum_paths(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Dotted argument paths whose values the schema enumerates (`request.action`: create, add_note, ...): the
    choices for an argument constraint."""
    found: dict[str, list[Any]] = {}
    for path, values in _walk(schema, schema, [], 0):
        merged = found.setdefault(path, [])
        merged += [v for v in values if v not in merged]
    return [{"path": p, "values": v} for p, v in found.items()]


def _walk(root: Mapping[str, Any], node: Any, path: list[str], depth: int) -> Iterator[tuple[str, list[Any]]]:
    if not isinstance(node, Mapping) or depth > 12:
        return
    seen = 0
    while seen < 8 and (target := local_ref_target(root, node)) is not None:
        node, seen = target, seen + 1
    if path and isinstance(node.get("enum"), list):
        yield ".".join(path), list(node["enum"])
    if path and "const" in node:
        yield ".".join(path), [node["const"]]
    items = node.get("items")
    if path and isinstance(items, Mapping) and isinstance(items.get("enum"), list):
        yield ".".join(path), list(items["enum"])
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(root, child, [*path, str(name)], depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key) or []:
            yield from _walk(root, branch, path, depth + 1)
