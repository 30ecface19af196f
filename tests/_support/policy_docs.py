"""Policy documents and tool facts for the policy tests: a fixed "now", documents with their dates around it,
tools and their approvals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp_proxy.policy import ToolFacts, definition_hash

NOW = 1_800_000_000.0  # a fixed "now" for documents and clocks


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_doc(revision: str = "r1", *, issued: float = NOW - 3600, expires: float = NOW + 7 * 86400,
             **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": 1, "revision": revision, "issued_at": iso(issued), "expires_at": iso(expires),
                           "defaults": {"auto_approve": "none"}, "tools": {}}
    doc.update(fields)
    return doc


def tool(key: str, *, read_only: bool = False, description: str = "does a thing", destructive: bool = False,
         schema: dict | None = None) -> ToolFacts:
    upstream, name = key.split(".", 1)
    schema = schema or {"type": "object", "properties": {}}
    return ToolFacts(key=key, upstream=upstream, name=name, exposed_name=f"{upstream}_{name}",
                     definition_hash=definition_hash({"name": name, "description": description, "inputSchema": schema}),
                     read_only=read_only,
                     destructive=destructive, description=description,
                     annotations={"readOnlyHint": True} if read_only else {})


def approved(facts: ToolFacts, cls: str = "read") -> dict[str, Any]:
    return {"state": "approved", "class": cls, "sha256": facts.definition_hash}
