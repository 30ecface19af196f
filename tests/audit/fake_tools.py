"""A stdio MCP upstream for the audit tests.

Tools: echo (any arguments; answers with them, and with the value of $UPSTREAM_TOKEN when asked),
fail (an isError result), read (read-only, echoes text).
"""

from __future__ import annotations

import json
import os

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server

ANY = {"type": "object", "properties": {"text": {"type": "string"}}, "additionalProperties": True}


def build() -> Server:
    tools = [
        {"name": "echo", "description": "Echo the arguments back.", "inputSchema": ANY},
        {"name": "fail", "description": "Always fails.", "inputSchema": ANY},
        {"name": "read", "description": "Read-only echo.", "inputSchema": ANY, "annotations": {"readOnlyHint": True}},
    ]

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in tools])

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = dict(params.arguments or {})
        if params.name == "fail":
            return types.CallToolResult(content=[types.TextContent(type="text", text="it failed")], is_error=True)
        if args.get("show_token"):
            args["token_seen"] = os.environ.get("UPSTREAM_TOKEN", "")
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(args))])

    return Server("audit-fake", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    from mcp.server.stdio import stdio_server

    server = build()
    async with stdio_server() as (r, w):
        await server.run(r, w, server.create_initialization_options(NotificationOptions(tools_changed=True)))


if __name__ == "__main__":
    anyio.run(main)
