"""Stand-ins used only while the policy and audit parts are not yet present."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class _Decision:
    allowed: bool = True
    state: str = "approved"
    code: str = "ungoverned"
    message: str = ""


class InterimPolicy:
    governed = False
    revision = None

    def load_cached(self) -> None: ...
    def decide(self, facts: Any, user: Any) -> _Decision: return _Decision()
    def check_definitions(self, facts: Any) -> None: ...
    async def run(self, on_change: Any, stop: Any) -> None: ...


@dataclass
class _Ctx:
    user: Any = None
    client_name: Any = None
    client_version: Any = None
    policy_revision: Any = None


class InterimAudit:
    def __init__(self) -> None:
        self.context = _Ctx()
        self.records: list[tuple[str, dict]] = []

    async def append(self, event: str, fields: dict) -> dict:
        self.records.append((event, dict(fields)))
        return fields

    def append_nowait(self, event: str, fields: dict) -> dict:
        self.records.append((event, dict(fields)))
        return fields

    def close(self) -> None: ...
