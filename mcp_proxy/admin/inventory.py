"""The inventory: every tool users' proxies discovered, per definition hash, by whom and when.

Each proxy writes a `tools.discovered` audit record when an upstream's list changes:
`{"upstream": key, "tool_count": n, "tools": [{"name", "exposed", "title", "sha256", "annotations"}]}` with
the record's `user.email`, `time` and `host.name`. The collector keeps those records; this module reads what
it keeps and merges it:

* OTLP/HTTP JSON: one `ExportLogsServiceRequest` per line (the OpenTelemetry Collector's file exporter), or
  one per file. A record's fields are LogRecord attributes (resource attributes give `host.name`), its time
  is `timeUnixNano`, its event name `eventName`.
* NDJSON: one audit record per line (the proxy's spool segments, an NDJSON collector's files, a JSON array).
* `mcp-access-proxy tools --all --json` outputs: `{"tools": [{"key", "upstream", "tool", "sha256", ...}]}`,
  with no user or time of their own (the file's name and modification time stand in).

A directory is read recursively; `.gz` files are decompressed. A line that is not JSON, or a record of
another event, is skipped and counted, never fatal: a collector's file holds every event.

A tool entry may also carry its full definition (`description`, `inputSchema`, `outputSchema`): kept only
when its definition hash matches `sha256`, so the console's diff never shows text that is not what was
approved or seen. The administrator's own catalog (`add_catalog`) gives full definitions of the tools
their own configuration reaches.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_proxy.admin.otlp import otlp_records
from mcp_proxy.policy.definition import definition_hash

EVENT = "tools.discovered"
SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".gz", ".txt")


@dataclass
class Sighting:
    first: str
    last: str

    def see(self, when: str) -> None:
        if when and (not self.first or when < self.first):
            self.first = when
        if when and when > self.last:
            self.last = when


@dataclass
class Version:
    """One definition (by hash) of one tool, and who saw it when."""

    sha256: str
    title: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    exposed: str = ""
    first: str = ""
    last: str = ""
    users: dict[str, Sighting] = field(default_factory=dict)  # email -> first/last seen
    hosts: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)  # files without a user (tools --json outputs)
    definition: dict[str, Any] | None = None  # the full definition, when a source carried it (hash checked)
    builtin: bool = False

    def see(self, user: str | None, when: str, host: str | None, source: str | None) -> None:
        if when:
            self.first = when if not self.first or when < self.first else self.first
            self.last = max(self.last, when)
        if user:
            self.users.setdefault(user.lower(), Sighting(when, when)).see(when)
        elif source:
            self.sources.add(source)
        if host:
            self.hosts.add(host)


@dataclass
class InventoryTool:
    key: str
    upstream: str
    name: str
    versions: dict[str, Version] = field(default_factory=dict)

    def latest(self) -> Version:
        """The version seen last (ties: the one with more users)."""
        return max(self.versions.values(), key=lambda v: (v.last, len(v.users), v.sha256))

    @property
    def first(self) -> str:
        return min((v.first for v in self.versions.values() if v.first), default="")

    @property
    def last(self) -> str:
        return max((v.last for v in self.versions.values()), default="")

    def users(self) -> set[str]:
        return {u for v in self.versions.values() for u in v.users}


@dataclass
class Inventory:
    tools: dict[str, InventoryTool] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    records: int = 0  # tools.discovered records read
    skipped: int = 0  # lines that were not JSON or not a record we know
    other_events: int = 0  # records (or, unparsed, lines) of other events: a collector's file holds every event

    def add(self, upstream: str, tool: Mapping[str, Any], *, user: str | None, when: str,
            host: str | None = None, source: str | None = None) -> None:
        name, sha = tool.get("name"), tool.get("sha256")
        if not isinstance(upstream, str) or not upstream or not isinstance(name, str) or not name:
            self.skipped += 1
            return
        full = _full_definition(tool)
        if not isinstance(sha, str) or len(sha) != 64:
            if full is None:
                self.skipped += 1
                return
            sha = definition_hash(full)
        key = f"{upstream}.{name}"
        entry = self.tools.get(key)
        if entry is None:
            entry = self.tools[key] = InventoryTool(key, upstream, name)
        version = entry.versions.get(sha)
        if version is None:
            annotations = tool.get("annotations")
            version = entry.versions[sha] = Version(
                sha, title=str(tool.get("title") or ""),
                annotations=dict(annotations) if isinstance(annotations, Mapping) else {},
                exposed=str(tool.get("exposed") or tool.get("exposed_name") or ""))
        version.builtin = version.builtin or tool.get("builtin") is True
        if version.definition is None and full is not None and definition_hash(full) == sha:
            version.definition = full
        version.see(user, when, host, source)

    def add_record(self, record: Mapping[str, Any], source: str | None = None) -> bool:
        """One flat audit record (as spooled, or decoded from OTLP); False when it is not tools.discovered."""
        if record.get("event_name") != EVENT:
            return False
        tools = record.get("tools")
        upstream = record.get("upstream")
        if not isinstance(tools, list) or not isinstance(upstream, str):
            self.skipped += 1
            return True
        self.records += 1
        user, host = record.get("user.email"), record.get("host.name")
        user = user if isinstance(user, str) else None
        host = host if isinstance(host, str) else None
        when = normal_time(record.get("time"))
        for tool in tools:
            if isinstance(tool, dict):
                self.add(upstream, tool, user=user, when=when, host=host, source=source)
        return True

    def add_catalog(self, entries: Iterable[Any], when: str, user: str | None) -> None:
        """The administrator's own catalog (`catalog.offline.load_catalog_entries`): full definitions."""
        for e in entries:
            raw = {"name": e.name, "title": e.tool.title or "", "description": e.tool.description or "",
                   "inputSchema": e.input_schema, "outputSchema": e.tool.outputSchema,
                   "annotations": dict(e.facts.annotations)}
            self.add(e.upstream, {**raw, "sha256": e.facts.definition_hash, "exposed": e.exposed,
                                  "builtin": e.facts.builtin}, user=user, when=when, source="your catalog")

    def read(self, path: str | Path) -> None:
        """Read a file or a directory (recursively) of any of the supported formats into this inventory."""
        p = Path(path).expanduser()
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix in SUFFIXES:
                    self.read(child)
            return
        with acyclic_bulk():
            self._read_file(p)

    def _read_file(self, p: Path) -> None:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        self.files.append(str(p))
        mtime = normal_time(datetime.fromtimestamp(os.stat(p).st_mtime, UTC))
        # One JSON value for the whole file (a tools --json output, a JSON array, one request per file); a file
        # of one value per line fails here at the end of its first line, so this costs one line at most.
        whole = _loads(data) if data.lstrip()[:1] in (b"{", b"[") else None
        if isinstance(whole, dict) and _is_tools_output(whole):
            self._tools_output(whole, p.name, mtime)
        elif whole is not None:
            for value in whole if isinstance(whole, list) else [whole]:
                self._value(value, p.name)
        else:
            self._lines(data, p.name)

    def _lines(self, data: bytes, source: str) -> None:
        """One JSON value per line. A line that does not mention the event at all is another event's record
        (counted in `other_events`, a line at a time, without parsing it): a collector's file is mostly calls."""
        needle = EVENT.encode()
        for line in data.splitlines():
            if needle not in line:
                stripped = line.strip()
                if stripped[:1] == b"{":
                    self.other_events += 1
                elif stripped:
                    self.skipped += 1
                continue
            self._value(_loads(line), source)

    def _value(self, value: Any, source: str) -> None:
        if isinstance(value, dict) and "resourceLogs" in value:
            for record in otlp_records(value, EVENT):
                if not self.add_record(record, source):
                    self.other_events += 1
        elif isinstance(value, dict) and "event_name" in value:
            if not self.add_record(value, source):
                self.other_events += 1
        else:
            self.skipped += 1

    def _tools_output(self, data: dict[str, Any], source: str, when: str) -> None:
        for row in data["tools"]:
            if isinstance(row, dict):
                upstream = row.get("upstream")
                tool = {**row, "name": row.get("tool"), "exposed": row.get("exposed_name")}
                self.add(upstream if isinstance(upstream, str) else "", tool, user=None, when=when, source=source)


@contextmanager
def acyclic_bulk(*, keep: bool = False) -> Iterator[None]:
    """The cyclic garbage collector paused while inventory files are read. Parsing 100 MB of JSON allocates
    millions of small objects and the inventory keeps hundreds of thousands: each allocation burst set off a
    collection that walked every object alive, so reading took twice as long as the parsing itself and grew
    faster than the file. Nothing here makes a reference cycle: reference counting frees all the garbage.

    `keep`: what exists at the end stays for the rest of the process (the console's inventory does not change
    while it runs), so it is frozen out of the collector's reach (`gc.freeze`) rather than walked by the
    collections the console's own requests set off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if keep:
            gc.freeze()
    finally:
        if enabled:
            gc.enable()


def read_inventory(paths: Iterable[str | Path]) -> Inventory:
    inventory = Inventory()
    for path in paths:
        inventory.read(path)
    return inventory


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError:  # not UTF-8: read it as the text it was meant to be, bad bytes replaced
        return _loads(data.decode("utf-8", "replace").encode())
    except ValueError:
        return None


def _is_tools_output(data: dict[str, Any]) -> bool:
    rows = data.get("tools")
    return isinstance(rows, list) and "event_name" not in data and all(
        isinstance(r, dict) and "key" in r and "tool" in r for r in rows)


def _full_definition(tool: Mapping[str, Any]) -> dict[str, Any] | None:
    if "inputSchema" not in tool or not isinstance(tool.get("name"), str):
        return None
    return {k: tool.get(k) for k in ("name", "title", "description", "inputSchema", "outputSchema", "annotations")}


def normal_time(value: Any) -> str:
    """An RFC 3339 UTC time to the second (`2026-11-22T09:00:00Z`), from a string, a datetime or Unix nanos;
    "" when it cannot be read. Fixed width, so times compare as strings."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return normal_time(datetime.fromtimestamp(int(value) / 1e9, UTC))
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return ""
        return normal_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    return ""
