"""A process that appends audit records as fast as it can and prints each id once `append` returned.

    python writer_proc.py HOME DURABILITY INSTANCE

The test kills it with SIGKILL at some moment: every printed id must survive.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from mcp_proxy.audit import AuditContext, AuditLog
from mcp_proxy.config import AuditConfig
from mcp_proxy.paths import Paths


async def main(home: Path, durability: str, instance: str) -> None:
    paths = Paths(home, home / "data", home / "cache", home / "logs")
    cfg = AuditConfig(durability=durability, segment_max_bytes=16384, max_disk_bytes=1 << 30)
    ctx = AuditContext(proxy_version="0.1.0", instance_id=instance, host="h", user="w@example.com", governed=True)
    log = AuditLog.open(paths, cfg, ctx)
    i = 0
    while True:
        record = await log.append("mcp.tool.call", {"gen_ai.tool.name": "fake_echo", "outcome": "ok",
                                                    "arguments": {"text": f"record {i} " + "z" * (i % 700)}})
        sys.stdout.write(record["id"] + "\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]), sys.argv[2], sys.argv[3])
