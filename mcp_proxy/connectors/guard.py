"""Keeping secrets out of what a tool returns.

A vendor may echo the key it was sent (in an error message, a log entry, a field of the answer).
`RememberingCredentials` remembers each credential value a connector used, and `guarded` wraps a
tool so that its text and its error message are scrubbed of them before the model sees either.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from mcp_proxy.connectors.base import ConnectorError, Credential, CredentialProvider, RestTool, ToolHandler, ToolOutput

REDACTED = "<redacted>"


class RememberingCredentials:
    """Passes credentials through and remembers the values, so that errors can be scrubbed of them.

    Values shorter than `min_length` are not remembered: replacing every "abc" in a message would
    mangle it and protect nothing a real key needs."""

    def __init__(self, provider: CredentialProvider, min_length: int = 6) -> None:
        self._provider = provider
        self._min_length = min_length
        self.values: set[str] = set()
        self.last: Credential | None = None

    async def __call__(self) -> Credential:
        credential = await self._provider()
        value = credential.value.strip()
        if len(value) >= self._min_length:
            self.values.add(value)
        self.last = credential
        return credential

    def scrub(self, message: str) -> str:
        for value in self.values:
            message = message.replace(value, REDACTED)
        return message


# Runs a tool's handler with its arguments; a connector may put a retry around it (see `guarded`).
Runner = Callable[[ToolHandler, dict[str, Any]], Awaitable[ToolOutput]]


async def run_once(inner: ToolHandler, arguments: dict[str, Any]) -> ToolOutput:
    return await inner(dict(arguments or {}))


def guarded(tool: RestTool, scrub: Callable[[str], str], run: Runner = run_once,
            extra: dict[str, Any] | None = None) -> RestTool:
    """`tool` whose output text and error message pass through `scrub`; `extra` replaces its extra data."""
    inner: ToolHandler = tool.handler

    @functools.wraps(inner)
    async def handler(arguments: dict[str, Any]) -> ToolOutput:
        try:
            output = await run(inner, arguments)
        except ConnectorError as exc:
            # A plain ConnectorError: subclasses (AlreadyDone, ...) are handled inside the tools already.
            raise ConnectorError(scrub(exc.message), exc.error_type) from None
        output.text = scrub(output.text)
        return output

    return dataclasses.replace(tool, handler=handler, extra=tool.extra if extra is None else extra)
