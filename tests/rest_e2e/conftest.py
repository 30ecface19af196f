"""Every REST tool through the real proxy process: one emulator and one proxy per vendor module.

A module's `live` fixture spawns `mcp-access-proxy` (stdio) with `kind = "statuspage" | "opsgenie" |
"pagerduty"` upstreams whose `base_url` points at the emulator, keys via `env:`. Every call goes
through MCP `tools/call`; `Live.call` checks the result's shape (structuredContent present, the text
carrying the same data) and counts the tools called, so the module's last test can check that every
tool was. When the module ends, every exchange the emulator saw is checked against the vendor spec.
The helpers (`Live`, `served_and_checked`, ...) live in tests/_support/rest.py.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope: the module's proxy and client live across its tests
