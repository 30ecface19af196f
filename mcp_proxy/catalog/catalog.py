"""The merged tool list of every upstream, with exposed names and routing.

The catalog holds each upstream's last known tool list (from the on-disk
cache until the upstream connects, then live). It validates tools one by one
so that one off-spec tool costs only itself, never its upstream's whole list.
It does not decide approval: the server asks the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_proxy.catalog.names import exposed_name
from mcp_proxy.config.model import REST_KINDS
from mcp_proxy.policy.definition import ToolFacts, definition_hash

if TYPE_CHECKING:
    import mcp_types as types

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    exposed: str
    upstream: str
    name: str  # the upstream's own tool name
    input_schema: dict[str, Any]
    tool: types.Tool  # the definition as exposed (renamed)
    facts: ToolFacts
    raw: dict[str, Any]  # the upstream's own definition, as listed


def is_builtin(kind: str) -> bool:
    """A built-in REST connector: its tools and their annotations are the proxy's own code, not an upstream's
    claim about itself."""
    return kind in REST_KINDS


def tool_facts(upstream: str, exposed: str, raw: dict[str, Any], builtin: bool) -> ToolFacts:
    """What the policy decides on, from a raw tool definition (the upstream's own name)."""
    annotations = raw.get("annotations") or {}
    return ToolFacts(
        key=f"{upstream}.{raw['name']}",
        upstream=upstream,
        name=raw["name"],
        exposed_name=exposed,
        definition_hash=definition_hash(raw),
        read_only=annotations.get("readOnlyHint") is True,
        destructive=annotations.get("destructiveHint") is True,
        description=raw.get("description") or "",
        annotations=dict(annotations),
        builtin=builtin,
        title=raw.get("title") or annotations.get("title") or "",
    )


def build_entries(upstream: str, raw_tools: list[dict[str, Any]], *, kind: str = "mcp",
                  ) -> tuple[list[Entry], list[str]]:
    """Valid entries for one upstream's raw tool dicts (from an upstream of `kind`), and a note per rejected tool."""
    import mcp_types as types  # here, not above: serve answers its first messages before the SDK is loaded

    builtin = is_builtin(kind)
    entries: list[Entry] = []
    rejected: list[str] = []
    seen: set[str] = set()
    exposed_names: set[str] = set()
    for raw in raw_tools:
        name = raw.get("name") if isinstance(raw, dict) else None
        schema = raw.get("inputSchema") if isinstance(raw, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object":
            # MCP requires an object schema; clients (and the SDK's outbound check) refuse anything else.
            rejected.append(f"{name!r}: inputSchema must be a JSON Schema with \"type\": \"object\"")
            continue
        try:
            tool = types.Tool.model_validate(raw, by_name=False)
        except Exception as exc:  # noqa: BLE001 - pydantic ValidationError: the tool is off-spec
            first = str(exc).splitlines()[1:2]
            rejected.append(f"{name!r}: {first[0].strip() if first else 'invalid definition'}")
            continue
        if tool.name in seen:
            rejected.append(f"{tool.name!r}: listed twice")
            continue
        seen.add(tool.name)
        exposed = exposed_name(upstream, tool.name)
        if exposed in exposed_names:  # cannot happen by the naming rule; kept so a list never repeats a name
            rejected.append(f"{tool.name!r}: its exposed name {exposed!r} is taken by another tool")
            continue
        exposed_names.add(exposed)
        entries.append(Entry(
            exposed=exposed,
            upstream=upstream,
            name=tool.name,
            input_schema=schema,
            tool=tool.model_copy(update={"name": exposed}),
            facts=tool_facts(upstream, exposed, raw, builtin),
            raw=raw,
        ))
    return entries, rejected


class Catalog:
    def __init__(self, kinds: Mapping[str, str] | None = None) -> None:
        # Each upstream's kind: it says whether its tools are built in (see is_builtin); unknown means not.
        self._kinds = dict(kinds or {})
        self._by_upstream: dict[str, list[Entry]] = {}
        self._raw: dict[str, list[dict[str, Any]]] = {}
        self._by_exposed: dict[str, Entry] = {}
        self.version = 0

    def set_tools(self, upstream: str, raw_tools: list[dict[str, Any]]) -> bool:
        """Replace one upstream's tool list; True when it changed."""
        if self._raw.get(upstream) == raw_tools:
            return False
        entries, rejected = build_entries(upstream, raw_tools, kind=self._kinds.get(upstream, "mcp"))
        for note in rejected:
            log.warning("upstream %s: skipping tool %s", upstream, note)
        self._raw[upstream] = raw_tools
        self._by_upstream[upstream] = entries
        self._reindex()
        return True

    def has_upstream(self, upstream: str) -> bool:
        return upstream in self._raw

    def raw_tools(self, upstream: str) -> list[dict[str, Any]]:
        """The upstream's tool list as it gave it (off-spec tools included)."""
        return self._raw.get(upstream, [])

    def _reindex(self) -> None:
        self._by_exposed = {e.exposed: e for entries in self._by_upstream.values() for e in entries}
        self.version += 1

    def entries(self) -> list[Entry]:
        return [e for key in sorted(self._by_upstream) for e in self._by_upstream[key]]

    def lookup(self, exposed: str) -> Entry | None:
        return self._by_exposed.get(exposed)

    def facts(self) -> list[ToolFacts]:
        return [e.facts for e in self.entries()]

