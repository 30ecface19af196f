"""Progress notifications go out before the result of their call (clients drop progress that follows it)."""

from __future__ import annotations

import json

from tests._support.proxy import stdio_upstream
from tests._support.wire import initialize_line, spawn


def test_every_progress_notification_precedes_its_result(proxy):
    proxy.write({"f": stdio_upstream()})
    p = spawn(proxy)
    assert p.stdin is not None and p.stdout is not None

    def send(message: dict) -> None:
        p.stdin.write(json.dumps(message) + "\n")
        p.stdin.flush()

    def next_message() -> dict:
        return json.loads(p.stdout.readline())

    send(json.loads(initialize_line("2025-11-25")))
    next_message()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    while next_message().get("id") != 2:
        pass
    for rid in range(10, 20):
        send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {
            "name": "f_progress", "arguments": {"steps": 3}, "_meta": {"progressToken": f"t{rid}"}}})
        seen: list[float] = []
        while (message := next_message()).get("id") != rid:
            if message.get("method") == "notifications/progress":
                seen.append(message["params"]["progress"])
        assert seen == [1, 2, 3], f"call {rid}: {seen} before its result"
    p.stdin.close()
    assert p.wait(15) == 0
