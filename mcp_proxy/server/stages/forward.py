"""Forward: the upstream runs the call with its credentials, within its call timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mcp_proxy.errors import CallTimeout, UpstreamUnavailable
from mcp_proxy.server.call import CallResult, Next, ToolCall

if TYPE_CHECKING:
    from mcp_proxy.upstreams.base import Upstream


class Forward:
    """The last stage: it answers, never calls on."""

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        return await on_upstream(call, lambda upstream, name, timeout: upstream.call_tool(
            name, call.arguments, progress=call.progress, timeout=timeout))


async def on_upstream(call: ToolCall, run: Callable[[Upstream, str, float], Awaitable[CallResult]]) -> CallResult:
    """`run(upstream, the upstream's tool name, call_timeout)` for the call's resolved tool: the first try
    (Forward) or a later round of the same call (UpstreamInput), with the same errors."""
    entry, upstream = call.entry, call.upstream
    assert entry is not None, "Resolve runs before the upstream is called"
    if upstream is None:
        raise UpstreamUnavailable(f"the upstream '{entry.upstream}' is not configured any more; list the tools again")
    timeout = upstream.cfg.call_timeout
    try:
        return await run(upstream, entry.name, timeout)
    except TimeoutError:
        raise CallTimeout(f"The upstream '{entry.upstream}' did not answer within {timeout:g} s (call_timeout). "
                          "A write may or may not have taken effect: check before repeating it.") from None
