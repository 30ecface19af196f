"""The MCP server toward the client: the SDK's low-level `Server` with our handlers.

Handlers never raise ordinary exceptions: on handshake-era connections the SDK
would send the exception text to the client verbatim.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server

from mcp_proxy import __version__
from mcp_proxy.server.hub import Hub, error_result

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Tools from your organisation's incident tooling, filtered by its approval policy. If a tool you need is "
    "missing, call proxy_unavailable_tools to see why, and proxy_request_access to ask for it."
)


class CaptureClientSession:
    """Middleware: remember the client's session once it has initialized, to push list_changed later."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            await ctx.lifespan_context.client_initialized(ctx.session)
        return result


async def run_tool_call(hub: Hub, name: str, arguments: dict[str, Any] | None, *, request_id: Any, ctx: Any,
                        progress: Any) -> types.CallToolResult | dict[str, Any]:
    """One tools/call, from the SDK's handler or the fast path (server/fastpath.py); never raises but for
    cancellation."""
    try:
        from mcp_proxy.server.signin import make_sign_in

        return await hub.call_tool(name, arguments, progress=progress, request_id=request_id,
                                   sign_in=make_sign_in(hub, ctx))
    except anyio.get_cancelled_exc_class():
        raise
    except Exception:  # noqa: BLE001 - see module docstring
        log.exception("tools/call failed")
        return error_result("The proxy hit an internal error; try again, and run `mcp-access-proxy doctor` "
                            "if it persists.")


def build_server(hub: Hub) -> Server:
    @asynccontextmanager
    async def lifespan(_server: Server) -> AsyncIterator[Hub]:
        yield hub

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        try:
            return await hub.list_tools()
        except Exception:  # noqa: BLE001 - see module docstring
            log.exception("tools/list failed")
            from mcp.shared.exceptions import MCPError

            raise MCPError(code=types.INTERNAL_ERROR,
                           message="The proxy could not build the tool list; check its log and run "
                                   "`mcp-access-proxy doctor`.") from None

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult | dict[str, Any]:
        progress = None
        if "progress_token" in (ctx.meta or {}):
            async def progress(value: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(value, total, message)
        return await run_tool_call(hub, params.name, params.arguments, request_id=ctx.request_id, ctx=ctx,
                                   progress=progress)

    server = Server(
        "mcp-access-proxy",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
    # Replace the default OpenTelemetry middleware: it records exception text on spans, and without an
    # OTel SDK installed it only costs time on every message.
    server.middleware = [CaptureClientSession()]
    return server


def initialization_options(server: Server) -> Any:
    return server.create_initialization_options(NotificationOptions(tools_changed=True))
