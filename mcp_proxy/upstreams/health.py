"""Is each upstream reachable and does it accept our credentials? (for `doctor`)"""

from __future__ import annotations

from typing import Any

import anyio

from mcp_proxy.config import Config, SecretStore
from mcp_proxy.paths import Paths
from mcp_proxy.upstreams.base import ToolFailure, UpstreamEvents, UpstreamUnavailable


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
    except UpstreamUnavailable as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. sign-in required
        return False, str(exc) or type(exc).__name__
    if getattr(result, "is_error", False):
        return False, " ".join(getattr(c, "text", "") for c in result.content)[:300]
    return True, f"reachable and authenticated ({tool.name} answered)"


async def _check_mcp(upstream: Any, timeout: float) -> tuple[bool, str]:
    found: dict[str, int] = {}

    async def got(_key: str, tools: list[dict[str, Any]]) -> None:
        found["n"] = len(tools)
        scope.cancel()

    with anyio.move_on_after(timeout) as scope:
        await upstream.run(UpstreamEvents(tools_changed=got))
    if "n" in found:
        return True, f"connected, {found['n']} tools"
    return False, upstream.status.detail.split("; retrying")[0] or f"no answer within {timeout:g} s"


async def check_upstreams(config: Config, paths: Paths, store: SecretStore, timeout: float) -> dict[str, tuple[bool, str]]:
    from mcp_proxy.upstreams.factory import build_upstreams

    results: dict[str, tuple[bool, str]] = {}
    upstreams = build_upstreams(config, paths, store)

    async def one(key: str, upstream: Any) -> None:
        try:
            if hasattr(upstream, "connector"):
                results[key] = await _check_rest(upstream, timeout)
            else:
                results[key] = await _check_mcp(upstream, timeout)
        finally:
            if hasattr(upstream, "connector"):
                await upstream.connector.aclose()

    async with anyio.create_task_group() as tg:
        for key, upstream in upstreams.items():
            tg.start_soon(one, key, upstream)
    return results
