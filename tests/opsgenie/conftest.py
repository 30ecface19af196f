"""Fixtures: the Opsgenie emulator over real HTTP, connectors pointed at it, and a spec check
of every exchange the emulator saw (run when each test ends).
Their helpers live in tests/_support/opsgenie.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest

from tests._support.emulators import sandbox_factory
from tests._support.opsgenie import Sandbox, serve
from tests.opsgenie.swagger_check import SwaggerChecker


@pytest.fixture(scope="session")
def spec() -> SwaggerChecker:
    return SwaggerChecker.load()


@pytest.fixture
async def og_factory(spec: SwaggerChecker) -> AsyncIterator[Callable[..., Sandbox]]:
    """Start emulators (with options); at the end their connectors are closed, the servers stopped
    and every exchange checked against the spec."""
    async with sandbox_factory(partial(serve, spec)) as start:
        yield start


@pytest.fixture
async def og(og_factory: Callable[..., Sandbox]) -> Sandbox:
    """The emulator (requests processed after one poll) on a real local port."""
    return og_factory()
