"""A tool's input schema cannot stall the proxy: while a crafted argument is checked against a catastrophic
`pattern`, pings and other calls keep answering at once, and the crafted call gets a clear tool error in
bounded time. Through the real process, with an upstream of catastrophic schemas (redos_upstream.py)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests._support.live_wire import LiveProxy, request, tool_call
from tests._support.proxy import PY

REDOS = str(Path(__file__).parent / "redos_upstream.py")
BUDGET = 2.0  # CHECK_BUDGET in catalog/arguments.py, written out: the test guards the rule
CRAFTED = "a" * 40 + "!"  # 2**40 steps for a backtracking matcher


@pytest.fixture
def live(proxy):
    proxy.write({"rx": {"kind": "mcp", "command": PY, "args": [REDOS]}})
    lp = LiveProxy(proxy)
    lp.handshake()
    lp.send(request("list", "tools/list"))
    lp.answer("list")
    # Warm up: what a first call pays once (importing `regex`, compiling validators) is not the property here.
    for name, arguments in (("rx_echo", {"text": "warm"}), ("rx_nested", {"word": "aaaa"}),
                            ("rx_alternation", {"word": "aaaa"}), ("rx_keyed", {"aaa": "x"})):
        lp.send(tool_call(f"warm-{name}", name, arguments))
        assert lp.answer(f"warm-{name}")["result"]["content"][0]["text"] in ("warm", "called")
    yield lp
    lp.close()


def _latencies(live: LiveProxy, rounds: int = 20, tag: str = "") -> list[float]:
    """Send a ping and an echo call every 50 ms; the time each took to be answered, measured here."""
    sent: dict[str, float] = {}
    for i in range(rounds):
        sent[f"{tag}ping{i}"] = live.send(request(f"{tag}ping{i}", "ping"))
        sent[f"{tag}echo{i}"] = live.send(tool_call(f"{tag}echo{i}", "rx_echo", {"text": f"e{i}"}))
        time.sleep(0.05)
    assert live.wait_for(lambda: all(live.answered_at(rid) is not None for rid in sent), 30)
    return sorted(live.answered_at(rid) - at for rid, at in sent.items())  # type: ignore[operator]


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def _bound(live: LiveProxy) -> float:
    """100 ms, or three times the p90 of the same exchange with nothing else going on when the machine is
    loaded by others (two cores shared): a stalled proxy answers in seconds either way."""
    return max(0.1, 3 * _p90(_latencies(live, rounds=10, tag="baseline-")))


@pytest.mark.parametrize("tool, arguments", [
    ("rx_alternation", {"word": CRAFTED}),  # catastrophic for any backtracking matcher: runs out of time
    ("rx_keyed", {CRAFTED: "x"}),  # the same, on a property name (patternProperties, additionalProperties)
])
def test_a_catastrophic_pattern_gets_a_tool_error_in_time_and_stalls_nothing(live, tool, arguments):
    bound = _bound(live)
    started = live.send(tool_call("crafted", tool, arguments))
    time.sleep(0.1)  # the check is under way
    latencies = _latencies(live)
    crafted = live.answer("crafted", timeout=30)
    took = live.answered_at("crafted") - started
    assert crafted["result"]["isError"] is True, crafted
    text = crafted["result"]["content"][0]["text"]
    assert "could not be checked against the tool's schema in time" in text, text
    assert took < BUDGET + 3, f"the crafted call took {took:.1f} s"
    assert _p90(latencies) < bound, f"p90 {_p90(latencies) * 1000:.0f} ms over {bound * 1000:.0f}: {latencies}"
    assert latencies[-1] < BUDGET, "a ping or call waited for the crafted check"
    assert all(live.answer(f"echo{i}")["result"]["content"][0]["text"] == f"e{i}" for i in range(20))


def test_the_nested_quantifier_from_the_report_is_refused_quickly(live):
    # "^(a+)+$" freezes Python's re on "aaa…a!"; the regex package matches it in linear time, so the call
    # gets the ordinary invalid-arguments answer, worded as jsonschema words it.
    bound = _bound(live)
    started = live.send(tool_call("crafted", "rx_nested", {"word": CRAFTED}))
    latencies = _latencies(live, rounds=10)
    crafted = live.answer("crafted", timeout=30)
    assert live.answered_at("crafted") - started < BUDGET + 3
    text = crafted["result"]["content"][0]["text"]
    assert text == (f"Invalid arguments for 'rx_nested': argument 'word': '{CRAFTED}' does not match '^(a+)+$'. "
                    "Fix the arguments and call again."), text
    assert _p90(latencies) < bound, (bound, latencies)
    live.send(tool_call("fine", "rx_nested", {"word": "aaaa"}))
    assert live.answer("fine")["result"]["content"][0]["text"] == "called"
