"""The Opsgenie connector: alerts, on-call schedules, escalations, teams and users as MCP tools.

Entry point: `build(config, credentials, user_email=..., transport=...)`. Opsgenie is
end-of-life (support ends 2027-04-05); base URL and key stay configurable so a
gateway or the JSM successor's compatible endpoints can stand in.
"""

from __future__ import annotations

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, CredentialProvider
from mcp_proxy.connectors.guard import RememberingCredentials
from mcp_proxy.connectors.opsgenie import alerts, directory
from mcp_proxy.connectors.opsgenie.client import AsyncWrites, base_url_for, build_client
from mcp_proxy.connectors.opsgenie.common import poll_budget
from mcp_proxy.connectors.vendor import VendorConnector

__all__ = ["OpsgenieConnector", "base_url_for", "build", "poll_budget"]


class OpsgenieConnector(VendorConnector):
    kind = "opsgenie"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider, user_email: str | None,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        remembered = RememberingCredentials(credentials)
        super().__init__(config, remembered, build_client(config, remembered, transport), max(1, config.page_size))
        self.writes = AsyncWrites(self.client, poll_budget(config.call_timeout))
        # Opsgenie's `user` field is at most 100 characters; it names who acted in the alert log.
        self.user = (user_email or "").strip()[:100] or None
        self.offer(alerts.TOOLS.bind(self) + directory.TOOLS.bind(self))


def build(config: UpstreamConfig, credentials: CredentialProvider, *, user_email: str | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> Connector:
    """The Opsgenie connector for one configured upstream (`api = "jsm"`: its JSM Operations backend). No I/O."""
    if config.api == "jsm":
        from mcp_proxy.connectors import jsm

        return jsm.build(config, credentials, user_email=user_email, transport=transport)
    return OpsgenieConnector(config, credentials, user_email, transport)
