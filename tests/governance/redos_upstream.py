"""A stdio MCP upstream whose tools have input schemas with catastrophic patterns, for the schema-stall tests.

    python redos_upstream.py

Tools: echo(text); nested(word) with "pattern": "^(a+)+$" (exponential in Python's `re`); alternation(word)
with "pattern": "^(a|a)+$" (exponential in `re` and in `regex`); keyed(**) whose property names must match
"^(a|a)+$". Hand-written JSON-RPC: it answers whatever the proxy forwards, so only the proxy's own checks stand
between a crafted argument and the tool.
"""

from __future__ import annotations

import json
import sys

ECHO = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
TOOLS = [
    {"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO},
    {"name": "nested", "description": "Takes a word of a's.", "inputSchema": {
        "type": "object", "properties": {"word": {"type": "string", "pattern": "^(a+)+$"}}, "required": ["word"]}},
    {"name": "alternation", "description": "Takes a word of a's.", "inputSchema": {
        "type": "object", "properties": {"word": {"type": "string", "pattern": "^(a|a)+$"}}, "required": ["word"]}},
    {"name": "keyed", "description": "Takes keys of a's.", "inputSchema": {
        "type": "object", "patternProperties": {"^(a|a)+$": {"type": "string"}}, "additionalProperties": False}},
]


def answer(rid: object, result: dict) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg or "method" not in msg:
            continue
        method, rid = msg["method"], msg["id"]
        if method == "initialize":
            answer(rid, {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                         "serverInfo": {"name": "redos", "version": "1"}})
        elif method == "tools/list":
            answer(rid, {"tools": TOOLS})
        elif method == "tools/call":
            args = msg["params"].get("arguments") or {}
            answer(rid, {"content": [{"type": "text", "text": str(args.get("text", "called"))}]})
        elif method == "ping":
            answer(rid, {})
        else:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32601, "message": f"no method {method}"}}) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
