"""Is each upstream reachable and does it accept our credentials? (for `doctor`)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio

from mcp_proxy.config import Config, SecretStore
from mcp_proxy.errors import ProxyError
from mcp_proxy.paths import Paths
from mcp_proxy.upstreams.base import ToolFailure, UpstreamEvents


@dataclass
class UpstreamCheck:
    ok: bool
    detail: str
    # An MCP upstream's live tool list (wire dicts) and its cache identity, so the caller can refresh the cache.
    tools: list[dict[str, Any]] | None = None
    cache_identity: str | None = None


def _probe_tool(upstream: Any) -> Any:
    """A read-only tool that needs no arguments, preferring a `list_` one: a cheap authenticated request."""
    candidates = [t for t in upstream.connector.tools()
                  if t.read_only and not t.input_schema.get("required")]
    candidates.sort(key=lambda t: (not t.name.startswith("list_"), t.name))
    return candidates[0] if candidates else None


async def _check_rest(upstream: Any, timeout: float) -> tuple[bool, str]:
    tool = _probe_tool(upstream)
    if tool is None:
        return True, "no read-only tool to probe with; not checked"
    try:
        result = await upstream.call_tool(tool.name, {}, progress=None, timeout=timeout)
    except ToolFailure as exc:
        return False, exc.message
    except TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except ProxyError as exc:  # upstream unavailable, sign-in required, a secret not stored
        return False, str(exc)
    if getattr(result, "is_error", False):
        return False, " ".join(getattr(c, "text", "") for c in result.content)[:300]
    return True, f"reachable and authenticated ({tool.name} answered)"


async def _check_mcp(upstream: Any, timeout: float) -> UpstreamCheck:
    found: dict[str, list[dict[str, Any]]] = {}

    async def got(_key: str, tools: list[dict[str, Any]]) -> None:
        found["n"] = tools

    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(upstream.run, UpstreamEvents(tools_changed=got))
            # The first outcome is the answer: a tool list, or a failed attempt, whose status says why (a
            # refused key does not get better by watching the retries until the timeout).
            while "n" not in found and upstream.status.state != "reconnecting":
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    if "n" in found:
        return UpstreamCheck(True, f"connected, {len(found['n'])} tools", found["n"], upstream.cache_identity())
    return UpstreamCheck(False, upstream.status.detail.split("; retrying")[0] or f"no answer within {timeout:g} s")


async def check_upstreams(config: Config, paths: Paths, store: SecretStore, timeout: float) -> dict[str, UpstreamCheck]:
    from mcp_proxy.upstreams.factory import build_upstreams

    results: dict[str, UpstreamCheck] = {}
    upstreams = build_upstreams(config, paths, store)

    async def one(key: str, upstream: Any) -> None:
        try:
            if hasattr(upstream, "connector"):
                results[key] = UpstreamCheck(*await _check_rest(upstream, timeout))
            else:
                results[key] = await _check_mcp(upstream, timeout)
        finally:
            if hasattr(upstream, "connector"):
                await upstream.connector.aclose()

    async with anyio.create_task_group() as tg:
        for key, upstream in upstreams.items():
            tg.start_soon(one, key, upstream)
    return results
