"""A hostile or broken stdio upstream (tests/gateway/raw_upstream.py) against the stdio call lane
(upstreams/stdio_lane.py), through the real `mcp-access-proxy serve` process spoken to in raw JSON lines: whatever the
upstream writes on the lane's ids, the client gets one answer per call that says what happened, never another
call's answer or something the upstream forged, and the proxy and the lane keep serving (an ordinary echo after
each case). Every call is checked to have gone through the lane (its id upstream is the lane's), so that none of
these tests can pass by the call going the SDK's way instead; and every call is on the audit record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests._support.audit import home_paths, spool_records, wait_sync
from tests._support.live_wire import LiveProxy, request, tool_call
from tests._support.proxy import PY, ProxyEnv

RAW = str(Path(__file__).parent / "raw_upstream.py")
LANE_PREFIX = "mcp-access-proxy/"  # written out, not imported: the lane's ids are what these tests recognise it by
TIMEOUT_TEXT = "did not answer within"
CLOSED_TEXT = "closed the connection during the call"
NOT_SENT_TEXT = "closed the connection before the call was sent (it exited or restarted), so the call did not run"


class Lane:
    """The proxy with one upstream `raw` (raw_upstream.py), its client side in raw lines, and what the upstream
    received (every line, from $RAW_UPSTREAM_LOG)."""

    def __init__(self, proxy: ProxyEnv, call_timeout: float) -> None:
        self.proxy = proxy
        self.log = proxy.tmp / "raw-upstream.log"
        proxy.write({"raw": {"kind": "mcp", "command": PY, "args": [RAW], "env": {"RAW_UPSTREAM_LOG": str(self.log)},
                             "call_timeout": call_timeout}})
        self.live = LiveProxy(proxy)
        self.live.handshake()
        self.live.send(request("list", "tools/list", {}))
        names = [t["name"] for t in self.live.answer("list")["result"]["tools"]]
        assert "raw_echo" in names and "raw_die" in names, names
        self._n = 0
        self.outcomes: dict[str, str] = {}  # client id -> the tool it called, for the audit check

    def call(self, tool: str, arguments: dict[str, Any] | None = None, token: str | None = None,
             timeout: float = 30) -> tuple[str, dict[str, Any]]:
        """Call raw_<tool> (asking for progress under `token` when given); its client id and answer."""
        self._n += 1
        rid = f"{tool}-{self._n}"
        params: dict[str, Any] = {"name": f"raw_{tool}", "arguments": arguments or {}}
        if token is not None:
            params["_meta"] = {"progressToken": token}
        self.live.send(request(rid, "tools/call", params))
        answer = self.live.answer(rid, timeout)
        self.outcomes[rid] = f"raw_{tool}"
        return rid, answer

    def still_serving(self) -> str:
        """An ordinary call right after: the proxy is alive and the lane not poisoned. Its lane id."""
        self._n += 1
        rid, text = f"echo-{self._n}", f"still here {self._n}"
        self.live.send(tool_call(rid, "raw_echo", {"text": text}))
        answer = self.live.answer(rid)
        assert answer.get("result", {}).get("content") == [{"type": "text", "text": text}], answer
        assert self.live.alive()
        self.outcomes[rid] = "raw_echo"
        return self.lane_id("echo")

    def received(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.log.read_text(encoding="utf-8").splitlines()] \
            if self.log.exists() else []

    def lane_id(self, tool: str) -> str:
        """The id the upstream got its latest call of `tool` under; it must be the lane's."""
        ids = [m["id"] for m in self.received() if m.get("method") == "tools/call" and m["params"]["name"] == tool]
        assert ids, f"the upstream never got a call of {tool}"
        assert isinstance(ids[-1], str) and ids[-1].startswith(LANE_PREFIX), f"not the lane: {ids[-1]!r}"
        return ids[-1]

    def cancels_of(self, lane_id: str) -> list[dict[str, Any]]:
        return [m for m in self.received() if m.get("method") == "notifications/cancelled"
                and m.get("params", {}).get("requestId") == lane_id]

    def every_line_to_the_client(self) -> str:
        with self.live._cond:
            return json.dumps([m for _, m in self.live.replies])

    def audited(self, **outcomes: str) -> None:
        """Each call made is on the audit record (mcp.tool.call) with its tool; `outcomes` names some outcomes."""
        def calls() -> dict[str, dict[str, Any]]:
            return {r["jsonrpc.request.id"]: r for r in spool_records(home_paths(self.proxy.home))
                    if r["event_name"] == "mcp.tool.call"}

        wait_sync(lambda: set(self.outcomes) <= set(calls()), timeout=10)
        records = calls()
        for rid, tool in self.outcomes.items():
            assert records[rid]["gen_ai.tool.name"] == tool, records[rid]
        for rid, outcome in outcomes.items():
            assert records[rid]["outcome"] == outcome, records[rid]


@pytest.fixture
def lane_with(proxy):
    made: list[Lane] = []

    def make(call_timeout: float = 20) -> Lane:
        made.append(Lane(proxy, call_timeout))
        return made[-1]

    yield make
    for lane in made:
        assert lane.live.bad_lines == [], "only JSON on the proxy's stdout"
        assert lane.live.close() == 0


@pytest.fixture
def lane(lane_with):
    return lane_with()


def _text(answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"]["message"])
    return "\n".join(c.get("text", "") for c in answer["result"]["content"])


def _is_error(answer: dict[str, Any]) -> bool:
    return "error" in answer or answer["result"].get("isError") is True


@pytest.mark.parametrize("tool", ["nan", "deep"])
def test_an_answer_that_is_not_json_reaches_the_client_only_as_an_error(lane_with, tool):
    lane = lane_with(call_timeout=2)
    rid, answer = lane.call(tool)
    lane.lane_id(tool)
    assert _is_error(answer), answer
    json.dumps(answer, allow_nan=False)  # no NaN passed on to the client
    assert "answered with a message that is not valid JSON" in _text(answer), answer
    lane.still_serving()
    lane.audited(**{rid: "tool_error"})


@pytest.mark.parametrize("tool", ["nan", "deep"])
def test_an_answer_that_is_not_json_fails_its_call_at_once_not_as_a_timeout(lane_with, tool):
    lane = lane_with(call_timeout=2)
    _, answer = lane.call(tool)
    call_id = lane.lane_id(tool)
    assert _is_error(answer), answer
    assert TIMEOUT_TEXT not in _text(answer), "the upstream did answer: the client must not be told it did not"
    assert lane.cancels_of(call_id) == [], "no cancel for a request the upstream already answered"


def test_a_result_that_is_not_an_object_is_reported_as_not_valid_mcp(lane):
    rid, answer = lane.call("notobject")
    lane.lane_id("notobject")
    assert answer["result"]["isError"] is True and "not valid MCP" in _text(answer), answer
    lane.still_serving()
    lane.audited(**{rid: "tool_error"})


def test_an_error_of_no_valid_shape_is_a_clear_error(lane):
    rid, answer = lane.call("badcode")
    lane.lane_id("badcode")
    text = _text(answer)
    assert _is_error(answer) and "'raw'" in text and ("not valid MCP" in text or "rejected" in text), answer
    lane.still_serving()
    lane.audited(**{rid: "tool_error"})


def test_lines_that_are_not_json_before_the_answer_do_not_cost_the_connection(lane):
    # Each line fails the strict parse, and the search for an id in it must fail quietly too: a bad escape, a
    # deep answer with its id last, bytes that are not UTF-8.
    rid, answer = lane.call("junk_first")
    lane.lane_id("junk_first")
    assert _text(answer) == "junk_first answered", answer
    assert [m.get("method") for m in lane.received()].count("initialize") == 1, "the connection was not lost"
    lane.still_serving()
    lane.audited(**{rid: "ok"})


def test_an_error_that_imitates_the_proxys_own_marker_is_the_upstreams_error(lane):
    rid, answer = lane.call("fake_not_sent")
    assert answer["result"]["isError"] is True and NOT_SENT_TEXT not in _text(answer), answer
    assert "did not run" not in _text(answer), "the upstream cannot make the proxy vouch that a call did not run"
    lane.still_serving()


def test_a_second_answer_to_the_same_id_is_never_seen(lane):
    rid, answer = lane.call("twice")
    lane.lane_id("twice")
    assert answer["result"]["content"] == [{"type": "text", "text": "first"}], answer
    lane.still_serving()
    assert len(lane.live.answers(rid)) == 1
    assert "second" not in lane.every_line_to_the_client()
    lane.audited(**{rid: "ok"})


def test_an_answer_forged_for_the_next_call_is_not_taken_for_it(lane):
    rid, answer = lane.call("early")
    early_id = lane.lane_id("early")
    assert _text(answer) == "early answered", answer
    echo_id = lane.still_serving()
    # The forgery named the very id the next call got, so this checks something.
    assert echo_id == f"{LANE_PREFIX}{int(early_id.removeprefix(LANE_PREFIX)) + 1}"
    assert "forged" not in lane.every_line_to_the_client()
    lane.audited(**{rid: "ok"})


def test_a_request_from_the_upstream_that_reuses_the_calls_id_is_not_its_answer(lane):
    rid, answer = lane.call("request_like")
    call_id = lane.lane_id("request_like")
    assert _text(answer) == "request_like answered" and not _is_error(answer), answer
    lane.still_serving()
    # The upstream's request went the SDK's way and was answered there (refused: the client has no sampling),
    # not handed to the client and not taken for the call's answer.
    wait_sync(lambda: any(m.get("id") == call_id and "method" not in m for m in lane.received()), timeout=10)
    (reply,) = [m for m in lane.received() if m.get("id") == call_id and "method" not in m]
    assert "error" in reply, reply
    assert "sampling/createMessage" not in lane.every_line_to_the_client()
    lane.audited(**{rid: "ok"})


def test_only_valid_progress_reaches_the_client_and_before_the_answer(lane):
    rid, answer = lane.call("progress_junk", token="client-token")
    call_id = lane.lane_id("progress_junk")
    assert _text(answer) == "progress_junk answered", answer
    (sent,) = [m for m in lane.received() if m.get("id") == call_id]
    assert sent["params"]["_meta"]["progressToken"] == call_id, "the lane's own token upstream"
    with lane.live._cond:
        replies = [m for _, m in lane.live.replies]
    progress = [m for m in replies if m.get("method") == "notifications/progress"]
    assert [m["params"] for m in progress] == [
        {"progressToken": "client-token", "progress": 1, "total": 2, "message": "valid"}], progress
    assert replies.index(progress[0]) < replies.index(answer)
    lane.still_serving()
    lane.audited(**{rid: "ok"})


def test_a_silent_upstream_times_out_and_is_told_the_call_is_cancelled(lane_with):
    lane = lane_with(call_timeout=1)
    started = time.monotonic()
    rid, answer = lane.call("silent")
    took = time.monotonic() - started
    call_id = lane.lane_id("silent")
    assert answer["result"]["isError"] is True and f"{TIMEOUT_TEXT} 1 s (call_timeout)" in _text(answer), answer
    assert 0.9 <= took < 10, took
    wait_sync(lambda: lane.cancels_of(call_id), timeout=10)
    assert len(lane.cancels_of(call_id)) == 1
    lane.still_serving()
    lane.audited(**{rid: "error"})


def test_an_upstream_that_dies_mid_call_is_reported_and_reconnected(lane):
    rid, answer = lane.call("die")
    lane.lane_id("die")
    assert answer["result"]["isError"] is True and CLOSED_TEXT in _text(answer), answer
    # The proxy reconnects in the background; a call made before it has is told it was not sent (and it was not).
    deadline = time.monotonic() + 20
    while True:
        rid_after, after = lane.call("echo", {"text": "back"})
        if not _is_error(after):
            break
        assert NOT_SENT_TEXT in _text(after) or "is not available" in _text(after), after
        assert not any(m.get("method") == "tools/call" and m.get("params", {}).get("arguments") == {"text": "back"}
                       for m in lane.received()), "a call reported as not sent reached the upstream"
        assert time.monotonic() < deadline, "the proxy did not reconnect"
        time.sleep(0.2)
    assert _text(after) == "back"
    lane.lane_id("echo")  # the new connection has a lane too
    assert [m.get("method") for m in lane.received()].count("initialize") == 2, "a new upstream process"
    lane.still_serving()
    lane.audited(**{rid: "error", rid_after: "ok"})
