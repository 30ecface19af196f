"""Fixtures: the JSM Operations emulator over real HTTP, connectors pointed at it, and a spec check of every
exchange the emulator saw (when each test ends). Helpers: tests/_support/jsm.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest

from tests._support.emulators import sandbox_factory
from tests._support.jsm import JsmChecker, Sandbox, serve


@pytest.fixture(scope="session")
def jsm_spec() -> JsmChecker:
    return JsmChecker.load()


@pytest.fixture
async def jsm_factory(jsm_spec: JsmChecker) -> AsyncIterator[Callable[..., Sandbox]]:
    async with sandbox_factory(partial(serve, jsm_spec)) as start:
        yield start


@pytest.fixture
async def jsm(jsm_factory: Callable[..., Sandbox]) -> Sandbox:
    return jsm_factory()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope: the e2e module's proxy and client live across its tests
