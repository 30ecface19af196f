"""Validate: the arguments against the tool's input schema, before anything is sent upstream."""

from __future__ import annotations

from mcp_proxy.catalog.arguments import check_arguments
from mcp_proxy.server.call import CallResult, Next, ToolCall


class Validate:
    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        assert call.entry is not None, "Resolve runs before Validate"
        problem = check_arguments(call.entry.input_schema, call.arguments)
        if problem is not None:
            return call.fail("invalid_arguments",
                             f"Invalid arguments for '{call.name}': {problem}. Fix the arguments and call again.")
        return await call_next(call)
