"""An MCP upstream over stdio whose protocol era the test chooses, and which logs what it was asked.

    ERA_UPSTREAM_MODE=dual|modern|silent ERA_UPSTREAM_LOG=FILE python era_upstream.py

- `dual`: the SDK's `Server`, which answers both eras (the client's first request picks one).
- `modern`: the same server, but it refuses `initialize` (-32022 naming 2026-07-28 only): upgraded to the
  stateless era alone.
- `silent`: a hand-written handshake-era server that never answers a method it does not know (such as
  `server/discover`) and answers `tools/list` even before `initialize`, without `resultType`.

The mode comes from the environment, not the command line, so that changing it keeps the proxy's tool-cache
key (the command and its arguments) and with it the cached era verdict. Each request is logged as one JSON
line: {"method": ..., "era": "modern" | "legacy"} (modern: it carried the 2026-07-28 `_meta` envelope).

Tools: echo(text) (structured), progress(steps), and on the modern era three that answer an
InputRequiredResult first and complete when retried with its answers and state (`ERA_UPSTREAM_ROUNDS` rounds
each, default 1): ask(question) (form elicitation), roots() (roots), sample() (sampling).
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.shared.exceptions import MCPError

VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
ECHO = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
TOOLS = [
    {"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO, "annotations": {"readOnlyHint": True}},
    {"name": "progress", "description": "Report progress.",
     "inputSchema": {"type": "object", "properties": {"steps": {"type": "integer"}}}},
    {"name": "ask", "description": "Ask the user a question.",
     "inputSchema": {"type": "object", "properties": {"question": {"type": "string"}}}},
    {"name": "roots", "description": "Ask the client for its roots.", "inputSchema": {"type": "object"}},
    {"name": "sample", "description": "Ask the client's model.", "inputSchema": {"type": "object"}},
]


def log(method: str | None, params: object) -> None:
    path = os.environ.get("ERA_UPSTREAM_LOG")
    if not path or method is None:
        return
    meta = params.get("_meta") if isinstance(params, dict) else None
    era = "modern" if isinstance(meta, dict) and VERSION_KEY in meta else "legacy"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"method": method, "era": era}) + "\n")


def silent_server() -> None:
    for line in sys.stdin:
        msg = json.loads(line)
        log(msg.get("method"), msg.get("params"))
        if "id" not in msg:
            continue
        method, rid = msg.get("method"), msg["id"]
        if method == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "silent", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            text = (msg["params"].get("arguments") or {}).get("text", "done")
            result = {"content": [{"type": "text", "text": text}]}
        elif method == "ping":
            result = {}
        else:
            continue  # the trap: an unknown request is never answered
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
        sys.stdout.flush()


class LogRequests:
    """Server middleware: log every request, and refuse `initialize` when the server is modern-only."""

    def __init__(self, modern_only: bool) -> None:
        self.modern_only = modern_only

    async def __call__(self, ctx, call_next):
        method = getattr(ctx, "method", None)
        if getattr(ctx, "request_id", None) is not None:
            params = getattr(ctx, "params", None)
            if params is not None and not isinstance(params, dict):
                params = params.model_dump(by_alias=True) if hasattr(params, "model_dump") else None
            log(method, params)
        if self.modern_only and method == "initialize":
            raise MCPError(code=types.UNSUPPORTED_PROTOCOL_VERSION, message="this server speaks 2026-07-28 only",
                           data={"supported": ["2026-07-28"], "requested": "2025-11-25"})
        return await call_next(ctx)


def sdk_server(modern_only: bool) -> Server:
    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in TOOLS], ttl_ms=30_000)

    async def call_tool(ctx, params: types.CallToolRequestParams):
        a = params.arguments or {}
        if params.name == "echo":
            return types.CallToolResult(content=[types.TextContent(type="text", text=a.get("text", ""))],
                                        structured_content={"text": a.get("text", "")})
        if params.name == "progress":
            steps = int(a.get("steps", 3))
            for i in range(steps):
                await ctx.session.report_progress(i + 1, steps, f"step {i + 1}")
            return types.CallToolResult(content=[types.TextContent(type="text", text="done")])
        if params.name in ("ask", "roots", "sample"):
            rounds = int(os.environ.get("ERA_UPSTREAM_ROUNDS", "1"))
            done = int(params.request_state.removeprefix("round-")) if params.request_state else 0
            answer = (params.input_responses or {}).get("q")
            if done >= rounds and answer is not None:
                if isinstance(answer, types.ElicitResult):
                    text = f"{answer.action}:{(answer.content or {}).get('answer', '')}"
                elif isinstance(answer, types.ListRootsResult):
                    text = "roots:" + ",".join(str(r.uri) for r in answer.roots)
                else:
                    text = "sampled:" + getattr(answer.content, "text", "")
                return types.CallToolResult(content=[types.TextContent(type="text", text=text)])
            if params.name == "ask":
                request = types.ElicitRequest(params=types.ElicitRequestFormParams(
                    message=a.get("question", "?"), requested_schema={
                        "type": "object", "properties": {"answer": {"type": "string"}}}))
            elif params.name == "roots":
                request = types.ListRootsRequest()
            else:
                request = types.CreateMessageRequest(params=types.CreateMessageRequestParams(
                    messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text="hi"))],
                    max_tokens=10))
            return types.InputRequiredResult(input_requests={"q": request}, request_state=f"round-{done + 1}")
        return types.CallToolResult(content=[types.TextContent(type="text", text="unknown")], is_error=True)

    server = Server("era", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware.append(LogRequests(modern_only))
    return server


def main() -> None:
    mode = os.environ.get("ERA_UPSTREAM_MODE", "dual")
    if mode == "silent":
        silent_server()
        return
    server = sdk_server(modern_only=mode == "modern")
    from mcp.server.stdio import stdio_server

    async def run() -> None:
        async with stdio_server() as (r, w):
            await server.run(r, w, server.create_initialization_options(NotificationOptions(tools_changed=True)))

    anyio.run(run)


if __name__ == "__main__":
    sys.exit(main())
