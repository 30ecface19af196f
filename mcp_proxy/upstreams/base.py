"""The one interface every upstream kind implements.

An upstream knows how to reach its tools and run them with its credentials.
It knows nothing of policy or audit.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import mcp_types as types

from mcp_proxy.errors import ToolFailure, UpstreamUnavailable

if TYPE_CHECKING:
    from mcp_proxy.auth.session import SignInInfo
    from mcp_proxy.config import UpstreamConfig

__all__ = ["ClientRequests", "PendingSignIn", "ProgressRelay", "SignInBroker", "ToolFailure", "Upstream",
           "UpstreamEvents", "UpstreamStatus", "UpstreamUnavailable", "connection_identity", "error_result"]


class ProgressRelay(Protocol):
    """Passes an upstream's progress on to the client that asked for it."""

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None: ...


class PendingSignIn(Protocol):
    """A sign-in under way: its page (None when another process is signing in), and how to wait or stop."""

    @property
    def url(self) -> str | None: ...

    @property
    def finished(self) -> bool: ...

    async def wait(self, timeout: float) -> SignInInfo: ...

    def close(self) -> None: ...

    def end(self) -> None: ...


class SignInBroker(Protocol):
    """What a call's sign-in needs of an upstream with per-user OAuth (auth.TokenBroker)."""

    @property
    def identity_email(self) -> str | None: ...

    async def begin_sign_in(self, *, lifetime: float) -> PendingSignIn: ...


class ClientRequests(Protocol):
    """Where an upstream's requests toward the user go: the server relays or refuses them under the policy
    (server/upstream_requests.py). Each names the upstream it comes from."""

    async def elicit(self, upstream: str, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        ...

    async def sample(self, upstream: str,
                     params: types.CreateMessageRequestParams) -> types.CreateMessageResult | types.ErrorData: ...

    async def list_roots(self, upstream: str) -> types.ListRootsResult | types.ErrorData: ...


@dataclass
class UpstreamEvents:
    """How an upstream reports to the hub."""

    tools_changed: Callable[[str, list[dict[str, Any]]], Awaitable[None]]
    # An upstream's requests toward the user (elicitation, sampling, roots); None: every one is refused.
    requests: ClientRequests | None = None


@dataclass
class UpstreamStatus:
    state: str = "starting"  # starting | connected | reconnecting | failed | disabled
    detail: str = ""
    tool_count: int = 0
    list_ttl_ms: int | None = None  # how long the upstream said its tool list stays fresh (2026-07-28 ttlMs)
    protocol_version: str | None = None  # what the connection speaks: a handshake-era version or 2026-07-28
    connected_once: anyio.Event = field(default_factory=anyio.Event)


class Upstream(ABC):
    key: str
    kind: str
    cfg: UpstreamConfig
    status: UpstreamStatus

    @abstractmethod
    async def run(self, events: UpstreamEvents) -> None:
        """Connect, report tools, stay connected (reconnecting with backoff) until cancelled."""

    @abstractmethod
    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float
    ) -> types.CallToolResult | dict[str, Any]:
        """Run one tool. Raises UpstreamUnavailable, TimeoutError, ToolFailure, SignInRequired; a tool's own
        failures are isError results.

        A dict is a wire-format result passed through unchanged (the server validates it on the way out)."""

    async def resume_tool_call(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float,
        input_responses: dict[str, Any], request_state: str | None,
    ) -> types.CallToolResult | dict[str, Any]:
        """Run a tool again with the answers to the input requests of its `InputRequiredResult` (wire-format
        JSON objects by key) and that result's `request_state` (the 2026-07-28 era's multi round-trip).
        Only MCP upstreams ask for input; the others never get here."""
        raise UpstreamUnavailable(f"the upstream '{self.key}' does not take answers to input requests")

    async def wait_ready(self, budget: float) -> None:
        """Return once the upstream can take a call (its tool list is then current), waiting at most `budget`
        seconds; raise UpstreamUnavailable when it cannot. Built-in connectors are always ready."""
        return None

    def static_tools(self) -> list[dict[str, Any]] | None:
        """A tool list known without connecting (built-in connectors), else None."""
        return None

    def sign_in_broker(self) -> SignInBroker | None:
        """The broker that signs the user in when a call raises SignInRequired; None: sign in with `login`."""
        return None

    def cache_identity(self) -> str | None:
        """The identity under which this upstream's tool list is cached on disk; None = never cached."""
        return None


def error_result(text: str) -> types.CallToolResult:
    """A call's failure as the model sees it: an isError result with one text."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def connection_identity(cfg: UpstreamConfig) -> str:
    """What identifies an upstream's tool list: its kind and where it is reached (the tool cache's key)."""
    return json.dumps([cfg.kind, cfg.url, cfg.command, list(cfg.args), cfg.base_url, cfg.region])
