"""What an MCP upstream's failures are called: why a connect failed, and what a failed call tells the model.

Every text here says what happened and what to do, and none carries an exception's own text (which might
hold a secret from a header or a URL). upstreams/mcp_upstream.py decides when each applies.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcp_proxy.config import SecretError, UpstreamConfig
from mcp_proxy.errors import UpstreamError
from mcp_proxy.upstreams.base import error_result
from mcp_proxy.upstreams.eras import StaleVerdict
from mcp_proxy.upstreams.raw import is_too_large


class AnswerTooLarge(UpstreamError):
    """An upstream's answer was over its `max_message_bytes`; the text names the limit and what to do."""

    error_type = "answer_too_large"


class HttpStatusWatch:
    """Remembers the last HTTP error status: the SDK turns a 401 into a generic error.

    `auth_refusals` counts 401/403 answers, so that a call can tell whether its own failure came with one
    (the SDK reports a refused POST only as MCP error -32603 "Server returned an error response")."""

    def __init__(self) -> None:
        self.last_error_status: int | None = None
        self.auth_refusals = 0

    async def on_response(self, response: Any) -> None:
        if response.status_code >= 400:
            self.last_error_status = response.status_code
            if response.status_code in (401, 403):
                self.auth_refusals += 1


def leaf_of(exc: BaseException) -> BaseException:
    """The first exception inside nested exception groups (the SDK's task groups wrap a connect's failure)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def failed_on_size(exc: BaseException) -> bool:
    """Whether a connect failed on an answer over max_message_bytes (the handshake's or the tool list's)."""
    leaf = leaf_of(exc)
    return isinstance(leaf, AnswerTooLarge) or (isinstance(leaf, MCPError) and is_too_large(leaf.error))


def bytes_text(n: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def too_large_text(cfg: UpstreamConfig, what: str) -> str:
    return (f"its {what} answer was larger than {bytes_text(cfg.max_message_bytes)} (max_message_bytes); "
            f"raise upstreams.{cfg.key}.max_message_bytes in the proxy's config, or ask the server's "
            "maintainers why it is so large")


def connect_failure_text(exc: BaseException, cfg: UpstreamConfig, http_status: int | None,
                         auth_advice: str | None) -> str:
    """A one-line reason a connect failed. `http_status`: the last HTTP error seen; `auth_advice`: what to do
    when it was a 401 or 403."""
    leaf = leaf_of(exc)
    if isinstance(leaf, (SecretError, AnswerTooLarge, StaleVerdict)):
        return str(leaf)
    if isinstance(leaf, FileNotFoundError):
        return f"the command {cfg.command!r} was not found; check upstreams.{cfg.key}.command"
    if isinstance(leaf, TimeoutError):
        return f"no answer within {cfg.connect_timeout:g} s (connect_timeout)"
    if http_status in (401, 403) and auth_advice is not None:
        return auth_advice
    if http_status:
        return f"the server answered HTTP {http_status}"
    if isinstance(leaf, MCPError):
        if is_too_large(leaf.error):
            return too_large_text(cfg, "handshake (initialize)")
        if leaf.error.code == CONNECTION_CLOSED:
            return "the server closed the connection (it exited or crashed)"
        return f"the server refused the handshake (MCP error {leaf.error.code})"
    return f"connection failed ({type(leaf).__name__})"


def call_answer_too_large(cfg: UpstreamConfig) -> AnswerTooLarge:
    return AnswerTooLarge(
        f"The answer of the upstream '{cfg.key}' was larger than {bytes_text(cfg.max_message_bytes)} "
        "(max_message_bytes), so the proxy dropped it; the tool may have run anyway. Ask for less (a narrower "
        f"query or a smaller page), or raise upstreams.{cfg.key}.max_message_bytes in the proxy's config.")


def closed_before_sent(key: str) -> str:
    return (f"the upstream '{key}' closed the connection before the call was sent (it exited or restarted), so "
            "the call did not run. The proxy reconnects in the background; try again shortly, or run "
            "`mcp-access-proxy doctor`.")


def closed_during_call(key: str) -> str:
    return (f"the upstream '{key}' closed the connection during the call (it crashed or restarted); the call may "
            "or may not have taken effect. The proxy reconnects in the background: check the state before "
            "repeating a write.")


def not_json_result(key: str) -> types.CallToolResult:
    return error_result(f"The upstream '{key}' answered with a message that is not valid JSON (for example NaN, "
                        "or nested too deep); the proxy cannot pass it on, and the tool may have run. Report "
                        "this to the server's maintainers.")


def rejected_result(key: str, code: int, message: str) -> types.CallToolResult:
    return error_result(f"The upstream '{key}' rejected the call (MCP error {code}): {message[:500]}")


def not_mcp_result(key: str) -> types.CallToolResult:
    return error_result(f"The upstream '{key}' returned a result that is not valid MCP; the proxy cannot pass it "
                        "on. Report this to the server's maintainers.")


def refused_mid_session_result(key: str, advice: str) -> types.CallToolResult:
    return error_result(f"The upstream '{key}' did not run the call: {advice}. Its other tools fail the same way "
                        "until the credential is fixed.")
