"""An MCP upstream that answers with messages of any size, for the bounded-output tests and measurements.

    python big_upstream.py                # stdio, hand-written JSON-RPC lines (no SDK: a 100 MB line costs
                                          # the child only the time to write it)
    python big_upstream.py --http PORT    # Streamable HTTP on 127.0.0.1 (SSE answers), hand-written ASGI

Tools: big(bytes) answers a text of that many bytes; echo(text); flood(lines) writes that many lines to
stderr, then answers; hang() never answers (over HTTP it writes $BIG_HANG_MARKER when the client ends its
response stream).

Environment: BIG_LIST_BYTES pads tools/list to about that many bytes; BIG_LIST_LOG is a file that gets one
line per tools/list request; BIG_ID_LAST puts "id" after "result" in every answer (as some servers do).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

ECHO = {"type": "object", "properties": {"text": {"type": "string"}}}


def tools() -> list[dict[str, Any]]:
    items = [
        {"name": "big", "description": "Answer with a text of `bytes` bytes.",
         "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}}},
        {"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO},
        {"name": "flood", "description": "Write lines to stderr.",
         "inputSchema": {"type": "object", "properties": {"lines": {"type": "integer"}}}},
        {"name": "hang", "description": "Never answer.", "inputSchema": {"type": "object"}},
    ]
    pad = int(os.environ.get("BIG_LIST_BYTES", "0"))
    if pad:
        items.append({"name": "padded", "description": "x" * pad, "inputSchema": {"type": "object"}})
    return items


def answer(rid: Any, result: dict[str, Any]) -> str:
    if os.environ.get("BIG_ID_LAST"):
        return json.dumps({"jsonrpc": "2.0", "result": result, "id": rid})
    return json.dumps({"jsonrpc": "2.0", "id": rid, "result": result})


def text(s: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": s}]}


def result_of(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The result of one request; None for hang."""
    if method == "initialize":
        return {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                "serverInfo": {"name": "big", "version": "1"}}
    if method == "tools/list":
        log = os.environ.get("BIG_LIST_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write("list\n")
        return {"tools": tools()}
    if method == "tools/call":
        name, args = params["name"], params.get("arguments") or {}
        if name == "big":
            return text("x" * int(args.get("bytes", 0)))
        if name == "flood":
            for i in range(int(args.get("lines", 0))):
                sys.stderr.write(f"flood line {i}\n")
            sys.stderr.flush()
            return text("flooded")
        if name == "hang":
            return None
        return text(str(args.get("text", "")))
    return {}


def serve_stdio() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        msg = json.loads(line)
        if "id" not in msg:
            continue
        result = result_of(msg.get("method", ""), msg.get("params") or {})
        if result is None:
            continue
        out.write(answer(msg["id"], result).encode() + b"\n")
        out.flush()


def serve_http(port: int) -> None:
    import anyio
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        msg = json.loads(body)
        if "id" not in msg:  # a notification (notifications/cancelled included: only a closed stream ends hang)
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        result = result_of(msg["method"], msg.get("params") or {})
        headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"big-session")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if result is None:
            await send({"type": "http.response.body", "body": b": waiting\n\n", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass
            marker = os.environ.get("BIG_HANG_MARKER")
            if marker:
                with open(marker, "w") as fh:
                    fh.write("closed")
            return
        event = b"event: message\ndata: " + answer(msg["id"], result).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": event})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    anyio.run(uvicorn.Server(config).serve)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        serve_http(int(sys.argv[2]))
    else:
        serve_stdio()


if __name__ == "__main__":
    main()
