"""The Statuspage connector: pages, components, incidents, maintenances, metrics, subscribers and
organisation users as MCP tools, over the manage API v1 (`https://api.statuspage.io/v1`).

Entry point: `build(config, credentials, user_email=..., transport=...)`. Tool names are stable.
Calls go to `config.page_id` / `config.organization_id` unless a call passes `page_id` /
`organization_id`. Requests are paced to 1 per second per key (Statuspage's limit;
`rate_limit_per_second` overrides), and 420/429 answers are waited out and retried.
"""

from __future__ import annotations

import httpx

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.connectors.base import Connector, CredentialProvider
from mcp_proxy.connectors.guard import RememberingCredentials
from mcp_proxy.connectors.statuspage import audience, incidents, maintenances, status
from mcp_proxy.connectors.statuspage.client import Scope, base_url_for, build_client
from mcp_proxy.connectors.vendor import VendorConnector

__all__ = ["TOOL_OPERATIONS", "StatuspageConnector", "base_url_for", "build"]

P = "/pages/{page_id}"
# The operations each tool calls (method, spec path template): its read/write class follows.
TOOL_OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "list_pages": (("GET", "/pages"),),
    "get_page": (("GET", P),),
    "list_components": (("GET", f"{P}/components"),),
    "get_component": (("GET", f"{P}/components/{{component_id}}"),),
    "update_component_status": (("PATCH", f"{P}/components/{{component_id}}"),),
    "list_component_groups": (("GET", f"{P}/component-groups"),),
    "get_component_group": (("GET", f"{P}/component-groups/{{id}}"),),
    "list_incidents": (("GET", f"{P}/incidents"),),
    "list_unresolved_incidents": (("GET", f"{P}/incidents/unresolved"),),
    "get_incident": (("GET", f"{P}/incidents/{{incident_id}}"),),
    "create_incident": (("POST", f"{P}/incidents"),),
    "update_incident": (("PATCH", f"{P}/incidents/{{incident_id}}"),),
    "resolve_incident": (("PATCH", f"{P}/incidents/{{incident_id}}"),),
    "list_maintenances": (("GET", f"{P}/incidents/upcoming"), ("GET", f"{P}/incidents/active_maintenance"),
                          ("GET", f"{P}/incidents/scheduled")),
    "create_maintenance": (("POST", f"{P}/incidents"),),
    "update_maintenance": (("PATCH", f"{P}/incidents/{{incident_id}}"),),
    "list_metrics": (("GET", f"{P}/metrics"),),
    "add_metric_data_point": (("POST", f"{P}/metrics/{{metric_id}}/data"),),
    "list_subscribers": (("GET", f"{P}/subscribers"),),
    "count_subscribers": (("GET", f"{P}/subscribers/count"),),
    "add_subscriber": (("POST", f"{P}/subscribers"),),
    "unsubscribe_subscriber": (("DELETE", f"{P}/subscribers/{{subscriber_id}}"),),
    "list_users": (("GET", "/organizations/{organization_id}/users"),),
}


class StatuspageConnector(VendorConnector):
    kind = "statuspage"

    def __init__(self, config: UpstreamConfig, credentials: CredentialProvider,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        remembered = RememberingCredentials(credentials)
        super().__init__(config, remembered, build_client(config, remembered, transport),
                         max(1, min(100, config.page_size)))
        self.scope = Scope(config.key, config.page_id, config.organization_id)
        self.offer(status.TOOLS.bind(self) + incidents.TOOLS.bind(self) + maintenances.TOOLS.bind(self)
                   + audience.TOOLS.bind(self))


def build(config: UpstreamConfig, credentials: CredentialProvider, *, user_email: str | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> Connector:
    """The Statuspage connector for one configured upstream. Does no I/O.

    `user_email` is accepted for the common interface; Statuspage records the key's owner as the actor."""
    return StatuspageConnector(config, credentials, transport)
