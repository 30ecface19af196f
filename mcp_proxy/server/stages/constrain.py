"""Constrain: an approved tool narrowed by its policy entry's argument constraints (policy/constraints.py).

A composite tool (one that takes an `action`) is approved only for the values the policy lists; any
other call of it is refused like a policy denial, naming the allowed values, and recorded
(`mcp.tool.denied`, code `constraint`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mcp_proxy.policy.constraints import violation
from mcp_proxy.server.call import CallResult, Next, ToolCall


class ConstraintSource(Protocol):
    def constraints_for(self, key: str) -> dict[str, tuple[object, ...]] | None: ...


class Constrain:
    def __init__(self, policy: ConstraintSource) -> None:
        self._policy = policy

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        assert call.entry is not None, "Resolve runs before Constrain"
        constraints = self._policy.constraints_for(call.entry.facts.key)
        if constraints:
            broken = violation(constraints, call.arguments)
            if broken is not None:
                call.audit_fields["policy.decision.code"] = "constraint"
                return call.deny("constraint", f"{broken.path} not in {_listed(broken.allowed)}",
                                 broken.message(call.name))
        return await call_next(call)


def _listed(values: Sequence[object]) -> str:
    return ", ".join(repr(v) for v in values)[:200]
