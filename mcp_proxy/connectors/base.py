"""What a built-in REST connector is, seen from the rest of the proxy.

A connector turns one vendor's REST API into MCP tools. It knows the vendor
(paths, auth header, pagination, rate limits, errors) and nothing else: the
`upstreams.rest` adapter turns it into an upstream, the policy and audit never
see it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_proxy.errors import ToolFailure


@dataclass(frozen=True)
class Credential:
    """How to authenticate one request: a vendor API key or an OAuth bearer token."""

    scheme: str  # "api_key" | "bearer"
    value: str

    def __repr__(self) -> str:  # never show the value
        return f"Credential(scheme={self.scheme!r}, value=<redacted>)"


# Returns the credential to use now. May raise `ConnectorError` (e.g. sign-in needed).
CredentialProvider = Callable[[], Awaitable[Credential]]


@dataclass
class ToolOutput:
    """A tool's result: readable text for the model plus structured data."""

    text: str
    structured: dict[str, Any] | None = None
    is_error: bool = False


class ConnectorError(ToolFailure):
    """A failure the model should see as an `isError` result.

    `message` says what happened and what to do; it must never contain a
    secret. `error_type` is a short stable code for the audit record
    (e.g. "http_401", "rate_limited", "timeout"). A `ToolFailure`, so the
    proxy's one error boundary shows its text and records its type.
    """


ToolHandler = Callable[[dict[str, Any]], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class RestTool:
    """One MCP tool a connector offers."""

    name: str  # the upstream tool name, e.g. "list_incidents" ([a-z0-9_], short)
    description: str  # for a model: what it does, when to use it, what it returns
    input_schema: dict[str, Any]  # JSON Schema, "type": "object", "additionalProperties": false
    handler: ToolHandler
    read_only: bool
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True
    title: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def annotations(self) -> dict[str, Any]:
        """The MCP annotations, without the hints that only repeat MCP's defaults (readOnlyHint false,
        idempotentHint false, openWorldHint true), since every tool list costs the model's context. A read
        tool says only `readOnlyHint: true` (the other hints mean nothing for it); a write always says
        `destructiveHint`, true or false, because the policy and the console take only an explicit true."""
        hints: dict[str, Any] = {"title": self.title}
        if self.read_only:
            hints["readOnlyHint"] = True
        else:
            hints["destructiveHint"] = self.destructive
            if self.idempotent:
                hints["idempotentHint"] = True
        if not self.open_world:
            hints["openWorldHint"] = False
        return hints


class Connector(ABC):
    """A vendor REST connector. One instance per configured upstream."""

    kind: str

    @abstractmethod
    def tools(self) -> list[RestTool]:
        """The tools, in a stable order. Must not do I/O."""

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        for tool in self.tools():
            if tool.name == name:
                return await tool.handler(arguments)
        raise ConnectorError(f"unknown tool {name!r}; list the tools again", "unknown_tool")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release HTTP connections."""
