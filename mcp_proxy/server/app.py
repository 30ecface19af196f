"""The MCP server toward the client: the SDK's low-level `Server` with our handlers.

Handlers never raise ordinary exceptions: on handshake-era connections the SDK
would send the exception text to the client verbatim. A call cannot raise (the
pipeline's error boundary); the list handler answers a failure with its own text.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.lowlevel.server import ServerRequestContext
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_proxy import __version__
from mcp_proxy.server.call import CallResult, RequestId, ToolCall
from mcp_proxy.server.client import SessionChannel
from mcp_proxy.server.hub import Hub

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Tools from your organisation's incident tooling, filtered by its approval policy. If a tool you need is "
    "missing, call proxy_unavailable_tools to see why, and proxy_request_access to ask for it."
)

Context = ServerRequestContext[Hub, RequestId]


class CaptureClientSession:
    """Middleware: remember the client's session once it has initialized, to push list_changed later."""

    async def __call__(self, ctx: Context, call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            await ctx.lifespan_context.link.initialized(ctx.session)
        return result


class ProgressInOrder:
    """Relays an upstream's progress to the client, and lets the call's answer wait until every relay has
    gone out: the SDK runs each progress callback as its own task, so the upstream's last notification
    could otherwise follow the result, and clients drop progress that arrives after it."""

    SETTLE = 1.0  # seconds the answer waits at most for relays still being written
    # After the last relay, the answer waits this long: the TypeScript SDK (most desktop clients) hands progress
    # to its callback asynchronously and drops what is still queued when the result is handled, so progress
    # read in the same chunk as the result is lost. Only calls that asked for progress, which run long anyway.
    APART = 0.005

    def __init__(self, session: ServerSession) -> None:
        self._session = session
        self._running = 0
        self._relayed = False
        self._idle = anyio.Event()
        self._idle.set()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self._running += 1
        self._relayed = True
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        try:
            await self._session.report_progress(progress, total, message)
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle.set()

    async def settled(self) -> None:
        with anyio.move_on_after(self.SETTLE):
            for _ in range(3):  # let relays the upstream's last messages scheduled start first
                await anyio.lowlevel.checkpoint()
            await self._idle.wait()
            if self._relayed:
                await anyio.sleep(self.APART)


def for_era(result: CallResult, version: str) -> CallResult:
    """An upstream's result as the client's protocol era requires it: 2026-07-28 results carry `resultType`
    (an upstream on the handshake era sends none); handshake-era results carry none (the SDK's sieve drops
    it from what the proxy passes on)."""
    if isinstance(result, dict) and version in MODERN_PROTOCOL_VERSIONS and "resultType" not in result:
        return {**result, "resultType": "complete"}
    return result


def build_server(hub: Hub) -> Server[Hub]:
    @asynccontextmanager
    async def lifespan(_server: Server[Hub]) -> AsyncIterator[Hub]:
        yield hub

    async def on_list_tools(ctx: Context, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        try:
            return await hub.list_tools()
        except Exception:
            log.exception("tools/list failed")
            raise MCPError(code=types.INTERNAL_ERROR,
                           message="The proxy could not build the tool list; check its log and run "
                                   "`mcp-access-proxy doctor`.") from None

    async def on_call_tool(ctx: Context, params: types.CallToolRequestParams) -> CallResult:
        progress = ProgressInOrder(ctx.session) if "progress_token" in (ctx.meta or {}) else None
        stateless = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        result = await hub.call(ToolCall(params.name, params.arguments or {}, ctx.request_id,
                                         SessionChannel(ctx.session, ctx.request_id), progress,
                                         meta=params.meta, stateless=stateless, input_responses=params.input_responses,
                                         request_state=params.request_state))
        if progress is not None:
            await progress.settled()  # every progress notification goes out before the result
        return for_era(result, ctx.protocol_version)

    server: Server[Hub] = Server(
        "mcp-access-proxy",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=on_list_tools,
        # The SDK's runner serialises a dict result as it is (HandlerResult), but the handler's declared type
        # names only models: an upstream's result is passed on as a dict so that no model is built per call.
        on_call_tool=on_call_tool,  # type: ignore[arg-type]
    )
    # Replace the default OpenTelemetry middleware: it records exception text on spans, and without an
    # OTel SDK installed it only costs time on every message.
    server.middleware = [CaptureClientSession()]
    return server


def initialization_options(server: Server[Hub]) -> InitializationOptions:
    return server.create_initialization_options(NotificationOptions(tools_changed=True))
