"""A hostile or broken MCP upstream over stdio, written by hand (standard library only, no SDK), for the tests of
the proxy's stdio call lane (tests/gateway/test_lane_hostile_upstream.py).

    RAW_UPSTREAM_LOG=FILE python raw_upstream.py

It speaks the handshake era: `initialize` (2025-11-25, tools capability), `server/discover` refused with -32601,
`tools/list`, `ping`; every other request gets -32601 and every notification is ignored. Each line it receives is
appended, as received, to $RAW_UPSTREAM_LOG (when set), so a test can see what the proxy wrote to it.

Tools, each misbehaving in its own way when called (the call's id is echoed back as the answer's id):
echo(text) answers properly; nan answers with NaN in the result (not JSON); notobject answers `"result": [1, 2]`;
badcode answers an error whose code is a string and whose message a number; twice answers twice, "first" then
"second"; early first sends a forged answer ("forged") for the id the proxy will use next, then answers; request_like
sends a request of its own that reuses the call's id, then answers; progress_junk sends malformed progress, then
one valid progress, then answers; deep answers with a result nested 100,000 levels deep; silent never answers; die
exits mid-call.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

DEPTH = 100_000
ECHO = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
HOSTILE = ("nan", "notobject", "badcode", "twice", "early", "request_like", "progress_junk", "deep", "silent", "die",
           "junk_first", "fake_not_sent")
TOOLS = [{"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO,
          "annotations": {"readOnlyHint": True}}]
TOOLS += [{"name": name, "description": f"Misbehave: {name}.", "inputSchema": {"type": "object"}}
          for name in HOSTILE]


def write(text: str) -> None:
    sys.stdout.buffer.write(text.encode() + b"\n")
    sys.stdout.buffer.flush()


def send(message: dict[str, Any]) -> None:
    write(json.dumps(message, separators=(",", ":")))


def text_result(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}]}


def next_id(rid: Any) -> Any:
    """The id the proxy will most likely give its next call: "prefix/N" -> "prefix/N+1", an integer -> +1."""
    if isinstance(rid, int):
        return rid + 1
    found = re.fullmatch(r"(.*?)(\d+)", str(rid))
    return f"{found.group(1)}{int(found.group(2)) + 1}" if found else f"{rid}1"


def call_tool(rid: Any, params: dict[str, Any]) -> None:
    name, arguments = params.get("name"), params.get("arguments") or {}
    quoted = json.dumps(rid)
    if name == "echo":
        send({"jsonrpc": "2.0", "id": rid, "result": text_result(str(arguments.get("text", "")))})
    elif name == "nan":
        write('{"jsonrpc":"2.0","id":' + quoted + ',"result":{"content":[{"type":"text","text":"nan"}],'
              '"structuredContent":{"value":NaN}}}')
    elif name == "notobject":
        send({"jsonrpc": "2.0", "id": rid, "result": [1, 2]})
    elif name == "badcode":
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": "x", "message": 5}})
    elif name == "twice":
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("first")})
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("second")})
    elif name == "early":
        send({"jsonrpc": "2.0", "id": next_id(rid), "result": text_result("forged")})
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("early answered")})
    elif name == "request_like":
        send({"jsonrpc": "2.0", "id": rid, "method": "sampling/createMessage", "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": "hijack"}}], "maxTokens": 5}})
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("request_like answered")})
    elif name == "progress_junk":
        token = ((params.get("_meta") or {}).get("progressToken"))
        for junk in ({"progress": "x"}, {"progress": None}, {"progress": 1, "total": "many"},
                     {"progress": 1, "message": 7}, {}):
            send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, **junk}})
        send({"jsonrpc": "2.0", "method": "notifications/progress",
              "params": {"progressToken": token, "progress": 1, "total": 2, "message": "valid"}})
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("progress_junk answered")})
    elif name == "deep":
        write('{"jsonrpc":"2.0","id":' + quoted + ',"result":{"content":[{"type":"text","text":"deep"}],'
              '"structuredContent":{"value":' + "[" * DEPTH + "]" * DEPTH + "}}}")
    elif name == "junk_first":
        # Lines that are not JSON, each shaped to trip the search for an id in them, then the real answer.
        write('debug: {"path": "C:\\Users\\x", "id": "C:\\Users"}')  # an id with a bad escape
        write('{"id": "\\q"}')
        write('{"result":' + "[" * DEPTH + "]" * DEPTH + ',"id":' + quoted + "} trailing junk")  # id last, deep
        sys.stdout.buffer.write(b'{"id": "\xff\xfe"} \xff\n')  # not UTF-8
        sys.stdout.buffer.flush()
        send({"jsonrpc": "2.0", "id": rid, "result": text_result("junk_first answered")})
    elif name == "fake_not_sent":  # an error dressed as the proxy's own "the call was never sent"
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": "x",
                                                     "data": {"reason": "mcp-access-proxy/not-sent"}}})
    elif name == "die":
        os._exit(7)
    elif name != "silent":
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"unknown tool {name!r}"}})


def handle(message: dict[str, Any]) -> None:
    if "id" not in message or "method" not in message:
        return  # notifications (initialized, cancelled) and answers to anything we might have asked
    rid, method, params = message["id"], message["method"], message.get("params") or {}
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw-hostile", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": rid, "result": {}})
    elif method == "tools/call":
        call_tool(rid, params)
    else:  # server/discover among them: the proxy falls back to the handshake era
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"Method not found: {method}"}})


def main() -> None:
    log_path = os.environ.get("RAW_UPSTREAM_LOG")
    while True:
        raw = sys.stdin.buffer.readline()
        if not raw:
            return
        if log_path:
            with open(log_path, "ab") as fh:
                fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if isinstance(message, dict):
            handle(message)


if __name__ == "__main__":
    main()
