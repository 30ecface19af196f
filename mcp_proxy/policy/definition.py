"""What the policy knows about a tool, and the definition hash of the contract.

The definition hash is the SHA-256 (lowercase hex) of the UTF-8 JSON of
`{"description", "inputSchema", "name"}` (the upstream's own name, description
or "" and input schema) with sorted keys, separators "," and ":" and non-ASCII
written as itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def definition_hash(name: str, description: str | None, input_schema: dict[str, Any]) -> str:
    doc = {"description": description or "", "inputSchema": input_schema, "name": name}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()


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

    @property
    def classification(self) -> str:
        if self.read_only:
            return "read"
        return "destructive" if self.destructive else "write"
