"""Recheck: the call is decided again at the moment of forwarding.

A call can wait between its first decision and the upstream: for an upstream still connecting (its
definitions were the on-disk cache's until then), or for a sign-in that can take minutes (after which
another user may be signed in, or the policy may have changed). So once the upstream is ready, the
tool is looked up again in the live catalog, the live policy decides for the user signed in now, and
a changed definition has its arguments validated again. Only then does the call go on.
"""

from __future__ import annotations

from collections.abc import Callable

from mcp_proxy.catalog.arguments import check_arguments_in_time
from mcp_proxy.policy.constraints import violation
from mcp_proxy.server.call import CallResult, Next, ToolCall
from mcp_proxy.server.stages.authorize import Decider
from mcp_proxy.server.stages.constrain import ConstraintSource
from mcp_proxy.server.stages.resolve import ToolLookup


class Recheck:
    def __init__(self, catalog: ToolLookup, policy: Decider, user: Callable[[], str | None],
                 constraints: ConstraintSource) -> None:
        self._catalog = catalog
        self._policy = policy
        self._user = user
        self._constraints = constraints

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        first, upstream = call.entry, call.upstream
        assert first is not None, "Resolve runs before Recheck"
        if upstream is not None:
            await upstream.wait_ready(upstream.cfg.call_timeout)
        live = self._catalog.lookup(call.name)
        if live is None or live.upstream != first.upstream or live.name != first.name:
            return call.deny("tool_changed", f"{call.name!r} is no longer in the upstream's tool list",
                             f"The tool '{call.name}' is no longer offered by its upstream, so the call was not "
                             "made. List the tools again and use a name from that list.")
        call.user = self._user()
        decision = self._policy.decide(live.facts, call.user)
        if not decision.allowed:
            call.audit_fields["policy.decision.code"] = decision.code
            return call.deny(decision.code, decision.message, decision.message)
        narrowed = self._constraints.constraints_for(live.facts.key)
        broken = violation(narrowed, call.arguments) if narrowed else None
        if broken is not None:
            call.audit_fields["policy.decision.code"] = "constraint"
            return call.deny("constraint", f"{broken.path} not allowed now", broken.message(call.name))
        call.allowed = True
        if live is not first:
            call.entry = live
            if live.input_schema != first.input_schema:
                problem = await check_arguments_in_time(live.input_schema, call.arguments, call.name)
                if problem is not None:
                    return call.fail("invalid_arguments", f"Invalid arguments for '{call.name}': {problem}. The "
                                     "tool's definition changed; list the tools again and fix the arguments.")
        return await call_next(call)
