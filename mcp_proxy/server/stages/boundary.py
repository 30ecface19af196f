"""The error boundary: no exception text reaches the model but a `ProxyError`'s."""

from __future__ import annotations

import logging

from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.server.failures import failure_of
from mcp_proxy.upstreams.base import error_result

log = logging.getLogger(__name__)


class ErrorBoundary:
    """Turns every exception from the stages inside it into an `isError` result. Cancellation passes
    through: a cancelled request gets no answer."""

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        try:
            return await call_next(call)
        except Exception as exc:
            failure = failure_of(exc)
            if not failure.expected:
                log.error("unexpected %s while calling %s", type(exc).__name__, call.name,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            return error_result(failure.message)
