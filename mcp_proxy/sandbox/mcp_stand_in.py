"""What the sandbox's MCP stand-ins (hosted PagerDuty in `pagerduty_mcp.py`, UptimeObserver in
`uptimeobserver.py`) share: the MCP SDK server over their tool tables, the steps of the ASGI gate each puts
in front of it (read the whole body, note the answer's status, hand the body on to the SDK app), and the
handle of a running stand-in. What each gate checks and logs stays with its vendor."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

from mcp_proxy.sandbox.asgi_thread import RunningServer

Message = dict[str, Any]  # an ASGI message
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# A tool run: (name, arguments) -> (text, structured content); raises ToolError.
RunTool = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]


class ToolError(Exception):
    """A tool call the stand-in answers with an isError result; the text says what to fix."""


def mcp_server(name: str, tools: Iterable[dict[str, Any]], run: RunTool) -> Any:
    """An MCP SDK low-level server listing `tools` and answering calls with `run`."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    listed = [types.Tool.model_validate(t) for t in tools]

    async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            text, structured = run(params.name, dict(params.arguments or {}))
        except ToolError as exc:
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], is_error=True)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured)

    return Server(name, version="sandbox", on_list_tools=list_tools, on_call_tool=call_tool)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away before sending it."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body the gate has read first, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def noting_status(send: Send, entry: dict[str, Any]) -> Send:
    """A `send` that writes the answer's status into the log `entry` on its way out."""
    async def logged(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = int(message["status"])
        await send(message)

    return logged


async def send_json(send: Send, status: int, payload: dict[str, Any],
                    extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(extra or [])]})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def rpc_message(body: bytes) -> dict[str, Any]:
    """The JSON-RPC message in a request body, or {} when it is not one."""
    try:
        message = json.loads(body) if body else None
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


@dataclass
class Served:
    """A stand-in serving on 127.0.0.1 from a background thread: `url` is its MCP endpoint, for an upstream's
    `url`; `with` stops it."""

    url: str
    _server: RunningServer

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
