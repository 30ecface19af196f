#!/usr/bin/env python3
"""The floor for any Python process between a client and a stdio MCP server: lines relayed both ways, unread.

    python scripts/relay_floor.py COMMAND [ARGS...]

Used by `bench_gateway.py` as the "relay" row: what a proxy costs before it does anything (two more pipe
hops and an event loop), so that the proxy's own overhead can be told from the machine's.
"""

from __future__ import annotations

import asyncio
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """Copy lines from `reader` to `writer`, or to stdout when None."""
    while line := await reader.readline():
        if writer is not None:
            writer.write(line)
            await writer.drain()
        else:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
    if writer is not None:
        writer.close()


async def main(argv: list[str]) -> int:
    child = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                 limit=64 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    assert child.stdin is not None and child.stdout is not None
    to_child = asyncio.create_task(_pump(stdin, child.stdin))
    await _pump(child.stdout, None)
    to_child.cancel()
    return await child.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
