"""The big-message upstream (tests/gateway/big_upstream.py): its config tables and its HTTP server."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests._support.proxy import PY

BIG = str(Path(__file__).parent.parent / "gateway" / "big_upstream.py")
MIB = 1024 * 1024


def big_stdio(**extra: Any) -> dict[str, Any]:
    return {"kind": "mcp", "command": PY, "args": [BIG], **extra}


@contextmanager
def big_http(env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the big upstream over Streamable HTTP on a free loopback port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([PY, BIG, "--http", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the big HTTP upstream did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


async def eventually(condition: Any, timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    import anyio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await anyio.sleep(0.05)
    return bool(condition())
