"""Fixtures: the Opsgenie emulator over real HTTP, connectors pointed at it, and a spec check
of every exchange the emulator saw (run when each test ends).
Their helpers live in tests/_support/opsgenie.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from typing import Any

import pytest

from tests._support.opsgenie import Sandbox, serve
from tests.opsgenie.swagger_check import SwaggerChecker


@pytest.fixture(scope="session")
def spec() -> SwaggerChecker:
    return SwaggerChecker.load()


@pytest.fixture
async def og_factory(spec: SwaggerChecker) -> AsyncIterator[Callable[..., Sandbox]]:
    """Start emulators (with options); at the end their connectors are closed, the servers stopped
    and every exchange checked against the spec."""
    with ExitStack() as stack:
        sandboxes: list[Sandbox] = []

        def start(**options: Any) -> Sandbox:
            sandboxes.append(stack.enter_context(serve(spec, **options)))
            return sandboxes[-1]

        try:
            yield start
        finally:
            for sandbox in sandboxes:
                for connector in sandbox.connectors:
                    await connector.aclose()


@pytest.fixture
async def og(og_factory: Callable[..., Sandbox]) -> Sandbox:
    """The emulator (requests processed after one poll) on a real local port."""
    return og_factory()
