"""The UptimeObserver preset: an MCP upstream at the vendor's endpoint.

The key goes in exactly one header (`X-API-Key`, or `Authorization: Bearer`),
never both; keys start `uo_`; the vendor refuses web-app JWTs. Its 401/403
answers become the vendor's own advice.
"""

from __future__ import annotations

from dataclasses import replace

from mcp_proxy.config import SecretError, SecretRef, SecretStore, UpstreamConfig
from mcp_proxy.upstreams.mcp_upstream import McpUpstream


class UptimeObserverUpstream(McpUpstream):
    kind = "uptimeobserver"

    def __init__(self, cfg: UpstreamConfig, store: SecretStore) -> None:
        super().__init__(replace(cfg, headers={}), store)

    def _resolve(self, values: dict[str, str | SecretRef]) -> dict[str, str]:
        headers = super()._resolve(values)
        if self.cfg.api_key is None:
            raise SecretError(f"upstreams.{self.key}.api_key: not set; see the README's UptimeObserver section")
        key = self.cfg.api_key.resolve(self.store).strip()
        if key.count(".") == 2 and key.startswith("ey"):
            raise SecretError(
                f"upstreams.{self.key}.api_key: this looks like a web-app login token (JWT), which UptimeObserver "
                "refuses; create an MCP API key under Integrations > MCP and store that instead"
            )
        if not key.startswith("uo_"):
            raise SecretError(
                f"upstreams.{self.key}.api_key: UptimeObserver MCP keys start with 'uo_'; store the whole key, "
                "prefix included (create one under Integrations > MCP if you have none)"
            )
        if self.cfg.api_key_header == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        else:
            headers["X-API-Key"] = key
        return headers

    def auth_advice(self, status: int) -> str:
        ref = self.cfg.api_key
        if ref is not None and ref.scheme == "env":
            store = f"put it in the environment variable {ref.name}"
        else:
            store = f"store it with `mcp-access-proxy secret set {ref.name if ref else 'NAME'}`"
        return (
            f"UptimeObserver refused the key (HTTP {status}): it may be revoked, rotated or mistyped. Copy a current "
            f"MCP key (Integrations > MCP; it is shown once), include the 'uo_' prefix, send it in one header only "
            f"(upstreams.{self.key}.api_key_header), and {store}; web-app JWTs are not accepted"
        )
