"""The validated configuration, as plain frozen dataclasses.

Secret-bearing fields hold `SecretRef`s, never values: they are resolved only
when a connection needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mcp_proxy.config.secrets import SecretRef

UPSTREAM_KINDS = ("pagerduty", "opsgenie", "statuspage", "uptimeobserver", "mcp")
REST_KINDS = ("pagerduty", "opsgenie", "statuspage")
AUDIT_PROTOCOLS = ("otlp-json", "otlp-protobuf", "ndjson", "splunk-hec")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class OAuthSettings:
    client_id: str
    client_secret: SecretRef | None
    redirect_uri: str
    scopes: tuple[str, ...]
    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None = None
    # No `region` in the config: the region the sign-in reports (ID token audience) picks the API host.
    region_from_token: bool = True


@dataclass(frozen=True)
class UpstreamConfig:
    key: str
    kind: str
    enabled: bool = True
    connect_timeout: float = 30.0
    call_timeout: float = 50.0
    # kind = "mcp" (and the uptimeobserver preset)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str | SecretRef] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    transport: str | None = None  # "streamable-http" | "sse" for URLs, "stdio" for commands
    headers: dict[str, str | SecretRef] = field(default_factory=dict)
    # The largest message read from the upstream; a larger answer fails its call (or its tools/list).
    max_message_bytes: int = 32 * 1024 * 1024
    # kind = "mcp": "auto" probes `server/discover` (the stateless 2026-07-28 era when offered, else the
    # handshake); "legacy" always speaks the handshake era (initialize), for servers whose behaviour on the
    # stateless era differs in a way that matters (list_changed, requests toward the user).
    protocol: str = "auto"
    # REST connectors
    base_url: str | None = None
    region: str = "us"
    api_key: SecretRef | None = None
    auth: str = "api_key"  # "api_key" | "oauth" | "none"; "basic" for Opsgenie's JSM backend
    oauth: OAuthSettings | None = None
    from_email: str | None = None  # PagerDuty `from`
    page_id: str | None = None  # Statuspage
    # Opsgenie: `api = "jsm"` serves the same tools from Jira Service Management Operations
    api: str = "opsgenie"  # "opsgenie" | "jsm"; kind = "pagerduty": "rest" | "mcp" (the hosted MCP server, at `url`)
    email: str | None = None  # JSM, auth = "basic": the Atlassian account's email
    api_token: SecretRef | None = None  # JSM, auth = "basic": the account's API token
    cloud_id: str | None = None  # JSM: the site's cloud id, or found from `site`
    site: str | None = None  # JSM: e.g. "acme.atlassian.net"
    resources_url: str | None = None  # JSM: where the cloud id is looked up (tenant info / accessible resources)
    organization_id: str | None = None  # Statuspage
    api_key_header: str = "x-api-key"  # UptimeObserver: "x-api-key" | "bearer"
    page_size: int = 25
    max_result_chars: int = 20000
    max_retries: int = 3
    rate_limit_per_second: float | None = None


@dataclass(frozen=True)
class PolicyConfig:
    source: str
    public_keys: tuple[str, ...] = ()
    poll_interval: float = 300.0
    timeout: float = 10.0
    headers: dict[str, str | SecretRef] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditConfig:
    collector: str | None = None
    protocol: str = "otlp-json"
    headers: dict[str, str | SecretRef] = field(default_factory=dict)
    durability: str = "group"  # "fsync" (per record) | "group" (group commit)
    group_commit_ms: float = 5.0
    segment_max_bytes: int = 8 * 1024 * 1024
    max_disk_bytes: int = 256 * 1024 * 1024
    batch_max_records: int = 500
    batch_max_bytes: int = 1024 * 1024
    push_interval: float = 5.0
    max_retry_interval: float = 300.0
    gzip: bool = True
    redact_fields: tuple[str, ...] = ()
    hash_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    """The proxy toward its client."""

    max_message_bytes: int = 32 * 1024 * 1024  # a longer line from the client is answered and skipped


@dataclass(frozen=True)
class Config:
    path: Path | None
    user_email: str | None
    log_level: str
    secrets_store: str
    policy: PolicyConfig | None
    audit: AuditConfig
    upstreams: dict[str, UpstreamConfig]
    max_tools: int | None = None
    server: ServerConfig = ServerConfig()
    # `tool_search` (top level or [server]): search, describe and call tools only; None (unset): only when the
    # approved tools exceed the client's known tool limit
    tool_search: bool | None = None

    @property
    def governed(self) -> bool:
        return self.policy is not None
