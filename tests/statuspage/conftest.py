"""Fixtures: the Statuspage emulator over real HTTP, connectors pointed at it, and a spec check of
every exchange the emulator saw (run when each test ends).
Their helpers live in tests/_support/statuspage.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest

from tests._support.emulators import sandbox_factory
from tests._support.statuspage import Sandbox, serve
from tests.statuspage.spec_check import OpenApiChecker


@pytest.fixture(scope="session")
def spec() -> OpenApiChecker:
    return OpenApiChecker.load()


@pytest.fixture
async def sp_factory(spec: OpenApiChecker) -> AsyncIterator[Callable[..., Sandbox]]:
    """Start emulators (with options); at the end their connectors are closed, the servers stopped
    and every exchange checked against the spec."""
    async with sandbox_factory(partial(serve, spec)) as start:
        yield start


@pytest.fixture
async def sp(sp_factory: Callable[..., Sandbox]) -> Sandbox:
    """The seeded emulator on a real local port."""
    return sp_factory()
