"""catalog/arguments.py in-process: the pattern keywords keep jsonschema's answers and wording, and a
catastrophic pattern is cut off in time without holding up the event loop."""

from __future__ import annotations

import itertools
import time

import anyio
import pytest

from mcp_proxy.catalog.arguments import ArgumentsUncheckable, check_arguments, check_arguments_in_time

WORD = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^[a-z]+$"}}}
KEYED = {"type": "object", "properties": {"name": {"type": "string"}},
         "patternProperties": {"^x-": {"type": "integer"}}, "additionalProperties": False}
CLOSED = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
          "additionalProperties": False}
EVIL = {"type": "object", "properties": {"word": {"type": "string", "pattern": "^(a|a)+$"}}}


@pytest.mark.parametrize("schema, arguments, expected", [
    (WORD, {"word": "abc"}, None),
    (WORD, {"word": "ab1"}, "argument 'word': 'ab1' does not match '^[a-z]+$'"),
    (WORD, {"word": 5}, "argument 'word': 5 is not of type 'string'"),
    (KEYED, {"name": "n", "x-one": 1}, None),
    (KEYED, {"x-one": "1"}, "argument 'x-one': '1' is not of type 'integer'"),
    (KEYED, {"other": 1}, "'other' does not match any of the regexes: '^x-' (allowed: name)"),
    (CLOSED, {"c": 1, "d": 2}, "Additional properties are not allowed ('c', 'd' were unexpected) (allowed: a, b)"),
    (CLOSED, {"c": 1}, "Additional properties are not allowed ('c' was unexpected) (allowed: a, b)"),
])
@pytest.mark.anyio
async def test_answers_and_wording_are_jsonschemas(schema, arguments, expected):
    assert check_arguments(schema, arguments) == expected
    assert await check_arguments_in_time(schema, arguments) == expected


def test_a_catastrophic_pattern_runs_out_of_time_instead_of_forever():
    started = time.monotonic()
    with pytest.raises(ArgumentsUncheckable, match="could not be checked against the tool's schema in time"):
        check_arguments(EVIL, {"word": "a" * 40 + "!"})
    assert time.monotonic() - started < 15  # 2 s of CPU time; generous for a shared, loaded machine


@pytest.mark.anyio
async def test_the_event_loop_keeps_running_while_a_pattern_is_checked():
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await anyio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(ArgumentsUncheckable, match="for 'evil'"):
            await check_arguments_in_time(EVIL, {"word": "a" * 40 + "!"}, "evil")
        took = time.monotonic() - started
        tg.cancel_scope.cancel()
    assert took < 2.0 + 1.0, f"the call waited {took:.1f} s"
    gaps = [b - a for a, b in itertools.pairwise(ticks) if a >= started]
    assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"
