"""An MCP upstream's tool list: every page of `tools/list`, as raw JSON.

Raw, not through `ClientSession.list_tools()`: the SDK validates a page as a whole, so one off-spec tool would
cost the upstream all of its tools (upstreams/raw.py); each tool is checked where it is used (the catalog).
The first page also confirms an era adopted from a remembered verdict (upstreams/eras.py), and says how long
a 2026-07-28 upstream's list stays fresh (`ttlMs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_proxy.config import UpstreamConfig
from mcp_proxy.upstreams.eras import VERDICT_CHECK_TIMEOUT, StaleVerdict
from mcp_proxy.upstreams.mcp_failures import AnswerTooLarge, too_large_text
from mcp_proxy.upstreams.raw import is_too_large, raw_request, supports_raw

MAX_LIST_PAGES = 100


@dataclass(frozen=True)
class Listing:
    tools: list[dict[str, Any]]
    ttl_ms: int | None  # how long the list stays fresh, as a 2026-07-28 upstream said; None: it did not say


async def list_all(client: Client, cfg: UpstreamConfig, *, check_era: bool = False) -> Listing:
    """Every page of tools/list (at most MAX_LIST_PAGES). `check_era`: the era was adopted from a remembered
    verdict, unconfirmed; the first answer confirms it (a 2026-07-28 result carries `resultType`) or raises
    StaleVerdict. An answer over `max_message_bytes` raises AnswerTooLarge."""
    session = client.session
    modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
    tools: list[dict[str, Any]] = []
    ttl_ms: int | None = None
    cursor: str | None = None
    for page_number in range(MAX_LIST_PAGES):
        params = {"cursor": cursor} if cursor else None
        if supports_raw(session):
            timeout = cfg.connect_timeout
            if check_era and page_number == 0:
                timeout = min(timeout, VERDICT_CHECK_TIMEOUT)
            try:
                page = await raw_request(session, "tools/list", params, {"timeout": timeout})
            except MCPError as exc:
                if is_too_large(exc.error):
                    raise AnswerTooLarge(too_large_text(cfg, "tools/list")) from None
                if check_era and page_number == 0:
                    raise StaleVerdict(f"it refused the remembered protocol era {client.protocol_version} "
                                       f"(MCP error {exc.error.code})") from None
                raise
            if check_era and page_number == 0 and modern and "resultType" not in page:
                raise StaleVerdict(f"it did not answer in the remembered protocol era {client.protocol_version}")
            if page_number == 0:
                # 0 is what the SDK's servers send when the handler gives no hint: taken as none, or every such
                # upstream would make the merged list uncacheable (the proxy watches the upstream and announces
                # changes itself).
                ttl = page.get("ttlMs") if modern else None
                ttl_ms = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else None
            page_tools = page.get("tools")
            if not isinstance(page_tools, list):
                raise ValueError("tools/list result has no tools array")
            tools.extend(t for t in page_tools if isinstance(t, dict))
            cursor = page.get("nextCursor")
        else:  # pragma: no cover - only if the SDK's internals move
            result = await client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(t.model_dump(by_alias=True, exclude_none=True) for t in result.tools)
            cursor = result.next_cursor
        if not cursor:
            break
    return Listing(tools, ttl_ms)
