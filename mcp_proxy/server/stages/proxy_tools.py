"""The proxy's own tools (proxy_unavailable_tools, proxy_request_access), answered without an upstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import mcp_types as types

from mcp_proxy.server.call import CallResult, JsonObject, Next, ToolCall

if TYPE_CHECKING:
    from mcp_proxy.policy.definition import ToolFacts
    from mcp_proxy.policy.engine import PolicyEngine


class AccessTools:
    """The proxy's access tools, with what they read: the policy, the catalog's facts, the audit log."""

    def __init__(self, engine: PolicyEngine, facts: Callable[[], list[ToolFacts]],
                 emit: Callable[[str, JsonObject], object]) -> None:
        from mcp_proxy.policy.access_tools import ACCESS_TOOL_NAMES

        self.names = frozenset(ACCESS_TOOL_NAMES)
        self._engine = engine
        self._facts = facts
        self._emit = emit

    def definitions(self) -> list[types.Tool]:
        from mcp_proxy.policy.access_tools import access_tool_definitions

        return [types.Tool.model_validate(d) for d in access_tool_definitions()]

    async def call(self, name: str, arguments: JsonObject, user: str | None) -> types.CallToolResult:
        from mcp_proxy.policy.access_tools import call_access_tool

        text, structured, is_error = await call_access_tool(
            name, arguments, engine=self._engine, facts=self._facts(), user=user, emit=self._emit)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured, is_error=is_error)


class ProxyTools:
    """Answers a call to one of the proxy's own tools; every other call goes on."""

    def __init__(self, tools: AccessTools) -> None:
        self._tools = tools

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        if call.name not in self._tools.names:
            return await call_next(call)
        call.audit_fields.update({"upstream": "proxy", "upstream.tool": call.name, "decision": "allow",
                                  "reason": "built_in"})
        result = await self._tools.call(call.name, call.arguments, call.user)
        call.outcome = "tool_error" if result.is_error else "ok"
        return result
