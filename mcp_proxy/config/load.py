"""Find, parse and validate the TOML configuration.

Every problem is reported with its key path and the fix; all problems in a
file are collected so that one run shows them all.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mcp_proxy.config.checker import LOOPBACK_HOSTS, Checker
from mcp_proxy.config.model import (
    AUDIT_PROTOCOLS,
    LOG_LEVELS,
    REST_KINDS,
    UPSTREAM_KINDS,
    AuditConfig,
    Config,
    OAuthSettings,
    PolicyConfig,
    ServerConfig,
    UpstreamConfig,
)
from mcp_proxy.errors import ConfigError
from mcp_proxy.paths import CONFIG_ENV, Paths

UPSTREAM_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}$")
RESERVED_KEYS = ("proxy",)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SECRET_HEADER_RE = re.compile(r"(auth|key|token|secret|cookie|password)", re.I)
UPTIMEOBSERVER_URL = "https://mcp.uptimeobserver.com/mcp"


def find_config_file(paths: Paths, explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`--config` wins, then `MCP_ACCESS_PROXY_CONFIG`, then the user config dir."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser().absolute()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser().absolute()
    return paths.default_config_file


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"no configuration file at {path}; create one (see client-configs/proxy-config.example.toml) "
             "or pass --config PATH"],
            path,
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}; check the file's permissions"], path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(["the file is not UTF-8 text; save it as UTF-8"], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}; fix the syntax at that line"], path) from None
    return parse_config(data, path)


_COMMON_UPSTREAM_KEYS = {"kind", "enabled", "connect_timeout", "call_timeout"}
_KIND_KEYS: dict[str, set[str]] = {
    "mcp": {"command", "args", "env", "cwd", "url", "transport", "headers", "auth", "client_id", "client_secret",
            "redirect_uri", "scopes", "authorize_url", "token_url", "revoke_url", "max_message_bytes",
            "protocol"},
    "uptimeobserver": {"url", "api_key", "api_key_header"},
    "pagerduty": {"base_url", "region", "api_key", "auth", "from", "client_id", "client_secret", "redirect_uri",
                  "scopes", "authorize_url", "token_url", "revoke_url", "api", "url"},
    "opsgenie": {"base_url", "region", "api_key", "api", "auth", "email", "api_token", "cloud_id", "site",
                 "resources_url", "client_id", "client_secret", "redirect_uri", "scopes", "authorize_url",
                 "token_url"},
    "statuspage": {"base_url", "api_key", "page_id", "organization_id"},
}
_REST_EXTRA = {"page_size", "max_result_chars", "max_retries", "rate_limit_per_second"}
_DEFAULT_PD_SCOPES = ("read", "write")
# JSM Operations, auth = "oauth" (jsm-ops.md §2.3): the scopes the Opsgenie tools need, `read:me` (who signed in)
# and `offline_access` (a rotating refresh token).
_DEFAULT_JSM_SCOPES = ("read:ops-alert:jira-service-management", "write:ops-alert:jira-service-management",
                       "read:ops-config:jira-service-management", "read:me", "offline_access")
_JSM_OAUTH_KEYS = ("client_id", "client_secret", "redirect_uri", "scopes", "authorize_url", "token_url")


def _parse_upstream(c: Checker, key: str, data: dict[str, Any]) -> UpstreamConfig | None:
    where = f"upstreams.{key}"
    if not UPSTREAM_KEY_RE.match(key):
        c.add(f"{where}: the key is the tool-name prefix and must be 1-16 characters of a-z, 0-9 or -, "
              f"starting with a letter or digit (no _: it separates prefix and tool); rename the table, "
              f"e.g. [upstreams.pd]")
    elif key in RESERVED_KEYS:
        c.add(f"{where}: the prefix {key!r} is reserved for the proxy's own tools; rename the table, "
              f"e.g. [upstreams.{key}2]")
    kind = data.get("kind")
    if kind not in UPSTREAM_KINDS:
        got = f" (got {kind!r})" if kind else " (missing)"
        c.add(f"{where}.kind: must be one of {', '.join(UPSTREAM_KINDS)}{got}")
        return None
    allowed = _COMMON_UPSTREAM_KEYS | _KIND_KEYS[kind] | (_REST_EXTRA if kind in REST_KINDS else set())
    c.known(data, where, allowed)
    common = dict(
        key=key,
        kind=kind,
        enabled=c.boolean(data, "enabled", where, True),
        connect_timeout=c.number(data, "connect_timeout", where, 30.0),
        call_timeout=c.number(data, "call_timeout", where, 50.0),
    )
    if kind in REST_KINDS:
        common.update(
            page_size=c.integer(data, "page_size", where, 25),
            max_result_chars=c.integer(data, "max_result_chars", where, 20000, minimum=500),
            max_retries=c.integer(data, "max_retries", where, 3, minimum=0),
        )
        if "rate_limit_per_second" in data:
            common["rate_limit_per_second"] = c.number(data, "rate_limit_per_second", where, 1.0)
        base_url = c.string(data, "base_url", where)
        c.url(base_url, f"{where}.base_url")
        common["base_url"] = base_url.rstrip("/") if base_url else None

    if kind == "mcp":
        command = c.string(data, "command", where)
        url = c.string(data, "url", where)
        if bool(command) == bool(url):
            c.add(f"{where}: set exactly one of command (a local stdio server) or url (a remote server)")
        if url:
            c.url(url, f"{where}.url", loopback_http_only=True)
        transport = c.string(data, "transport", where, choices=("streamable-http", "sse"))
        if transport and command:
            c.add(f"{where}.transport: only applies to url upstreams; remove it")
        if url and not transport:
            transport = "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "streamable-http"
        if command and not os.path.isabs(command):
            # Desktop clients start us with a minimal PATH; resolve now so the child is found.
            import shutil

            found = shutil.which(command)
            if found:
                command = found
            else:
                c.add(f"{where}.command: {command!r} is not on PATH; give the absolute path "
                      f"(desktop clients start servers with a minimal PATH)")
        auth = c.string(data, "auth", where, "none", choices=("none", "oauth"))
        # Servers with dynamic client registration need no client_id; the others get one from the config.
        oauth = _parse_oauth(c, data, where, scopes_default=(), client_id_required=False) if auth == "oauth" else None
        return UpstreamConfig(
            **common,
            command=command,
            args=c.strings(data, "args", where),
            env=c.mapping(data, "env", where, SECRET_HEADER_RE),
            cwd=c.string(data, "cwd", where),
            url=url,
            transport=transport or ("stdio" if command else None),
            headers=c.mapping(data, "headers", where, SECRET_HEADER_RE),
            max_message_bytes=c.integer(data, "max_message_bytes", where, 32 * 1024 * 1024, minimum=65536),
            protocol=c.string(data, "protocol", where, "auto", choices=("auto", "legacy")) or "auto",
            auth=auth or "none",
            oauth=oauth,
        )
    if kind == "uptimeobserver":
        url = c.string(data, "url", where, UPTIMEOBSERVER_URL)
        c.url(url, f"{where}.url")
        api_key = c.secret(data, "api_key", where)
        if api_key is None and "api_key" not in data:
            c.add(f"{where}.api_key: required; create an MCP key in UptimeObserver (Integrations > MCP), store it "
                  f"with `mcp-access-proxy secret set uptimeobserver` and write api_key = \"keyring:uptimeobserver\"")
        return UpstreamConfig(
            **common, url=url, transport="streamable-http", api_key=api_key,
            api_key_header=c.string(data, "api_key_header", where, "x-api-key",
                                    choices=("x-api-key", "bearer")) or "x-api-key",
        )
    if kind == "pagerduty":
        api = c.string(data, "api", where, "rest", choices=("rest", "mcp")) or "rest"
        url = c.string(data, "url", where)
        if api == "mcp":
            c.url(url, f"{where}.url")
            for rest_only in ("from", *sorted(_REST_EXTRA)):
                if rest_only in data:
                    c.add(f"{where}.{rest_only}: only for api = \"rest\" (the built-in connector); PagerDuty's hosted "
                          f"MCP server acts as the key's or the token's user; remove it")
        elif url:
            c.add(f"{where}.url: only for api = \"mcp\" (PagerDuty's hosted MCP server); the REST API's root is "
                  f"base_url")
        auth = c.string(data, "auth", where, "api_key", choices=("api_key", "oauth")) or "api_key"
        api_key = c.secret(data, "api_key", where)
        if auth == "api_key" and "api_key" not in data:
            c.add(f"{where}.api_key: required when auth = \"api_key\"; create a user or account API key in "
                  f"PagerDuty, store it with `mcp-access-proxy secret set pagerduty`, "
                  f"write api_key = \"keyring:pagerduty\" (or set auth = \"oauth\" for per-user sign-in)")
        from_email = c.string(data, "from", where)
        if from_email and not EMAIL_RE.match(from_email):
            c.add(f"{where}.from: {from_email!r} is not an email address")
        return UpstreamConfig(
            **common,
            region=c.string(data, "region", where, "us", choices=("us", "eu")) or "us",
            api_key=api_key,
            auth=auth,
            oauth=_parse_oauth(c, data, where, scopes_default=_DEFAULT_PD_SCOPES,
                               region_from_token="region" not in data) if auth == "oauth" else None,
            from_email=from_email,
            api=api,
            url=url,
            transport="streamable-http" if api == "mcp" else None,
        )
    if kind == "opsgenie":
        if c.string(data, "api", where, "opsgenie", choices=("opsgenie", "jsm")) == "jsm":
            return _parse_jsm(c, data, where, common)
        for jsm_only in ("auth", "email", "api_token", "cloud_id", "site", "resources_url", *_JSM_OAUTH_KEYS):
            if jsm_only in data:
                c.add(f"{where}.{jsm_only}: only for api = \"jsm\" (Jira Service Management Operations); "
                      f"remove it or add api = \"jsm\"")
        if "api_key" not in data:
            c.add(f"{where}.api_key: required; create an API integration key in Opsgenie (Teams > Integrations > API), "
                  f"store it with `mcp-access-proxy secret set opsgenie`, write api_key = \"keyring:opsgenie\"")
        return UpstreamConfig(
            **common,
            region=c.string(data, "region", where, "us", choices=("us", "eu")) or "us",
            api_key=c.secret(data, "api_key", where),
        )
    # statuspage
    if "api_key" not in data:
        c.add(f"{where}.api_key: required; copy your API key from manage.statuspage.io (avatar > API info), "
              f"store it with `mcp-access-proxy secret set statuspage`, write api_key = \"keyring:statuspage\"")
    return UpstreamConfig(
        **common,
        api_key=c.secret(data, "api_key", where),
        page_id=c.string(data, "page_id", where),
        organization_id=c.string(data, "organization_id", where),
    )


_JSM_TOKEN_HELP = ("create an API token at https://id.atlassian.com/manage-profile/security/api-tokens, store it "
                   "with `mcp-access-proxy secret set jsm`, write api_token = \"keyring:jsm\"")
_CLOUD_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SITE_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _parse_jsm(c: Checker, data: dict[str, Any], where: str, common: dict[str, Any]) -> UpstreamConfig:
    """`kind = "opsgenie"`, `api = "jsm"`: the Opsgenie tools served by JSM Operations (Atlassian account)."""
    for opsgenie_only in ("region", "api_key"):
        if opsgenie_only in data:
            c.add(f"{where}.{opsgenie_only}: not used with api = \"jsm\"; JSM signs in with email and api_token "
                  f"(and finds the site by cloud_id or site); remove it")
    auth = c.string(data, "auth", where, "basic", choices=("basic", "oauth")) or "basic"
    if auth == "oauth":
        return _parse_jsm_oauth(c, data, where, common)
    for oauth_only in _JSM_OAUTH_KEYS:
        if oauth_only in data:
            c.add(f"{where}.{oauth_only}: only for auth = \"oauth\" (Atlassian sign-in); remove it")
    email = c.string(data, "email", where)
    if not email:
        c.add(f"{where}.email: required for api = \"jsm\": the email of the Atlassian account the API token "
              f"belongs to")
    elif not EMAIL_RE.match(email):
        c.add(f"{where}.email: {email!r} is not an email address")
    if "api_token" not in data:
        c.add(f"{where}.api_token: required for api = \"jsm\"; {_JSM_TOKEN_HELP}")
    cloud_id, site = _jsm_site(c, data, where)
    if not cloud_id and not site:
        c.add(f"{where}: set site = \"<your-site>.atlassian.net\" (the cloud id is looked up) or cloud_id")
    resources_url = c.string(data, "resources_url", where)
    c.url(resources_url, f"{where}.resources_url")
    return UpstreamConfig(**common, api="jsm", auth=auth, email=email, api_token=c.secret(data, "api_token", where),
                          cloud_id=cloud_id, site=site, resources_url=resources_url)


def _jsm_site(c: Checker, data: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """(cloud_id, site) as configured, checked."""
    cloud_id = c.string(data, "cloud_id", where)
    if cloud_id and not _CLOUD_ID_RE.match(cloud_id):
        c.add(f"{where}.cloud_id: {cloud_id!r} is not a cloud id (a UUID, shown at https://<site>/_edge/tenant_info)")
    site = c.string(data, "site", where)
    if site:
        site = site.strip().lower().removeprefix("https://").rstrip("/")
        if not _SITE_RE.match(site):
            c.add(f"{where}.site: {site!r} is not a site host name such as \"acme.atlassian.net\"")
    return cloud_id, site


def _parse_jsm_oauth(c: Checker, data: dict[str, Any], where: str, common: dict[str, Any]) -> UpstreamConfig:
    """`auth = "oauth"`: each user signs in with their Atlassian account (OAuth 2.0 3LO); the cloud id comes from
    the sites the sign-in can reach (`site` picks one of several), unless `cloud_id` is set."""
    for basic_only in ("email", "api_token"):
        if basic_only in data:
            c.add(f"{where}.{basic_only}: not used with auth = \"oauth\" (each user signs in with their own "
                  f"Atlassian account); remove it")
    if "client_secret" not in data:
        c.add(f"{where}.client_secret: required for auth = \"oauth\": Atlassian's token endpoint needs the app's "
              f"secret; store it with `mcp-access-proxy secret set atlassian-app`, write client_secret = "
              f"\"keyring:atlassian-app\"")
    cloud_id, site = _jsm_site(c, data, where)
    resources_url = c.string(data, "resources_url", where)
    c.url(resources_url, f"{where}.resources_url")
    return UpstreamConfig(**common, api="jsm", auth="oauth", cloud_id=cloud_id, site=site,
                          resources_url=resources_url,
                          oauth=_parse_oauth(c, data, where, scopes_default=_DEFAULT_JSM_SCOPES))


def _parse_oauth(c: Checker, data: dict, where: str, scopes_default: tuple[str, ...], *,
                 client_id_required: bool = True, region_from_token: bool = False) -> OAuthSettings | None:
    client_id = c.string(data, "client_id", where)
    if not client_id and client_id_required:
        c.add(f"{where}.client_id: required for auth = \"oauth\"; "
              "copy it from the OAuth app you registered with the vendor")
    redirect_uri = c.string(data, "redirect_uri", where, "http://localhost:8976/callback") or ""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or not parts.port:
        c.add(f"{where}.redirect_uri: must be http://localhost:PORT/PATH (or 127.0.0.1) with an explicit port, "
              f"exactly as registered on the OAuth app")
    for k in ("authorize_url", "token_url", "revoke_url"):
        c.url(c.string(data, k, where), f"{where}.{k}")
    scopes = c.strings(data, "scopes", where) if "scopes" in data else scopes_default
    if not client_id and client_id_required:
        return None
    if "client_secret" in data and not client_id:
        c.add(f"{where}.client_secret: only applies with client_id (a pre-registered OAuth app); add client_id "
              f"or remove client_secret")
    return OAuthSettings(
        client_id=client_id or "",
        client_secret=c.secret(data, "client_secret", where),
        redirect_uri=redirect_uri,
        scopes=scopes,
        authorize_url=c.string(data, "authorize_url", where),
        token_url=c.string(data, "token_url", where),
        revoke_url=c.string(data, "revoke_url", where),
        region_from_token=region_from_token,
    )


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    c = Checker()
    c.known(data, "(top level)", {"user", "policy", "audit", "upstreams", "secrets", "log_level", "max_tools",
                                  "server", "tool_search"})
    user = c.table(data.get("user"), "user")
    c.known(user, "user", {"email"})
    email = c.string(user, "email", "user")
    if email and not EMAIL_RE.match(email):
        c.add(f"user.email: {email!r} is not an email address")

    log_level = c.string(data, "log_level", "(top level)", "info", choices=LOG_LEVELS) or "info"
    max_tools = data.get("max_tools")
    if max_tools is not None:
        max_tools = c.integer(data, "max_tools", "(top level)", 0)

    srv = c.table(data.get("server"), "server")
    c.known(srv, "server", {"max_message_bytes", "tool_search"})
    # tool_search: the client sees the proxy's search, describe and call tools instead of the catalog; unset, that
    # happens by itself when the approved tools exceed the client's known tool limit (server/hub.py).
    said = [c.boolean(table, "tool_search", where, False) for table, where in ((data, "(top level)"), (srv, "server"))
            if "tool_search" in table]
    tool_search = any(said) if said else None
    server = ServerConfig(max_message_bytes=c.integer(srv, "max_message_bytes", "server", 32 * 1024 * 1024,
                                                      minimum=64 * 1024))

    secrets = c.table(data.get("secrets"), "secrets")
    c.known(secrets, "secrets", {"store"})
    store = c.string(secrets, "store", "secrets", "keyring", choices=("keyring", "file")) or "keyring"

    policy = None
    if "policy" in data:
        p = c.table(data["policy"], "policy")
        c.known(p, "policy", {"source", "public_keys", "poll_interval", "timeout", "headers"})
        source = c.string(p, "source", "policy")
        if not source:
            c.add("policy.source: required; an https:// URL or a file path of the policy document "
                  "(remove [policy] to run ungoverned)")
        elif source.startswith(("http://", "https://")):
            c.url(source, "policy.source")
        policy = PolicyConfig(
            source=source or "",
            public_keys=c.strings(p, "public_keys", "policy"),
            poll_interval=c.number(p, "poll_interval", "policy", 300.0),
            timeout=c.number(p, "timeout", "policy", 10.0),
            headers=c.mapping(p, "headers", "policy", SECRET_HEADER_RE),
        )

    a = c.table(data.get("audit"), "audit")
    c.known(a, "audit", {"collector", "protocol", "headers", "durability", "group_commit_ms", "segment_max_bytes",
                         "max_disk_bytes", "batch_max_records", "batch_max_bytes", "push_interval",
                         "max_retry_interval", "gzip", "redact_fields", "hash_fields"})
    collector = c.string(a, "collector", "audit")
    c.url(collector, "audit.collector")
    audit = AuditConfig(
        collector=collector.rstrip("/") if collector else None,
        protocol=c.string(a, "protocol", "audit", "otlp-json", choices=AUDIT_PROTOCOLS) or "otlp-json",
        headers=c.mapping(a, "headers", "audit", SECRET_HEADER_RE),
        durability=c.string(a, "durability", "audit", "group", choices=("fsync", "group")) or "group",
        group_commit_ms=c.number(a, "group_commit_ms", "audit", 5.0),
        segment_max_bytes=c.integer(a, "segment_max_bytes", "audit", 8 * 1024 * 1024, minimum=4096),
        max_disk_bytes=c.integer(a, "max_disk_bytes", "audit", 256 * 1024 * 1024, minimum=65536),
        batch_max_records=c.integer(a, "batch_max_records", "audit", 500),
        batch_max_bytes=c.integer(a, "batch_max_bytes", "audit", 1024 * 1024, minimum=1024),
        push_interval=c.number(a, "push_interval", "audit", 5.0),
        max_retry_interval=c.number(a, "max_retry_interval", "audit", 300.0),
        gzip=c.boolean(a, "gzip", "audit", True),
        redact_fields=c.strings(a, "redact_fields", "audit"),
        hash_fields=c.strings(a, "hash_fields", "audit"),
    )
    if audit.group_commit_ms > 1000:
        c.add(f"audit.group_commit_ms: {audit.group_commit_ms:g} is too long a window to lose on a power cut; "
              "use at most 1000 (or durability = \"fsync\")")
    if audit.segment_max_bytes * 2 > audit.max_disk_bytes:
        c.add(f"audit.segment_max_bytes: {audit.segment_max_bytes} is more than half of audit.max_disk_bytes "
              f"({audit.max_disk_bytes}), so the quota could not drop old segments; lower segment_max_bytes or "
              "raise max_disk_bytes")
    if audit.max_retry_interval < audit.push_interval:
        c.add(f"audit.max_retry_interval: must be at least audit.push_interval ({audit.push_interval:g} s)")

    upstreams: dict[str, UpstreamConfig] = {}
    for key, table in c.table(data.get("upstreams"), "upstreams").items():
        if not isinstance(table, dict):
            c.add(f"upstreams.{key}: must be a table ([upstreams.{key}]) with at least kind = \"...\"")
            continue
        parsed = _parse_upstream(c, key, table)
        if parsed is not None:
            upstreams[key] = parsed

    if c.problems:
        raise ConfigError(c.problems, path)
    return Config(
        path=path,
        user_email=email,
        log_level=log_level,
        secrets_store=store,
        policy=policy,
        audit=audit,
        upstreams=upstreams,
        max_tools=max_tools or None,
        server=server,
        tool_search=tool_search,
    )
