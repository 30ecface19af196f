"""The JSM Operations backend of the Opsgenie connector (`kind = "opsgenie"`, `api = "jsm"`).

Opsgenie's customers move to Jira Service Management Operations (Opsgenie support ends 2027-04-05).
This backend offers the Opsgenie tools under the same names and, where JSM can serve them, the same
arguments, so a policy written for `og.*` keeps governing after the migration. Not offered (JSM has
no such API): get_team, list_users, get_user. Facts: ../shared/vendor-specs/jsm-ops.md.

Auth: `auth = "basic"` (account email + API token) hands in `Credential("api_token", token)`, sent as Basic to
`/jsm/ops/api/{cloudId}`. `auth = "oauth"` (each user's Atlassian sign-in, OAuth 2.0 3LO) hands in
`Credential("bearer", token)`, sent as Bearer to the 3LO root `/ex/jira/{cloudId}/jsm/ops/api`
(`JsmConnector.root`); the cloud id comes from the sites the token can reach (`CloudId`, `site` picks one),
and a 401 is retried once when the sign-in has a new token.
"""

from __future__ import annotations

from typing import Any

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, ConnectorError, CredentialProvider, ToolHandler, ToolOutput
from mcp_proxy.connectors.guard import RememberingCredentials, run_once
from mcp_proxy.connectors.jsm import alerts, directory
from mcp_proxy.connectors.jsm.client import AsyncWrites, CloudId, basic_value, build_client
from mcp_proxy.connectors.opsgenie.common import poll_budget
from mcp_proxy.connectors.vendor import VendorConnector

__all__ = ["NOT_OFFERED", "JsmConnector", "build"]

# Opsgenie tools this backend cannot serve.
NOT_OFFERED = ("get_team", "list_users", "get_user")


class _Credentials(RememberingCredentials):
    """Remembered credentials, plus what a per-user sign-in can tell: a new token after a 401."""

    async def rejected(self) -> bool:
        """JSM answered 401 to the last bearer token: True when the sign-in (OAuthCredentials) has a new one.
        It raises the sign-in request when the grant is dead."""
        hook = getattr(self._provider, "rejected", None)
        last = self.last
        if hook is None or last is None or last.scheme != "bearer":
            return False
        return bool(await hook(last.value))


class JsmConnector(VendorConnector):
    kind = "opsgenie"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        remembered = _Credentials(credentials)
        super().__init__(config, remembered, build_client(config, remembered, transport), max(1, config.page_size))
        self.credentials: _Credentials = remembered
        self.cloud_id = CloudId(config, transport, remembered)
        self.writes = AsyncWrites(self.client, self.api, poll_budget(config.call_timeout))
        self.offer(alerts.TOOLS.bind(self) + directory.TOOLS.bind(self))

    async def run(self, inner: ToolHandler, arguments: dict[str, Any]) -> ToolOutput:
        try:
            return await run_once(inner, arguments)
        except ConnectorError as exc:
            # A 401 means the request was not carried out, so even a write may go once more with a new token.
            if exc.error_type != "http_401" or not await self.credentials.rejected():
                raise
        return await run_once(inner, arguments)

    def root(self, cloud_id: str) -> str:
        """The API root under the host: Basic uses /jsm/ops/api/{cloudId}; OAuth 3LO /ex/jira/{cloudId}/..."""
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
