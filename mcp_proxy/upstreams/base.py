"""The one interface every upstream kind implements.

An upstream knows how to reach its tools and run them with its credentials.
It knows nothing of policy or audit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

import mcp_types as types

from mcp_proxy.errors import ToolFailure, UpstreamUnavailable

# (progress, total, message)
ProgressRelay = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class UpstreamEvents:
    """How an upstream reports to the hub."""

    tools_changed: Callable[[str, list[dict[str, Any]]], Awaitable[None]]
    # An upstream's server-to-client request (elicitation), relayed to the client.
    elicit: Callable[[types.ElicitRequestParams], Awaitable[types.ElicitResult]] | None = None


@dataclass
class UpstreamStatus:
    state: str = "starting"  # starting | connected | reconnecting | failed | disabled
    detail: str = ""
    tool_count: int = 0
    connected_once: anyio.Event = field(default_factory=anyio.Event)


class Upstream(ABC):
    key: str
    kind: str
    status: UpstreamStatus

    @abstractmethod
    async def run(self, events: UpstreamEvents) -> None:
        """Connect, report tools, stay connected (reconnecting with backoff) until cancelled."""

    @abstractmethod
    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float
    ) -> types.CallToolResult | dict[str, Any]:
        """Run one tool. Raises UpstreamUnavailable, TimeoutError, ToolFailure; tool failures are isError results.

        A dict is a wire-format result passed through unchanged (the server validates it on the way out)."""

    def cache_identity(self) -> str | None:
        """The identity under which this upstream's tool list is cached on disk; None = never cached."""
        return None
