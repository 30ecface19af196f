"""The stdio call lane (upstreams/stdio_lane.py) on its own: what it takes from an upstream's stdout, what it
gives its caller, and what it writes back, against a pipe that records every line. The same lane through the
real process: tests/gateway/test_lane_hostile_upstream.py, and every forwarding test of this directory."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_proxy.jsonline import loads_strict as parse_line
from mcp_proxy.upstreams.stdio_lane import (
    CONNECTION_CLOSED,
    MAX_QUEUED_PROGRESS,
    REQUEST_TIMEOUT,
    StdioLane,
)

pytestmark = pytest.mark.anyio


class Pipe:
    """The child's stdin: every line the lane writes, parsed; `sent` is set at each write."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.sent = anyio.Event()

    async def send(self, data: bytes) -> None:
        assert data.endswith(b"\n") and data.count(b"\n") == 1, "one message per line"
        self.lines.append(json.loads(data))
        self.sent.set()

    async def next_request(self) -> dict[str, Any]:
        while not any("id" in line and "method" in line for line in self.lines):
            self.sent = anyio.Event()
            await self.sent.wait()
        return next(line for line in self.lines if "id" in line and "method" in line)


def _lane() -> tuple[StdioLane, Pipe]:
    lane, pipe = StdioLane(), Pipe()
    lane.attach(pipe.send)
    return lane, pipe


def _answer(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


async def test_an_answer_is_taken_by_its_id_and_its_result_returned():
    lane, pipe = _lane()
    async with anyio.create_task_group() as tg:
        got: list[dict[str, Any]] = []

        async def call() -> None:
            got.append(await lane.request("tools/call", {"name": "echo", "arguments": {"text": "x"}}, timeout=5))

        tg.start_soon(call)
        sent = await pipe.next_request()
        assert sent["method"] == "tools/call" and sent["params"]["arguments"] == {"text": "x"}
        assert isinstance(sent["id"], str), "never an integer: those are the SDK's ids"
        assert lane.waiting
        # What is not the answer to this request is left for the SDK.
        assert not lane.take(_answer(1, {"content": []}))  # an SDK id
        assert not lane.take({"jsonrpc": "2.0", "id": sent["id"], "method": "sampling/createMessage"})
        assert not lane.take(_answer(sent["id"] + "0", {"content": []}))
        assert not lane.take(["not", "an", "object"])
        assert lane.take(_answer(sent["id"], {"content": [{"type": "text", "text": "x"}]}))
    assert got == [{"content": [{"type": "text", "text": "x"}]}]
    assert not lane.waiting
    assert not lane.take(_answer(sent["id"], {"content": []})), "an answer after the call ended is not taken"


async def test_progress_is_relayed_in_order_before_the_answer_and_malformed_progress_is_dropped():
    lane, pipe = _lane()
    relayed: list[tuple[Any, ...]] = []

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await anyio.sleep(0.01)  # a slow relay must not let the answer overtake the progress
        relayed.append((progress, total, message))

    async with anyio.create_task_group() as tg:
        results: list[dict[str, Any]] = []

        async def call() -> None:
            results.append(await lane.request("tools/call", {"name": "p", "arguments": {},
                                                             "_meta": {"traceparent": "t"}},
                                              timeout=5, on_progress=relay))

        tg.start_soon(call)
        sent = await pipe.next_request()
        token = sent["params"]["_meta"]["progressToken"]
        assert sent["params"]["_meta"]["traceparent"] == "t", "the caller's _meta is kept"

        def progress(params: dict[str, Any]) -> dict[str, Any]:
            return {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}

        assert lane.take(progress({"progressToken": token, "progress": 1, "total": 3}))
        assert lane.take(progress({"progressToken": token, "progress": "two"}))  # ours, malformed: dropped
        assert lane.take(progress({"progressToken": token, "progress": 2, "message": "half"}))
        assert not lane.take(progress({"progressToken": 5, "progress": 1}))  # an SDK request's progress
        assert lane.take(_answer(sent["id"], {"content": []}))
    assert relayed == [(1, 3, None), (2, None, "half")]
    assert results == [{"content": []}]


async def test_an_error_answer_raises_the_upstreams_error_and_a_shapeless_answer_gives_an_empty_result():
    lane, pipe = _lane()
    answers = [
        {"jsonrpc": "2.0", "error": {"code": -32602, "message": "bad arguments", "data": {"field": "x"}}},
        {"jsonrpc": "2.0", "error": {"code": "x", "message": 5}},  # no valid shape
        {"jsonrpc": "2.0", "result": [1, 2]},
        {"jsonrpc": "1.0", "result": {"content": []}},
        {"jsonrpc": "2.0"},
    ]
    outcomes: list[Any] = []
    for answer in answers:
        async with anyio.create_task_group() as tg:
            async def call() -> None:
                try:
                    outcomes.append(await lane.request("tools/call", {"name": "e"}, timeout=5))
                except MCPError as exc:
                    outcomes.append((exc.error.code, exc.error.message, exc.error.data))

            pipe.lines.clear()
            tg.start_soon(call)
            sent = await pipe.next_request()
            assert lane.take({**answer, "id": sent["id"]})
    assert outcomes == [(-32602, "bad arguments", {"field": "x"}), {}, {}, {}, {}]


async def test_a_timeout_cancels_the_request_upstream_and_raises_request_timeout():
    lane, pipe = _lane()
    with pytest.raises(MCPError) as caught:
        await lane.request("tools/call", {"name": "slow"}, timeout=0.05)
    assert caught.value.error.code == REQUEST_TIMEOUT
    request, cancel = pipe.lines
    assert cancel["method"] == "notifications/cancelled" and "id" not in cancel
    assert cancel["params"]["requestId"] == request["id"]
    assert not lane.waiting


async def test_a_cancelled_caller_cancels_the_request_upstream():
    lane, pipe = _lane()

    async def call() -> None:
        await lane.request("tools/call", {"name": "slow"}, timeout=30)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        sent = await pipe.next_request()
        tg.cancel_scope.cancel()
    assert pipe.lines[-1] == {"jsonrpc": "2.0", "method": "notifications/cancelled",
                              "params": {"requestId": sent["id"], "reason": "caller cancelled"}}
    assert not lane.waiting


async def test_a_closed_pipe_fails_the_requests_in_flight_and_every_later_one():
    lane, pipe = _lane()
    codes: list[int] = []

    async def call() -> None:
        try:
            await lane.request("tools/call", {"name": "slow"}, timeout=30)
        except MCPError as exc:
            codes.append(exc.error.code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        tg.start_soon(call)
        while len([line for line in pipe.lines if "id" in line]) < 2:
            pipe.sent = anyio.Event()
            await pipe.sent.wait()
        lane.close()
    await call()
    assert codes == [CONNECTION_CLOSED] * 3
    assert not lane.attached
    assert [line for line in pipe.lines if line.get("method") == "notifications/cancelled"] == [], \
        "nothing is written to a closed pipe"


async def test_a_pipe_that_breaks_on_write_is_connection_closed():
    lane = StdioLane()

    async def broken(_data: bytes) -> None:
        raise anyio.BrokenResourceError

    lane.attach(broken)
    with pytest.raises(MCPError) as caught:
        await lane.request("tools/call", {"name": "x"}, timeout=5)
    assert caught.value.error.code == CONNECTION_CLOSED
    unattached = StdioLane()
    assert not unattached.attached
    with pytest.raises(MCPError):
        await unattached.request("tools/call", {"name": "x"}, timeout=5)


async def test_an_answer_the_transport_dropped_for_its_size_fails_only_its_request():
    lane, pipe = _lane()
    async with anyio.create_task_group() as tg:
        errors: list[MCPError] = []

        async def call() -> None:
            with pytest.raises(MCPError) as caught:
                await lane.request("tools/call", {"name": "big"}, timeout=5)
            errors.append(caught.value)

        tg.start_soon(call)
        sent = await pipe.next_request()
        assert lane.owns(sent["id"]) and not lane.owns(1) and not lane.owns("other")
        lane.fail(sent["id"], -32090, "answer dropped", {"reason": "mcp-access-proxy/message-too-large"})
    assert errors[0].error.code == -32090 and errors[0].error.data == {"reason": "mcp-access-proxy/message-too-large"}


def test_lines_are_parsed_as_strict_json():
    assert parse_line(b'{"id": "a", "result": {"x": 1.5}}') == {"id": "a", "result": {"x": 1.5}}
    for junk in (b'{"result": NaN}', b'{"result": Infinity}', b'{"result": -Infinity}', b"{nope"):
        with pytest.raises(ValueError):
            parse_line(junk)


def _progress(token: str, **fields: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, **fields}}


async def _call_with_progress(tg: Any, lane: StdioLane, pipe: Pipe, relay: Any,
                              timeout: float) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """Start a call that asks for progress: (where its result will be, the request as sent, its token)."""
    got: list[dict[str, Any]] = []

    async def call() -> None:
        got.append(await lane.request("tools/call", {"name": "p"}, timeout=timeout, on_progress=relay))

    tg.start_soon(call)
    sent = await pipe.next_request()
    return got, sent, sent["params"]["_meta"]["progressToken"]


async def test_an_answer_held_up_by_a_slow_progress_relay_is_still_the_answer_not_a_timeout():
    lane, pipe = _lane()

    async def slow_relay(progress: float, total: float | None, message: str | None) -> None:
        await anyio.sleep(5)  # a client that does not read its progress

    async with anyio.create_task_group() as tg:
        got, sent, token = await _call_with_progress(tg, lane, pipe, slow_relay, timeout=1)
        with anyio.fail_after(4):
            assert lane.take(_progress(token, progress=1))
            await anyio.sleep(0.05)
            assert lane.take(_answer(sent["id"], {"content": []}))
            while not got:
                await anyio.sleep(0.05)
    assert got == [{"content": []}], "the upstream answered in time"
    assert not [line for line in pipe.lines if line.get("method") == "notifications/cancelled"]


async def test_progress_an_upstream_floods_is_kept_bounded_and_the_latest_is_kept():
    lane, pipe = _lane()
    relayed: list[float] = []
    release = anyio.Event()

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await release.wait()
        relayed.append(progress)

    async with anyio.create_task_group() as tg:
        got, sent, token = await _call_with_progress(tg, lane, pipe, relay, timeout=30)
        await anyio.sleep(0.01)  # the call waits for its answer from here on; all that follows comes at once
        for step in range(100_000):
            lane.take(_progress(token, progress=step))
        lane.take(_answer(sent["id"], {"content": []}))
        release.set()
    assert got == [{"content": []}]
    assert len(relayed) <= MAX_QUEUED_PROGRESS + 1 and relayed[-1] == 99_999 and relayed == sorted(relayed)


async def test_the_first_end_of_a_request_counts():
    # An answer held up by a slow relay stays the answer when the pipe closes or a second answer comes after it.
    lane, pipe = _lane()

    async def slow_relay(progress: float, total: float | None, message: str | None) -> None:
        await anyio.sleep(5)

    async with anyio.create_task_group() as tg:
        got, sent, token = await _call_with_progress(tg, lane, pipe, slow_relay, timeout=0.5)
        assert lane.take(_progress(token, progress=1))
        await anyio.sleep(0.05)
        assert lane.take(_answer(sent["id"], {"content": [{"type": "text", "text": "first"}]}))
        assert lane.take(_answer(sent["id"], {"content": [{"type": "text", "text": "second"}]}))
        lane.close()
    assert got == [{"content": [{"type": "text", "text": "first"}]}]
