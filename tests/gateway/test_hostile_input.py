"""Hostile client input, through the real process on both entry paths (the fast path after a handshake, the SDK
path on the stateless era): every request that has an id gets one answer, and nothing else is harmed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests._support.live_wire import LiveProxy, line, nested, request, tool_call
from tests._support.proxy import stdio_upstream

MAX_DEPTH = 64  # written out here, not imported: the test guards the rule
DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024


@pytest.fixture
def live(proxy):
    proxy.write({"one": stdio_upstream()})
    lp = LiveProxy(proxy)
    yield lp
    lp.close()


def _start(live: LiveProxy, modern: bool) -> None:
    if not modern:
        live.handshake()
    live.send(request("list", "tools/list", {"_meta": {}} if not modern else
                      {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientInfo": {"name": "m", "version": "1"},
                                 "io.modelcontextprotocol/clientCapabilities": {}}}))
    live.answer("list")  # the upstream is connected


def _still_serving(live: LiveProxy, modern: bool, rid: str) -> None:
    live.send(tool_call(rid, "one_echo", {"text": "still here"}, modern=modern))
    answer = live.answer(rid)
    assert answer["result"]["content"][0]["text"] == "still here", answer
    assert live.alive()


def _refusal_text(answer: dict) -> str:
    if "error" in answer:
        return answer["error"]["message"]
    assert answer["result"]["isError"] is True, answer
    return answer["result"]["content"][0]["text"]


@pytest.mark.parametrize("modern", [False, True], ids=["fast-path", "sdk-path"])
def test_arguments_nested_a_thousand_deep_are_refused_and_harm_nothing(live, modern):
    _start(live, modern)
    for rid, depth in (("d1000", 1000), ("d300", 300), ("d100", 100)):
        # Written by hand: a thousand levels are too deep for Python's json to build. ~2 KB.
        sent = tool_call(rid, "one_slow", {"seconds": 0, "x": None}, modern=modern)
        sent = sent.replace(b'"x":null', b'"x":' + nested(depth).encode())
        live.send(sent)
        answer = live.answer(rid)
        assert answer.get("error", {}).get("code") == -32600 or answer.get("result", {}).get("isError"), answer
        text = _refusal_text(answer)
        assert "nested" in text and str(MAX_DEPTH) in text, text
        assert len(live.answers(rid)) == 1
    _still_serving(live, modern, "after")  # the proxy and its upstream both survived


@pytest.mark.parametrize("modern", [False, True], ids=["fast-path", "sdk-path"])
def test_nesting_up_to_the_limit_passes_and_one_more_level_is_refused(live, modern):
    import json

    _start(live, modern)
    # envelope (1) > params (2) > arguments (3) > x: depth - 3 more levels
    live.send(tool_call("at", "one_slow", {"seconds": 0, "x": json.loads(nested(MAX_DEPTH - 3))}, modern=modern))
    live.send(tool_call("over", "one_slow", {"seconds": 0, "x": json.loads(nested(MAX_DEPTH - 2))}, modern=modern))
    at, over = live.answer("at"), live.answer("over")
    assert at["result"]["content"][0]["text"] == "slept", at
    assert "nested" in _refusal_text(over)


def test_a_batch_is_answered_once_with_invalid_request(live):
    _start(live, modern=False)
    batch = b"[" + request(1, "ping").strip() + b"," + request(2, "ping").strip() + b"]\n"
    live.send(batch + b"[]\n" + request("after", "ping"))
    live.answer("after")
    nulls = live.null_id_answers()
    assert [m["error"]["code"] for m in nulls] == [-32600, -32600], nulls
    assert "batch" in nulls[0]["error"]["message"].lower()
    assert not live.answers(1) and not live.answers(2), "a batch's members are not run"
    assert live.alive()


def test_invalid_utf8_is_a_parse_error_with_a_null_id(live):
    _start(live, modern=False)
    live.send(b'{"jsonrpc":"2.0","id":5,"method":"ping","params":{"x":"\xff\xfe"}}\n' + request("after", "ping"))
    live.answer("after")
    nulls = live.null_id_answers()
    assert [m["error"]["code"] for m in nulls] == [-32700], nulls
    assert "UTF-8" in nulls[0]["error"]["message"]
    assert not live.answers(5)
    assert live.alive()


def _peak_rss(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak RSS from /proc")
def test_a_line_over_the_limit_is_answered_and_skipped_without_buffering_it(live):
    _start(live, modern=False)
    before = _peak_rss(live.p.pid)
    # A valid request, three times the size limit: it is neither run nor held whole in memory, and its tail is
    # not taken for a line of its own.
    padding = b"a" * (3 * DEFAULT_MAX_MESSAGE)
    huge = b'{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"_meta":{"pad":"' + padding + b'"}}}\n'
    live.send(huge)
    del huge, padding
    live.send(request("after", "ping"))
    live.answer("after", timeout=60)
    nulls = live.null_id_answers()
    assert len(nulls) == 1, nulls
    assert nulls[0]["error"]["code"] == -32600 and "max_message_bytes" in nulls[0]["error"]["message"]
    assert not live.answers("huge")
    grew = _peak_rss(live.p.pid) - before
    assert grew < 2 * DEFAULT_MAX_MESSAGE, f"the peak RSS grew by {grew / 2**20:.0f} MiB"
    _still_serving(live, False, "still")


@pytest.mark.parametrize("modern", [False, True], ids=["fast-path", "sdk-path"])
def test_a_second_request_with_an_id_still_in_flight_is_refused(live, modern):
    _start(live, modern)
    live.send(tool_call(7, "one_slow", {"seconds": 1.5}, modern=modern))
    time.sleep(0.2)
    live.send(tool_call(7, "one_echo", {"text": "second"}, modern=modern))
    assert live.wait_for(lambda: len(live.answers(7)) == 2, 30), live.answers(7)
    refused, first = live.answers(7)
    assert refused["error"]["code"] == -32600 and "still in flight" in refused["error"]["message"], refused
    assert first["result"]["content"][0]["text"] == "slept", first
    time.sleep(0.3)
    assert len(live.answers(7)) == 2, "the duplicate was not run"
    # Once answered, the id is free again.
    live.send(tool_call(7, "one_echo", {"text": "reused"}, modern=modern))
    assert live.wait_for(lambda: len(live.answers(7)) == 3, 30)
    assert live.answers(7)[2]["result"]["content"][0]["text"] == "reused"


def test_a_line_that_is_json_but_not_json_rpc_gets_an_invalid_request(live):
    _start(live, modern=False)
    live.send(line({"jsonrpc": "2.0", "id": 9, "method": 12}) + line("just a string") +
              line({"jsonrpc": "2.0", "id": 10, "method": "ping", "params": 1}) + request("after", "ping"))
    live.answer("after")
    assert live.answer(9)["error"]["code"] == -32600
    assert "error" in live.answer(10)
    assert [m["error"]["code"] for m in live.null_id_answers()] == [-32600]
