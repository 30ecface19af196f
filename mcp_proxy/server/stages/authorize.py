"""Authorize: the policy decides for this user, on every call (clients cache lists, some ignore
list_changed, so the call is where the policy is enforced)."""

from __future__ import annotations

from typing import Protocol

from mcp_proxy.policy.definition import ToolFacts
from mcp_proxy.policy.evaluate import Decision
from mcp_proxy.server.call import CallResult, Next, ToolCall


class Decider(Protocol):
    def decide(self, facts: ToolFacts, user: str | None) -> Decision: ...


class Authorize:
    def __init__(self, policy: Decider) -> None:
        self._policy = policy

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        assert call.entry is not None, "Resolve runs before Authorize"
        decision = self._policy.decide(call.entry.facts, call.user)
        call.audit_fields["policy.decision.code"] = decision.code
        if not decision.allowed:
            return call.deny(decision.code, decision.message, decision.message)
        call.allowed = True
        call.audit_fields.update({"decision": "allow", "reason": decision.code})
        return await call_next(call)
