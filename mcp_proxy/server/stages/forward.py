"""Forward: the upstream runs the call with its credentials, within its call timeout."""

from __future__ import annotations

from mcp_proxy.errors import CallTimeout, UpstreamUnavailable
from mcp_proxy.server.call import CallResult, Next, ToolCall


class Forward:
    """The last stage: it answers, never calls on."""

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        entry, upstream = call.entry, call.upstream
        assert entry is not None, "Resolve runs before Forward"
        if upstream is None:
            raise UpstreamUnavailable(f"the upstream '{entry.upstream}' is not configured any more; "
                                      "list the tools again")
        timeout = upstream.cfg.call_timeout
        try:
            return await upstream.call_tool(entry.name, call.arguments, progress=call.progress, timeout=timeout)
        except TimeoutError:
            raise CallTimeout(f"The upstream '{entry.upstream}' did not answer within {timeout:g} s (call_timeout). "
                              "A write may or may not have taken effect: check before repeating it.") from None
