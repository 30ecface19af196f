"""What an exception in a call means for the audit record and for the model.

The one place that decides which exception text the model may see: a `ProxyError`'s text is written to
be shown (mcp_proxy/errors.py), anything else is an internal error whose text stays in the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_proxy.errors import ProxyError, ToolFailure

INTERNAL_ERROR_TEXT = ("The proxy hit an internal error while running this tool; nothing was reported by the "
                       "upstream. Try again; if it persists, run `mcp-access-proxy doctor` and check the proxy log.")


@dataclass(frozen=True)
class Failure:
    outcome: str  # tool_error (the tool ran and failed) | error
    error_type: str
    message: str  # for the model
    expected: bool  # a ProxyError; else an internal error worth a log line with its traceback


def failure_of(exc: Exception) -> Failure:
    if isinstance(exc, ToolFailure):
        return Failure("tool_error", exc.error_type, exc.message, True)
    if isinstance(exc, ProxyError):
        return Failure("error", exc.error_type, str(exc), True)
    return Failure("error", type(exc).__name__, INTERNAL_ERROR_TEXT, False)
