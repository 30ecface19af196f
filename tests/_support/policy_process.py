"""Policy documents and notifications for tests that run the real proxy process under a policy."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from mcp_proxy.policy import definition_hash
from tests.gateway.fake_upstream import ECHO

# The fake upstream's echo as the proxy receives it: the hash covers its annotations too.
ECHO_HASH = definition_hash({"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO,
                             "annotations": {"readOnlyHint": True}})
ACCESS_TOOLS = {"proxy_unavailable_tools", "proxy_request_access"}


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_doc(revision: str, tools: dict[str, Any], *, issued_delta: float = -3600, expires_in: float = 86400,
               **fields: Any) -> dict[str, Any]:
    now = time.time()
    return {"schema": 1, "revision": revision, "issued_at": iso_time(now + issued_delta),
            "expires_at": iso_time(now + expires_in), "defaults": {"auto_approve": "none"}, "tools": tools, **fields}


def policy_config(path: Path, poll_interval: float = 300.0) -> str:
    return f'[policy]\nsource = "{path}"\npoll_interval = {poll_interval}\n'


class ListChanged:
    """Counts list_changed notifications from the proxy and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self._event.set()
            self._event = anyio.Event()

    async def wait(self, timeout: float = 15.0) -> None:
        with anyio.fail_after(timeout):
            await self._event.wait()
