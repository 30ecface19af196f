"""Fixtures: the JSM Operations emulator over real HTTP, connectors pointed at it, and a spec check of every
exchange the emulator saw (when each test ends). Helpers: tests/_support/jsm.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from typing import Any

import pytest

from tests._support.jsm import JsmChecker, Sandbox, serve


@pytest.fixture(scope="session")
def jsm_spec() -> JsmChecker:
    return JsmChecker.load()


@pytest.fixture
async def jsm_factory(jsm_spec: JsmChecker) -> AsyncIterator[Callable[..., Sandbox]]:
    with ExitStack() as stack:
        sandboxes: list[Sandbox] = []

        def start(**options: Any) -> Sandbox:
            sandboxes.append(stack.enter_context(serve(jsm_spec, **options)))
            return sandboxes[-1]

        try:
            yield start
        finally:
            for sandbox in sandboxes:
                for connector in sandbox.connectors:
                    await connector.aclose()


@pytest.fixture
async def jsm(jsm_factory: Callable[..., Sandbox]) -> Sandbox:
    return jsm_factory()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope: the e2e module's proxy and client live across its tests
