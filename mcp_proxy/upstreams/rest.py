"""A built-in REST connector seen as an upstream.

Connector tools are static, so they are "connected" at once; credentials are
resolved only when a call needs them.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types

from mcp_proxy.config import SecretRef, SecretStore, UpstreamConfig
from mcp_proxy.connectors.base import Connector, ConnectorError, Credential, CredentialProvider, RestTool
from mcp_proxy.errors import AuthUnavailable
from mcp_proxy.upstreams.base import ProgressRelay, SignInBroker, ToolFailure, Upstream, UpstreamEvents, UpstreamStatus

if TYPE_CHECKING:
    from mcp_proxy.auth import TokenBroker

log = logging.getLogger(__name__)


def load_connector(cfg: UpstreamConfig, credentials: CredentialProvider, user_email: str | None) -> Connector:
    module = importlib.import_module(f"mcp_proxy.connectors.{cfg.kind}")
    return module.build(cfg, credentials, user_email=user_email)


def tool_dict(tool: RestTool) -> dict[str, Any]:
    annotations = {k: v for k, v in tool.annotations().items() if v is not None}
    return {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema,
            "annotations": annotations}


def api_key_credentials(cfg: UpstreamConfig, store: SecretStore) -> CredentialProvider:
    """The configured key; with `auth = "basic"` (JSM Operations) the account's API token, which the connector
    pairs with `email`."""
    if cfg.auth == "basic":
        return _secret_credentials(cfg.api_token, store, "api_token",
                                   f"upstreams.{cfg.key}.api_token is not set; see the README (JSM Operations)")
    return _secret_credentials(cfg.api_key, store, "api_key",
                               f"upstreams.{cfg.key}.api_key is not set; see the README for this vendor")


def _secret_credentials(ref: SecretRef | None, store: SecretStore, kind: str, missing: str) -> CredentialProvider:
    async def provide() -> Credential:
        if ref is None:
            raise ConnectorError(missing, "no_credentials")
        # keyring may block on a D-Bus round trip: keep it off the event loop.
        return Credential(kind, await anyio.to_thread.run_sync(ref.resolve, store))

    return provide


class OAuthCredentials:
    """The signed-in user's token for a connector (a CredentialProvider), and what else the connector may ask
    of the sign-in: whether a refused token can be replaced, and the region the account lives in."""

    def __init__(self, broker: TokenBroker) -> None:
        self.broker = broker

    async def __call__(self) -> Credential:
        # SignInRequired passes through: the call pipeline starts a sign-in on it.
        try:
            return Credential("bearer", await self.broker.access_token())
        except AuthUnavailable as exc:
            raise ConnectorError(f"{exc}.", exc.error_type) from None

    async def rejected(self, token: str | None) -> bool:
        """The vendor refused `token` (HTTP 401): True when a new one is ready to retry with."""
        try:
            return await self.broker.rejected(token)
        except AuthUnavailable as exc:
            raise ConnectorError(f"{exc}.", exc.error_type) from None

    def region(self) -> str | None:
        return self.broker.region


class RestUpstream(Upstream):
    def __init__(self, cfg: UpstreamConfig, connector: Connector, *, broker: SignInBroker | None = None) -> None:
        self.key = cfg.key
        self.kind = cfg.kind
        self.cfg = cfg
        self.connector = connector
        self.status = UpstreamStatus()
        self._broker = broker
        self._tools = {t.name: t for t in connector.tools()}

    def tool_dicts(self) -> list[dict[str, Any]]:
        return [tool_dict(t) for t in self.connector.tools()]

    def static_tools(self) -> list[dict[str, Any]]:
        return self.tool_dicts()

    def sign_in_broker(self) -> SignInBroker | None:
        return self._broker

    async def run(self, events: UpstreamEvents) -> None:
        self.status.state = "connected"
        self.status.tool_count = len(self._tools)
        await events.tools_changed(self.key, self.tool_dicts())
        self.status.connected_once.set()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.connector.aclose()

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float
    ) -> types.CallToolResult:
        try:
            with anyio.fail_after(timeout):
                output = await self.connector.call(name, arguments)
        except ConnectorError as exc:  # until every connector error is a ToolFailure itself
            raise ToolFailure(exc.message, exc.error_type) from None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=output.text)],
            structured_content=output.structured,
            is_error=output.is_error,
        )
