"""What the policy knows about a tool, and the definition hash of the contract.

The definition hash covers everything a client or model is shown about a tool
(DESIGN, "Decision rule"): the SHA-256 (lowercase hex) of the UTF-8 JSON of
`{"annotations", "description", "inputSchema", "name", "outputSchema", "title"}`
(the upstream's own name; annotations `{}`, description and title `""`, and
outputSchema `null` when absent) with sorted keys, separators "," and ":" and
non-ASCII written as itself. A title or an annotation is as much an
instruction to the model as a description, so a change of any of them must
put an approved tool back to pending.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def canonical_definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a raw tool definition (as the upstream listed it) that the hash covers, with their defaults."""
    return {
        "annotations": tool.get("annotations") or {},
        "description": tool.get("description") or "",
        "inputSchema": tool.get("inputSchema") or {},
        "name": tool["name"],
        "outputSchema": tool.get("outputSchema"),
        "title": tool.get("title") or "",
    }


def definition_hash(tool: Mapping[str, Any]) -> str:
    """The definition hash of a raw tool definition (a tools/list entry with the upstream's own name)."""
    data = json.dumps(canonical_definition(tool), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ToolFacts:
    """One upstream tool as the policy sees it.

    `key` is `<upstream key>.<upstream tool name>`; `exposed_name` is the name
    the client sees; `read_only` is true for a tool whose MCP annotations say
    `readOnlyHint: true`. That is the upstream's own claim unless `builtin` is
    true: a built-in REST connector's tools are the proxy's own code, so their
    read-only flag is evidence. An MCP upstream's claim counts for automatic
    approval only when the policy trusts its annotations
    (`defaults.trust_annotations`).
    """

    key: str
    upstream: str
    name: str
    exposed_name: str
    definition_hash: str
    read_only: bool
    destructive: bool = False
    description: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    title: str = ""

    @property
    def classification(self) -> str:
        if self.read_only:
            return "read"
        return "destructive" if self.destructive else "write"
