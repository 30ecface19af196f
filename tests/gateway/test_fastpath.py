"""`tools/call` on the fast path (server/fastpath.py) and on the SDK path answer alike; what the fast path
must leave to the SDK, it does; cancellation of a fast-path call reaches the upstream."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest

from mcp_proxy.server.fastpath import ToolCallFastPath
from tests._support.proxy import stdio_upstream
from tests._support.wire import converse
from tests._support.wire import initialize_line as _init
from tests._support.wire import spawn as _spawn

INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


def _call(rid: object, name: object, arguments: object = None, **params: object) -> str:
    body: dict = {"name": name, **params}
    if arguments is not None:
        body["arguments"] = arguments
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": body})


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
def test_calls_answer_alike_on_every_handshake_version(proxy, version):
    proxy.write({"one": stdio_upstream()})
    p = _spawn(proxy)
    messages = [_init(version), INITIALIZED,
                _call(2, "one_echo", {"text": "hi"}),
                _call(3, "one_echo", "not an object"),
                _call(4, "one_nope", {}),
                json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"arguments": {}}}),
                _call(6, "one_progress", {"steps": 2}, _meta={"progressToken": "t-6"}),
                _call("seven", "one_add", {"a": 2, "b": "x"})]
    replies = converse(p, messages, {1, 2, 3, 4, 5, 6, "seven"})
    assert p.returncode == 0
    by_id = {m["id"]: m for m in replies if "id" in m}
    echo = by_id[2]["result"]
    assert echo["content"] == [{"type": "text", "text": "hi"}] and not echo.get("isError")
    assert echo["structuredContent"] == {"text": "hi", "server": "fake"}
    assert by_id[3]["error"]["code"] == -32602  # not an object: the SDK's validation answers
    unknown = by_id[4]["result"]
    assert unknown["isError"] is True and "no tool named 'one_nope'" in unknown["content"][0]["text"]
    assert by_id[5]["error"]["code"] == -32602  # no name
    progress = [m for m in replies if m.get("method") == "notifications/progress"]
    assert by_id[6]["result"]["content"][0]["text"] == "done" and len(progress) == 2
    assert progress[-1]["params"]["progressToken"] == "t-6"
    bad = by_id["seven"]["result"]  # a string id is echoed as it came
    assert bad["isError"] is True and "'b'" in bad["content"][0]["text"]


def test_cancelling_a_call_reaches_the_upstream_and_gets_no_answer(proxy, tmp_path):
    marker = tmp_path / "cancelled"
    proxy.write({"one": stdio_upstream(env={"FAKE_CANCEL_MARKER": str(marker)})})
    p = _spawn(proxy)
    replies: list[dict] = []
    threading.Thread(target=lambda: replies.extend(json.loads(line) for line in p.stdout), daemon=True).start()

    def send(*lines: str) -> None:
        p.stdin.write("\n".join(lines) + "\n")
        p.stdin.flush()

    def wait_for(what, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not what() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert what(), replies

    send(_init("2025-11-25"), INITIALIZED, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
    wait_for(lambda: any(m.get("id") == 2 for m in replies))  # the upstream is connected
    send(_call(3, "one_slow", {"seconds": 30}))
    time.sleep(0.5)  # the call reaches the upstream
    send(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": 3, "reason": "user stopped it"}}),
         _call(4, "one_echo", {"text": "still here"}))
    wait_for(lambda: any(m.get("id") == 4 for m in replies))
    wait_for(marker.exists, timeout=10)
    assert marker.read_text() == "cancelled"
    p.stdin.close()
    assert p.wait(30) == 0
    by_id = {m["id"]: m for m in replies if "id" in m}
    assert 3 not in by_id, "a cancelled request gets no answer"
    assert by_id[4]["result"]["content"][0]["text"] == "still here"


class _Link:
    def __init__(self, version: str | None) -> None:
        self.session = None if version is None else SimpleNamespace(protocol_version=version)


async def _never_run(call: object) -> object:  # pragma: no cover - the task group here starts nothing
    raise AssertionError


class _TaskGroup:
    def __init__(self) -> None:
        self.started: list[tuple] = []

    def start_soon(self, *args: object) -> None:
        self.started.append(args)


@pytest.mark.parametrize("version, line, taken", [
    (None, _call(1, "a_b", {}), False),  # before the handshake
    ("2026-07-28", _call(1, "a_b", {}), False),  # the stateless era: per-request _meta, the SDK's job
    ("2025-11-25", _call(1, "a_b", {}), True),
    ("2025-11-25", _call(1, "a_b"), True),
    ("2025-11-25", _call(True, "a_b", {}), False),  # not a valid id
    ("2025-11-25", _call(None, "a_b", {}), False),
    ("2025-11-25", _call(1, 5, {}), False),
    ("2025-11-25", _call(1, "a_b", [1]), False),
    ("2025-11-25", _call(1, "a_b", {}, _meta={"progressToken": 1}), False),
    ("2025-11-25", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ', False),  # not JSON
    ("2025-11-25", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a_b", '
                   '"arguments": {"x": NaN}}}', False),  # Python's json would read it; JSON has no NaN
    ("2025-11-25", json.dumps({"jsonrpc": "1.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}), False),
    ("2025-11-25", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), False),
    ("2025-11-25", json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                               "params": {"requestId": 99}}), False),  # not one of ours
])
@pytest.mark.anyio
async def test_what_the_fast_path_takes(version, line, taken):
    fast = ToolCallFastPath(_Link(version), _never_run)
    tg = _TaskGroup()

    async def write(_data: bytes) -> None:  # pragma: no cover - nothing runs here
        raise AssertionError

    fast.attach(tg, write)
    assert fast.take(line.encode()) is taken
    assert len(tg.started) == (1 if taken else 0)


@pytest.mark.anyio
async def test_a_duplicate_id_in_flight_is_left_to_the_sdk_and_cancel_finds_its_call():
    fast = ToolCallFastPath(_Link("2025-11-25"), _never_run)
    tg = _TaskGroup()

    async def write(_data: bytes) -> None:  # pragma: no cover
        raise AssertionError

    fast.attach(tg, write)
    assert fast.take(_call(7, "a_b", {}).encode())
    assert not fast.take(_call(7, "a_b", {}).encode())
    scope = tg.started[0][-1]
    assert fast.take(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                 "params": {"requestId": 7}}).encode())
    assert scope.cancel_called
