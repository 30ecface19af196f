"""What the REST emulators' test helpers (`jsm.py`, `opsgenie.py`, `statuspage.py`) share: a served emulator
with the connectors a test pointed at it (`EmulatorSandbox`), serving one and checking every exchange it saw
against the vendor's spec when the test is done (`served_and_checked`), and the fixtures' factory that
starts them and closes their connectors (`sandbox_factory`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mcp_proxy.connectors.base import Connector
from mcp_proxy.sandbox.asgi_thread import serve_in_thread


@dataclass
class EmulatorSandbox:
    url: str  # what a connector's base_url is set to
    emulator: Any  # the vendor's Emulator: its `log` holds every exchange
    connectors: list[Connector] = field(default_factory=list)  # closed by `sandbox_factory`
    allowed: list[str] = field(default_factory=list)  # spec problems a test provokes on purpose

    def keep(self, connector: Connector) -> Connector:
        self.connectors.append(connector)
        return connector

    def allow(self, problem_part: str) -> None:
        """Let the spec check pass over problems that contain `problem_part`."""
        self.allowed.append(problem_part)

    def requests(self, method: str | None = None, path_part: str = "") -> list[dict[str, Any]]:
        return [e for e in self.emulator.log if (method is None or e["method"] == method) and path_part in e["path"]]


SandboxT = TypeVar("SandboxT", bound=EmulatorSandbox)


@contextmanager
def served_and_checked(app: Any, make: Callable[[str, Any], SandboxT], problems: Callable[[SandboxT], list[str]],
                       spec_name: str) -> Iterator[SandboxT]:
    """Serve `app` on 127.0.0.1 and yield `make(server URL, its emulator)`; once the test is done, stop it and
    fail on anything `problems` finds in its exchanges that the test did not `allow`."""
    server = serve_in_thread(app)
    sandbox = make(server.url, app.state.emulator)
    try:
        yield sandbox
    finally:
        server.stop()
    found = [p for p in problems(sandbox) if not any(a in p for a in sandbox.allowed)]
    assert not found, f"exchanges that do not match the {spec_name} spec:\n" + "\n".join(found)


class _HasConnectors(Protocol):
    connectors: list[Connector]


SandboxC = TypeVar("SandboxC", bound=_HasConnectors)


@asynccontextmanager
async def sandbox_factory(serve: Callable[..., AbstractContextManager[SandboxC]],
                          ) -> AsyncIterator[Callable[..., SandboxC]]:
    """`start(**options)` serves a sandbox with `serve`; at the end every connector a test made on one is closed,
    then the sandboxes are stopped and checked, last started first."""
    with ExitStack() as stack:
        sandboxes: list[SandboxC] = []

        def start(**options: Any) -> SandboxC:
            sandboxes.append(stack.enter_context(serve(**options)))
            return sandboxes[-1]

        try:
            yield start
        finally:
            for sandbox in sandboxes:
                for connector in sandbox.connectors:
                    await connector.aclose()
