"""The background loop, expiry with an injectable clock, and definition pinning events."""

from __future__ import annotations

import json

import anyio
import pytest

from tests._support.policy_docs import NOW, approved, make_doc, tool

pytestmark = pytest.mark.anyio

LIST = tool("pd.list_incidents", read_only=True)


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def test_run_polls_activates_and_signals_changes(harness, policy_server):
    app, url = policy_server
    engine = harness.engine(url, poll_interval=0.05)
    changes: list[str | None] = []

    async def on_change() -> None:
        changes.append(engine.revision)

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run, on_change, stop)
        await _wait_for(lambda: changes == ["r1"])
        await _wait_for(lambda: sum(r["status"] == 304 for r in app.state.requests) >= 2)  # conditional polling
        app.state.document = json.dumps(make_doc("r2", issued=NOW - 10)).encode()
        await _wait_for(lambda: changes == ["r1", "r2"])
        stop.set()
    assert engine.revision == "r2"


async def test_run_backs_off_while_the_server_fails(harness, policy_server):
    app, url = policy_server
    engine = harness.engine(url, poll_interval=0.05)
    stop = anyio.Event()

    async def nothing() -> None: ...

    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run, nothing, stop)
        await _wait_for(lambda: engine.revision == "r1")
        app.state.fault = "500"
        failing_from = len(app.state.requests)
        await anyio.sleep(1.0)
        stop.set()
    failures = len(app.state.requests) - failing_from
    # at a steady 0.05 s the loop would have asked ~20 times; backing off (x2 .. x8) asks far fewer
    assert 1 <= failures <= 8
    assert engine.revision == "r1"


async def test_expiry_during_run_fails_closed_and_signals(harness, write_policy):
    path = write_policy(make_doc(tools={LIST.key: approved(LIST)}, expires=NOW + 60))
    engine = harness.engine(path, poll_interval=0.05)
    changes: list[bool] = []

    async def on_change() -> None:
        changes.append(engine.decide(LIST, None).allowed)

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(engine.run, on_change, stop)
        await _wait_for(lambda: changes == [True])
        harness.clock.now = NOW + 61
        await _wait_for(lambda: changes == [True, False])
        await anyio.sleep(0.2)  # expiry is signalled once, not on every poll
        stop.set()
    assert changes == [True, False]
    assert engine.decide(LIST, None).code == "expired"
    assert len(harness.named("policy.expired")) == 1
    status = engine.status()
    assert status.expired and "EXPIRED" in status.summary() and status.problem


async def test_expired_cache_loads_but_allows_nothing(harness, write_policy):
    path = write_policy(make_doc(tools={LIST.key: approved(LIST)}, expires=NOW + 60))
    await harness.engine(path).sync()
    harness.clock.now = NOW + 3600
    restarted = harness.engine(path)
    restarted.load_cached()
    assert restarted.revision == "r1"
    assert restarted.decide(LIST, None).code == "expired"
    assert harness.named("policy.expired")


async def test_changed_definition_is_pending_again_and_reported_once(harness, write_policy):
    path = write_policy(make_doc(tools={LIST.key: approved(LIST)}))
    engine = harness.engine(path)
    await engine.sync()
    changed = tool("pd.list_incidents", read_only=True, description="lists and also pages everyone")
    engine.check_definitions([changed])
    engine.check_definitions([changed])
    events = harness.named("tool.definition_changed")
    assert len(events) == 1
    assert events[0]["approved_sha256"] == LIST.definition_hash
    assert events[0]["current_sha256"] == changed.definition_hash
    assert engine.decide(changed, None).code == "definition_changed"
    engine.check_definitions([LIST])  # reverted: nothing to report
    again = tool("pd.list_incidents", read_only=True, description="a third version")
    engine.check_definitions([again])
    assert len(harness.named("tool.definition_changed")) == 2


async def test_known_facts_are_checked_when_a_policy_activates(harness, write_policy):
    changed = tool("pd.list_incidents", read_only=True, description="v2")
    path = write_policy(make_doc(tools={LIST.key: approved(LIST)}))
    engine = harness.engine(path)
    engine.check_definitions([changed])  # the catalog was known before the policy
    assert not harness.named("tool.definition_changed")
    report = await engine.sync(user=None)
    assert report.result == "activated" and report.newly_available == ()  # the changed tool stays unavailable
    assert len(harness.named("tool.definition_changed")) == 1


async def test_ungoverned_engine_allows_everything(harness):
    from mcp_proxy.policy import PolicyEngine

    engine = PolicyEngine(None, harness.paths, emit=harness.emit)
    engine.load_cached()
    decision = engine.decide(LIST, None)
    assert (decision.allowed, decision.code) == (True, "ungoverned")
    assert not engine.governed and engine.revision is None
    assert (await engine.sync()).result == "ungoverned"
    assert "ungoverned" in engine.status().summary()
    with anyio.fail_after(1):
        await engine.run(lambda: None, anyio.Event())  # returns at once
