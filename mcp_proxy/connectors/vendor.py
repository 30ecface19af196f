"""What the built-in vendor connectors have in common: one paced client, remembered credentials,
result limits from the config, and tools guarded so that no credential reaches the model."""

from __future__ import annotations

from typing import Any

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, RestTool, ToolHandler, ToolOutput
from mcp_proxy.connectors.guard import RememberingCredentials, guarded, run_once
from mcp_proxy.connectors.http import RestClient


class VendorConnector(Connector):
    """A connector over one vendor's REST API. A subclass builds its client, then offers its tools."""

    def __init__(self, config: UpstreamConfig, credentials: RememberingCredentials, client: RestClient,
                 page_size: int) -> None:
        self.config = config
        self.base_url = client.base_url
        self.credentials = credentials
        self.client = client
        self.max_chars = config.max_result_chars
        self.page_size = page_size
        self._tools: list[RestTool] = []

    def offer(self, tools: list[RestTool]) -> None:
        """Make `tools` this connector's tools, each guarded by `run` and scrubbed of credentials."""
        self._tools = [guarded(t, self.scrub, self.run, self.tool_extra(t)) for t in tools]

    def scrub(self, message: str) -> str:
        return self.credentials.scrub(message)

    async def run(self, inner: ToolHandler, arguments: dict[str, Any]) -> ToolOutput:
        """Runs one tool call; a vendor may retry here (e.g. once more with a refreshed token)."""
        return await run_once(inner, arguments)

    def tool_extra(self, tool: RestTool) -> dict[str, Any]:
        """Extra data a vendor attaches to a tool (PagerDuty: the OAuth scopes it needs)."""
        return tool.extra

    def tools(self) -> list[RestTool]:
        return list(self._tools)

    async def aclose(self) -> None:
        await self.client.aclose()
