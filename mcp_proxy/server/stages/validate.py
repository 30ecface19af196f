"""Validate: the arguments against the tool's input schema, before anything is sent upstream. Bounded in time
and off the event loop where the schema has patterns (catalog/arguments.py); a check that runs out of time
fails the call with `ArgumentsUncheckable`, whose text the error boundary shows."""

from __future__ import annotations

from mcp_proxy.catalog.arguments import check_arguments_in_time
from mcp_proxy.server.call import CallResult, Next, ToolCall


class Validate:
    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        assert call.entry is not None, "Resolve runs before Validate"
        problem = await check_arguments_in_time(call.entry.input_schema, call.arguments, call.name)
        if problem is not None:
            return call.fail("invalid_arguments",
                             f"Invalid arguments for '{call.name}': {problem}. Fix the arguments and call again.")
        return await call_next(call)
