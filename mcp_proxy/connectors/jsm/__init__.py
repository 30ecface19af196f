"""The JSM Operations backend of the Opsgenie connector (`kind = "opsgenie"`, `api = "jsm"`).

Opsgenie's customers move to Jira Service Management Operations (Opsgenie support ends 2027-04-05).
This backend offers the Opsgenie tools under the same names and, where JSM can serve them, the same
arguments, so a policy written for `og.*` keeps governing after the migration. Not offered (JSM has
no such API): get_team, list_users, get_user. Facts: ../shared/vendor-specs/jsm-ops.md.

Auth: `auth = "basic"` (account email + API token). The credential arrives as
`Credential("api_token", token)`; a later `auth = "oauth"` hands in `Credential("bearer", token)`,
which `client.auth_headers_for` already sends as a Bearer token — to the 3LO root
`/ex/jira/{cloudId}/jsm/ops/api` (`JsmConnector.root`).
"""

from __future__ import annotations

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, CredentialProvider
from mcp_proxy.connectors.guard import RememberingCredentials
from mcp_proxy.connectors.jsm import alerts, directory
from mcp_proxy.connectors.jsm.client import AsyncWrites, CloudId, basic_value, build_client
from mcp_proxy.connectors.vendor import VendorConnector

__all__ = ["NOT_OFFERED", "JsmConnector", "build"]

# Opsgenie tools this backend cannot serve.
NOT_OFFERED = ("get_team", "list_users", "get_user")


def poll_budget(call_timeout: float) -> float:
    return max(0.2, min(5.0, call_timeout / 4))


class JsmConnector(VendorConnector):
    kind = "opsgenie"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        remembered = RememberingCredentials(credentials)
        super().__init__(config, remembered, build_client(config, remembered, transport), max(1, config.page_size))
        self.cloud_id = CloudId(config, transport)
        self.writes = AsyncWrites(self.client, self.api, poll_budget(config.call_timeout))
        self.offer(alerts.TOOLS.bind(self) + directory.TOOLS.bind(self))

    def root(self, cloud_id: str) -> str:
        """The API root under the host: Basic uses /jsm/ops/api/{cloudId}; OAuth 3LO (later) /ex/jira/{cloudId}/..."""
        if self.config.auth == "oauth":
            return f"/ex/jira/{cloud_id}/jsm/ops/api"
        return f"/jsm/ops/api/{cloud_id}"

    async def api(self, path: str) -> str:
        """`/v1/...` as the path to request, under the site's cloud id (looked up once when not configured)."""
        return self.root(await self.cloud_id.get()) + path

    def scrub(self, message: str) -> str:
        message = super().scrub(message)
        if self.config.email:  # the Basic header's value too, should a gateway echo it
            for value in self.credentials.values:
                message = message.replace(basic_value(self.config.email, value), "<redacted>")
        return message


def build(config: UpstreamConfig, credentials: CredentialProvider, *, user_email: str | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> Connector:
    """The JSM Operations backend for one configured upstream. Does no I/O."""
    return JsmConnector(config, credentials, transport)
