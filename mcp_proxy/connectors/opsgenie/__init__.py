"""The Opsgenie connector: alerts, on-call schedules, escalations, teams and users as MCP tools.

Entry point: `build(config, credentials, user_email=..., transport=...)`. Opsgenie is
end-of-life (support ends 2027-04-05); base URL and key stay configurable so a
gateway or the JSM successor's compatible endpoints can stand in.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import (
    Connector, ConnectorError, Credential, CredentialProvider, RestTool, ToolHandler, ToolOutput,
)
from mcp_proxy.connectors.opsgenie.alerts import alert_tools
from mcp_proxy.connectors.opsgenie.client import AsyncWrites, base_url_for, build_client
from mcp_proxy.connectors.opsgenie.directory import directory_tools

__all__ = ["OpsgenieConnector", "build", "base_url_for", "poll_budget"]


def poll_budget(call_timeout: float) -> float:
    """How long a write waits for Opsgenie to process it: a few seconds, well inside the call timeout."""
    return max(0.2, min(5.0, call_timeout / 4))


class _RememberingCredentials:
    """Passes credentials through and remembers the values, so that errors can be scrubbed of them."""

    def __init__(self, provider: CredentialProvider) -> None:
        self._provider = provider
        self.values: set[str] = set()

    async def __call__(self) -> Credential:
        credential = await self._provider()
        value = credential.value.strip()
        if len(value) >= 6:
            self.values.add(value)
        return credential


class OpsgenieConnector(Connector):
    kind = "opsgenie"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider, user_email: str | None,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        self.config = config
        self.base_url = base_url_for(config)
        self._credentials = _RememberingCredentials(credentials)
        self.client = build_client(config, self._credentials, transport)
        self.writes = AsyncWrites(self.client, poll_budget(config.call_timeout))
        # Opsgenie's `user` field is at most 100 characters; it names who acted in the alert log.
        self.user = (user_email or "").strip()[:100] or None
        self.max_chars = config.max_result_chars
        self.page_size = max(1, config.page_size)
        self._tools = [self._guarded(t) for t in alert_tools(self) + directory_tools(self)]

    def _scrub(self, message: str) -> str:
        for value in self._credentials.values:
            message = message.replace(value, "<redacted>")
        return message

    def _guarded(self, tool: RestTool) -> RestTool:
        inner: ToolHandler = tool.handler

        @functools.wraps(inner)
        async def handler(arguments: dict[str, Any]) -> ToolOutput:
            try:
                output = await inner(dict(arguments or {}))
            except ConnectorError as exc:
                raise ConnectorError(self._scrub(exc.message), exc.error_type) from None
            output.text = self._scrub(output.text)
            return output

        return RestTool(tool.name, tool.description, tool.input_schema, handler, read_only=tool.read_only,
                        destructive=tool.destructive, idempotent=tool.idempotent, open_world=tool.open_world,
                        title=tool.title, extra=tool.extra)

    def tools(self) -> list[RestTool]:
        return list(self._tools)

    async def aclose(self) -> None:
        await self.client.aclose()


def build(config: UpstreamConfig, credentials: CredentialProvider, *, user_email: str | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> Connector:
    """The Opsgenie connector for one configured upstream. Does no I/O."""
    return OpsgenieConnector(config, credentials, user_email, transport)
