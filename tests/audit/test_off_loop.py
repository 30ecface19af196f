"""Inside `serve` the audit log shares the event loop that answers the client: the shipper and the group-commit
writer must do their disk and CPU work (fsync, file reads and replaces, encoding, gzip, quota scans) in worker
threads, never on the loop's own thread. Checked by recording the thread of every such call, not by timing."""

from __future__ import annotations

import builtins
import gzip
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from mcp_proxy.audit import encode as encode_module
from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.shipper import Shipper

pytestmark = pytest.mark.anyio


class LoopWatch:
    """Wraps blocking functions; remembers each call made on the thread that runs the event loop."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: str) -> None:
        self.loop_thread = threading.current_thread()
        self.root = root
        self.on_loop: list[str] = []
        self.calls: dict[str, int] = {}
        self.monkeypatch = monkeypatch

    def wrap(self, owner: Any, name: str, relevant: Callable[..., bool] = lambda *a, **k: True) -> None:
        real = getattr(owner, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            if relevant(*args, **kwargs):
                self.calls[name] = self.calls.get(name, 0) + 1
                if threading.current_thread() is self.loop_thread:
                    self.on_loop.append(name)
            return real(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, watched)

    def under_root(self, path: Any, *rest: Any, **kwargs: Any) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(self.root)


async def test_the_shipper_never_blocks_the_event_loop(spool, collector, monkeypatch):
    c, url = collector
    log = spool.open(spool.config(segment_max_bytes=64 * 1024))
    for i in range(600):
        log.append_nowait("mcp.tool.call", {"outcome": "ok", "arguments": {"text": f"call {i} " + "lorem " * 40}})
    log.close()
    assert len(Layout(spool.paths).segments()) > 2  # rotated: the cycle deletes acknowledged segments too

    watch = LoopWatch(monkeypatch, str(spool.paths.data_dir))
    watch.wrap(os, "fsync")
    watch.wrap(os, "replace", watch.under_root)
    watch.wrap(os, "unlink", watch.under_root)
    watch.wrap(builtins, "open", watch.under_root)
    watch.wrap(gzip, "compress")
    watch.wrap(encode_module.OtlpJson, "body")
    watch.wrap(encode_module.OtlpJson, "part")

    shipper = Shipper(spool.paths, spool.config(collector=url, batch_max_records=100, max_disk_bytes=1 << 20),
                      None)
    report = await shipper.push_once()
    await shipper.aclose()

    assert report.sent == 600 and len(c.ids) == 600
    assert not Layout(spool.paths).segments(), "acknowledged segments were not deleted"
    for name in ("fsync", "replace", "unlink", "open", "compress", "body", "part"):
        assert watch.calls.get(name), f"the test did not exercise {name}"
    assert not watch.on_loop, f"ran on the event loop: {sorted(set(watch.on_loop))}"


async def test_group_commit_appends_never_fsync_or_scan_on_the_callers_thread(spool, monkeypatch):
    log = spool.open(spool.config(durability="group", group_commit_ms=5, segment_max_bytes=64 * 1024,
                                  max_disk_bytes=2 * 1024 * 1024))
    await log.append("mcp.tool.call", {"outcome": "ok"})  # opening looks at the spool once, at start-up
    watch = LoopWatch(monkeypatch, str(spool.paths.data_dir))
    watch.wrap(os, "fsync")
    watch.wrap(os, "scandir", watch.under_root)
    watch.wrap(os, "listdir", watch.under_root)
    for _ in range(1500):  # ~1.6 MB: many rotations and several quota checks
        await log.append("mcp.tool.call", {"outcome": "ok", "arguments": {"text": "x" * 1000}})
    # Before close(): closing at shutdown fsyncs what is left, on whichever thread closes.
    on_loop, calls = list(watch.on_loop), dict(watch.calls)
    log.close()

    assert calls.get("fsync"), "the group commit never fsync'd"
    assert calls.get("scandir") or calls.get("listdir"), "the quota was never checked"
    assert not on_loop, f"ran on the caller's thread: {sorted(set(on_loop))}"
