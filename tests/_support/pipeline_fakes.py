"""In-process fakes for the call pipeline's stages: an upstream, a policy, an audit log, a client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types

from mcp_proxy.catalog.catalog import Catalog
from mcp_proxy.config.model import UpstreamConfig
from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.evaluate import Decision
from mcp_proxy.server.call import CallResult, ToolCall
from mcp_proxy.upstreams.base import ProgressRelay, SignInBroker, Upstream, UpstreamEvents, UpstreamStatus

ECHO_TOOL = {"name": "echo", "description": "Echo the text.",
             "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                             "additionalProperties": False}}


class FakeUpstream(Upstream):
    def __init__(self, key: str = "up", *, answer: Callable[[str, dict[str, Any]], Any] | None = None,
                 call_timeout: float = 5.0, connect_timeout: float = 0.2, broker: SignInBroker | None = None) -> None:
        self.key = key
        self.kind = "mcp"
        self.cfg = UpstreamConfig(key=key, kind="mcp", call_timeout=call_timeout, connect_timeout=connect_timeout)
        self.status = UpstreamStatus()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._answer = answer
        self._broker = broker

    async def run(self, events: UpstreamEvents) -> None:  # pragma: no cover - stages never run upstreams
        await anyio.sleep_forever()

    async def call_tool(self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None,
                        timeout: float) -> CallResult:
        self.calls.append((name, arguments))
        if self._answer is not None:
            answer = self._answer(name, arguments)
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return {"content": [{"type": "text", "text": arguments.get("text", "")}], "isError": False}

    def sign_in_broker(self) -> SignInBroker | None:
        return self._broker


class FakePolicy:
    """Allows the tools named in `allowed`; records what it was asked."""

    def __init__(self, allowed: set[str] | None = None,
                 constraints: dict[str, dict[str, tuple[object, ...]]] | None = None) -> None:
        self.allowed = allowed if allowed is not None else set()
        self.constraints = constraints or {}
        self.asked: list[tuple[str, str | None]] = []

    def constraints_for(self, key: str) -> dict[str, tuple[object, ...]] | None:
        return self.constraints.get(key)

    def decide(self, facts: ToolFacts, user: str | None) -> Decision:
        self.asked.append((facts.key, user))
        if facts.key in self.allowed:
            return Decision(True, "approved", "approved", "")
        return Decision(False, "pending", "pending", f"'{facts.exposed_name}' is pending review.")


class AuditRecorder:
    """An audit log that keeps its records in a list; `writable = False` makes required records fail."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.writable = True
        self.refused = 0

    async def __call__(self, event_name: str, fields: dict[str, Any], /) -> object:
        self.records.append((event_name, dict(fields)))
        return None

    async def append(self, event_name: str, fields: dict[str, Any], /) -> object:
        return await self(event_name, fields)

    async def append_required(self, event_name: str, fields: dict[str, Any], /) -> object:
        if not self.writable:
            from mcp_proxy.errors import AuditError

            self.refused += 1
            raise AuditError("The audit log cannot be written; the call was not made.")
        return await self(event_name, fields)


def catalog_with(upstream: str, *tools: dict[str, Any]) -> Catalog:
    catalog = Catalog()
    catalog.set_tools(upstream, list(tools) or [ECHO_TOOL])
    return catalog


def text_of(result: CallResult) -> str:
    if isinstance(result, dict):
        return str(result["content"][0]["text"])
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def is_error(result: CallResult) -> bool:
    return bool(result.get("isError")) if isinstance(result, dict) else bool(result.is_error)


def call_of(name: str = "up_echo", arguments: dict[str, Any] | None = None, **kw: Any) -> ToolCall:
    return ToolCall(name, {"text": "hi"} if arguments is None else arguments, **kw)


class ReadyLater(FakeUpstream):
    """An upstream that is still connecting: `wait_ready` runs `on_ready` first (say, a new tool list)."""

    def __init__(self, on_ready: Callable[[], None], **kw: Any) -> None:
        super().__init__(**kw)
        self._on_ready = on_ready

    async def wait_ready(self, budget: float) -> None:
        await anyio.sleep(0.01)
        self._on_ready()


class NoAccessTools:
    """The proxy's own tools, none of which these tests call."""

    names: frozenset[str] = frozenset({"proxy_unavailable_tools"})

    async def call(self, name: str, arguments: dict[str, Any], user: str | None) -> Any:  # pragma: no cover
        raise AssertionError("no proxy tool is called here")
