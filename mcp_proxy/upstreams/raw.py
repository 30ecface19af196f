"""Where the proxy reaches past the MCP SDK's public API, in one place (the SDK is pinned to 2.x in pyproject).

Raw JSON-RPC requests on a client session. Why not `ClientSession.list_tools()` / `call_tool()`: the SDK
validates a `tools/list` result as a whole, so one off-spec tool would cost an upstream all of its tools;
and `call_tool` validates the result and may re-list tools to check output schemas, which doubles the
per-call cost of a proxy that forwards results unchanged. We send the same request through the session's
own dispatcher and stamping (so headers and progress work as usual) and validate what we need ourselves.
`supports_raw` tells when the private attributes are missing so the public API is used instead.
`stamped_params` gives a request's params as the session would stamp them for its protocol era, for the
calls a stdio upstream gets past the session (stdio_lane.py).

The era probe's timeout (`bound_discover_probe`): `Client(mode="auto")` waits up to the SDK's fixed 10 s
for an answer to `server/discover` before it falls back to `initialize`, and a handshake-era stdio server
that never answers an unknown request costs that much at every connect: longer than the first tools/list
waits (5 s). The SDK reads the limit from a module constant at each probe, with no parameter for it.

A bounded Streamable HTTP transport (`bounded_streamable_http`): the SDK's transport with three changes
that its public API does not offer (see `_BoundedTransport`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import StreamableHTTPTransport
from mcp.shared._context_streams import create_context_streams
from mcp.shared.dispatcher import CallOptions
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

# The JSON-RPC error the proxy puts in place of an answer it dropped for its size (a server-error code no
# SDK code uses; `data` carries a marker too, so that a server's own -32090 is not mistaken for it).
MESSAGE_TOO_LARGE = -32090
_TOO_LARGE_MARK = "mcp-access-proxy/message-too-large"


def too_large_error(size: int | None, limit: int) -> types.ErrorData:
    """The error that stands in for an answer over `limit` bytes (`size`: how big it was, None: unknown)."""
    seen = f"{size} bytes" if size is not None else "more"
    return types.ErrorData(code=MESSAGE_TOO_LARGE, message=f"answer dropped: {seen}, the limit is {limit} bytes",
                           data={"reason": _TOO_LARGE_MARK, "limit": limit, "size": size})


def is_too_large(error: types.ErrorData) -> bool:
    return error.code == MESSAGE_TOO_LARGE and isinstance(error.data, dict) and \
        error.data.get("reason") == _TOO_LARGE_MARK


def supports_raw(session: ClientSession) -> bool:
    return hasattr(session, "_dispatcher") and hasattr(session, "_stamp")


def stamped_params(session: ClientSession, method: str, params: dict[str, Any], opts: CallOptions) -> dict[str, Any]:
    """`params` as the session would send them for `method` in its protocol era (the 2026-07-28 era's `_meta`)."""
    data: dict[str, Any] = {"method": method, "params": params}
    session._stamp(data, CallOptions(**opts))  # noqa: SLF001 - see module docstring
    return data["params"]


async def raw_request(
    session: ClientSession, method: str, params: dict[str, Any] | None, opts: CallOptions | None = None
) -> dict[str, Any]:
    opts = CallOptions(**(opts or {}))
    data: dict[str, Any] = {"method": method}
    if params is not None:
        data["params"] = params
    session._stamp(data, opts)  # noqa: SLF001 - see module docstring
    return await session._dispatcher.send_raw_request(method, data.get("params"), opts)  # noqa: SLF001


def bound_discover_probe(seconds: float) -> None:
    """Let `server/discover` probes (mode="auto") wait at most `seconds` for an answer (process-wide).

    A probe that times out falls back to `initialize`, as any probe error does. A modern server too slow to
    answer in time still ends up modern: having seen the probe, it refuses the `initialize` that follows with
    -32022, on which the SDK probes once more (`mcp/client/_probe.py`)."""
    import mcp.client.session as sdk_session

    if hasattr(sdk_session, "DISCOVER_TIMEOUT_SECONDS"):
        sdk_session.DISCOVER_TIMEOUT_SECONDS = seconds


def is_closed(session: ClientSession) -> bool:
    """Whether the session's transport has closed (the upstream died)."""
    return bool(getattr(getattr(session, "_dispatcher", None), "_closed", False))


class _BoundedTransport(StreamableHTTPTransport):
    """The SDK's Streamable HTTP transport, bounded by `max_sse_event_size` (the proxy's max_message_bytes).

    - An SSE event over the limit fails its request with `too_large_error` instead of "SSE stream failed"
      (-32000, which reads as a dead connection and would cost the upstream its session).
    - A JSON answer (`application/json`) is read up to the limit, not without bound.
    - A request abandoned by its caller (a timeout or a cancellation) closes its response stream in the
      handshake era too. The SDK does that only in the 2026 era; before, it posts `notifications/cancelled`
      and reads the abandoned stream until the server ends it, which a server that ignores the
      notification never does.
    """

    async def _resolve_abandoned_request(self, read_stream_writer: Any, request_id: types.RequestId, message: str,
                                         *, code: int = types.CONNECTION_CLOSED) -> None:
        # httpx2's SSEError for an event over max_event_size: "Server-sent event exceeded the N byte limit."
        if code == types.CONNECTION_CLOSED and "byte limit" in message and self.max_sse_event_size is not None:
            await self._too_large(read_stream_writer, request_id, None, self.max_sse_event_size)
            return
        await super()._resolve_abandoned_request(read_stream_writer, request_id, message, code=code)

    async def _handle_json_response(self, response: httpx2.Response, read_stream_writer: Any, *,
                                    request_id: types.RequestId) -> None:
        limit = self.max_sse_event_size
        declared = response.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(read_stream_writer, request_id, int(declared), limit)
            return
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if limit is not None and size > limit:
                    await self._too_large(read_stream_writer, request_id, None, limit)
                    return
                parts.append(chunk)
            message: types.JSONRPCMessage = types.jsonrpc_message_adapter.validate_json(
                b"".join(parts), by_name=False)
        except (httpx2.StreamError, ValidationError) as exc:  # as the SDK answers a body it cannot read
            message = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(
                code=types.PARSE_ERROR, message=f"Failed to parse JSON response ({type(exc).__name__})"))
        await read_stream_writer.send(SessionMessage(message))

    async def _too_large(self, writer: Any, request_id: types.RequestId, size: int | None, limit: int) -> None:
        error = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=too_large_error(size, limit))
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # closing: nobody waits for it
            await writer.send(SessionMessage(error))

    def _consume_modern_cancellation(self, session_message: SessionMessage) -> bool:
        swallowed = super()._consume_modern_cancellation(session_message)
        message = session_message.message
        if not swallowed and isinstance(message, types.JSONRPCNotification) \
                and message.method == "notifications/cancelled":
            request_id = cancelled_request_id_from_params(message.params)
            post = self._in_flight_posts.get(request_id) if request_id is not None else None
            if post is not None:
                post.scope.cancel()  # ends the abandoned POST's response stream; the notification is posted too
        return swallowed


@asynccontextmanager
async def bounded_streamable_http(url: str, *, http_client: httpx2.AsyncClient,
                                  max_message_bytes: int) -> AsyncIterator[tuple[Any, Any]]:
    """`mcp.client.streamable_http.streamable_http_client(url, http_client=...)` on `_BoundedTransport`."""
    transport = _BoundedTransport(url, max_sse_event_size=max_message_bytes)
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)
    async with read_writer, read_stream, write_stream, write_reader, anyio.create_task_group() as tg:

        def start_get_stream() -> None:
            tg.start_soon(transport.handle_get_stream, http_client, read_writer)

        tg.start_soon(transport.post_writer, http_client, write_reader, read_writer, write_stream, start_get_stream,
                      tg)
        try:
            yield read_stream, write_stream
        finally:
            if transport.session_id:
                await transport.terminate_session(http_client)
            tg.cancel_scope.cancel()
