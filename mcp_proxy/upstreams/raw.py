"""Raw JSON-RPC requests on an SDK client session.

Why not `ClientSession.list_tools()` / `call_tool()`: the SDK validates a
`tools/list` result as a whole, so one off-spec tool would cost an upstream all
of its tools; and `call_tool` validates the result and may re-list tools to
check output schemas, which doubles the per-call cost of a proxy that forwards
results unchanged. We send the same request through the session's own
dispatcher and stamping (so headers and progress work as usual) and validate
what we need ourselves. This touches two private attributes of the SDK
(pinned to 2.x in pyproject); `supports_raw` tells when they are missing so the
public API is used instead.
"""

from __future__ import annotations

from typing import Any

from mcp.client.session import ClientSession
from mcp.shared.dispatcher import CallOptions


def supports_raw(session: ClientSession) -> bool:
    return hasattr(session, "_dispatcher") and hasattr(session, "_stamp")


async def raw_request(
    session: ClientSession, method: str, params: dict[str, Any] | None, opts: CallOptions | None = None
) -> dict[str, Any]:
    opts = CallOptions(**(opts or {}))
    data: dict[str, Any] = {"method": method}
    if params is not None:
        data["params"] = params
    session._stamp(data, opts)  # noqa: SLF001 - see module docstring
    return await session._dispatcher.send_raw_request(method, data.get("params"), opts)  # noqa: SLF001


def is_closed(session: ClientSession) -> bool:
    """Whether the session's transport has closed (the upstream died)."""
    return bool(getattr(getattr(session, "_dispatcher", None), "_closed", False))
