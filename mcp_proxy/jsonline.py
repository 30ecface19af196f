"""JSON-RPC messages as the lines of a stdio pipe: strict JSON in, valid request ids, one compact UTF-8 line out.

Shared by the client's pipe (server/screen.py, server/fastpath.py) and the stdio upstreams' pipes
(upstreams/stdio_lane.py). Standard library only: both run before the MCP SDK is loaded.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard


def not_json(constant: str) -> object:
    """For json's `parse_constant`: Python's json reads NaN and Infinity; JSON has neither."""
    raise ValueError(f"{constant} is not JSON")


def loads_strict(data: str | bytes) -> Any:
    """`json.loads` that refuses NaN, Infinity and -Infinity (ValueError)."""
    return json.loads(data, parse_constant=not_json)


def valid_id(value: object) -> TypeGuard[int | str]:
    """Whether `value` can be a JSON-RPC request id: a string or an integer (not a boolean, which Python counts
    as one)."""
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def json_line(message: dict[str, Any]) -> bytes:
    """One JSON-RPC message as the line that carries it (compact, UTF-8, newline-terminated)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
