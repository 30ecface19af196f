"""One `tools/call` as it travels through the call pipeline.

Both entry points build a `ToolCall`: the SDK's handler (server/app.py) and the fast path
(server/fastpath.py). Each stage of the pipeline (server/pipeline.py) reads what it needs from it
and writes what it learns into it: the resolved tool, the decision, the fields of the audit record,
the outcome. A stage is any `async (call, call_next) -> result` callable.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import mcp_types as types

from mcp_proxy.ids import random_hex
from mcp_proxy.upstreams.base import error_result

if TYPE_CHECKING:
    from mcp_proxy.catalog.catalog import Entry
    from mcp_proxy.upstreams.base import ProgressRelay, Upstream

# A JSON object as it comes off the wire (arguments, an upstream's result, an audit record's fields).
JsonObject = dict[str, Any]
# What a call returns: an SDK model the proxy built, or an upstream's wire-format result passed through as it
# came (the entry point validates its shape once, on the way out).
CallResult = types.CallToolResult | JsonObject
RequestId = int | str


class ClientChannel(Protocol):
    """What a call may ask of the client that sent it, while it runs (the sign-in's URL elicitation)."""

    @property
    def can_elicit_url(self) -> bool: ...

    async def elicit_url(self, message: str, url: str, elicitation_id: str) -> types.ElicitResult | None: ...

    async def elicit_complete(self, elicitation_id: str) -> None: ...


@dataclass(frozen=True)
class Denial:
    code: str  # the policy decision code, or unknown_tool / upstream_unavailable
    reason: str  # for the audit record


@dataclass(eq=False)
class ToolCall:
    name: str  # the exposed name the client asked for
    arguments: JsonObject
    request_id: RequestId | None = None
    client: ClientChannel | None = None
    progress: ProgressRelay | None = None
    started: float = field(default_factory=time.perf_counter)
    call_id: str = field(default_factory=lambda: random_hex(16))  # gen_ai.tool.call.id of its records
    user: str | None = None  # who the call is for: set when the pipeline takes it
    # The stateless 2026-07-28 era: the client answers an InputRequiredResult by retrying the request with
    # its responses and the state the proxy handed out (server/stages/sign_in.py).
    meta: Mapping[str, object] | None = None  # the request's `_meta` (trace context among it)
    stateless: bool = False
    input_responses: Mapping[str, object] | None = None
    request_state: str | None = None
    # Learned by the stages:
    entry: Entry | None = None
    upstream: Upstream | None = None
    audit_fields: JsonObject = field(default_factory=dict)
    allowed: bool = False  # the policy allowed it (Authorize, and Recheck at the moment of forwarding)
    started_recorded: bool = False  # its `mcp.tool.started` record is written
    denial: Denial | None = None
    outcome: str | None = None  # ok | tool_error | error | cancelled; None: judged from the result
    error_type: str | None = None

    def deny(self, code: str, reason: str, message: str) -> types.CallToolResult:
        """The call is refused before it reaches an upstream: one `mcp.tool.denied` record, and `message`
        (what happened, what to do) for the model."""
        self.denial = Denial(code, reason)
        self.allowed = False
        return error_result(message)

    def fail(self, error_type: str, message: str, outcome: str = "error") -> types.CallToolResult:
        """The call was allowed but did not produce the tool's own result."""
        self.outcome, self.error_type = outcome, error_type
        return error_result(message)

    def judge(self, result: CallResult) -> tuple[str, str | None]:
        """(outcome, error type) for the audit record."""
        if self.outcome is not None:
            return self.outcome, self.error_type
        failed = result.get("isError") is True if isinstance(result, dict) else bool(result.is_error)
        return ("tool_error", "tool_error") if failed else ("ok", None)


Next = Callable[[ToolCall], Awaitable[CallResult]]


class Stage(Protocol):
    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult: ...


