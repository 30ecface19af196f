"""The call pipeline: every `tools/call`, from either entry point, runs through these stages in this order.

    ErrorBoundary  no exception text reaches the model but a ProxyError's (what happened, what to do)
    Trace          joins the client's W3C trace (or starts one): ids for the records, context for upstreams
    AuditCall      one record for every call when it ends: denied, failed, cancelled or answered
    TrackInFlight  the call is in flight: a stop waits for it (bounded), then cancels it
    ProxyTools     the proxy's own tools are answered here
    Resolve        exposed name -> catalog entry and upstream (waits, bounded, for a connecting upstream)
    Authorize      the policy decides for this user, on every call
    Constrain      an approved tool's argument constraints (a composite tool approved for some actions only)
    Validate       arguments against the tool's input schema
    SignIn         a call refused for want of a sign-in signs the user in, then runs once more
    Recheck        once the upstream is ready: decided again on the live definition, policy and user
    RecordStarted  `mcp.tool.started` is on disk before anything is sent upstream
    UpstreamInput  an upstream's InputRequiredResult is relayed to the client, labelled and recorded
    Forward        the upstream runs the call, within its call timeout

Why this order: the boundary is outermost so that even a failing audit write gives the client an answer;
the trace comes before audit so that every record of the call carries its trace and span ids;
audit wraps everything that can refuse, fail or be cancelled, so every outcome is on record, and the
stop's cancellation happens inside it; the proxy's own tools need no upstream; the policy decides on
the resolved definition, cheaply refusing what it must before any wait; nothing reaches a vendor
before the policy and the schema have passed it; sign-in wraps the recheck and the forwarding it
repeats, so the user signed in after it is the one decided for; the recheck comes after every wait;
the started record comes right before the stages that send anything upstream; the upstream's input
requests are relayed from inside the call that the policy allowed, which is what governs them.

A stage is `async (call, call_next) -> result` and takes only what it uses. A new concern (a rate limit,
a redaction) is one new stage in this list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Protocol

from mcp_proxy.server.call import CallResult, Next, Stage, ToolCall
from mcp_proxy.server.inflight import CallsInFlight
from mcp_proxy.server.stages.audit import AuditCall, AuditSink, RecordStarted
from mcp_proxy.server.stages.authorize import Authorize, Decider
from mcp_proxy.server.stages.boundary import ErrorBoundary
from mcp_proxy.server.stages.constrain import Constrain, ConstraintSource
from mcp_proxy.server.stages.forward import Forward
from mcp_proxy.server.stages.proxy_tools import AccessTools, ProxyTools
from mcp_proxy.server.stages.recheck import Recheck
from mcp_proxy.server.stages.resolve import Resolve, ToolLookup
from mcp_proxy.server.stages.sign_in import SignIn, SignInFlow
from mcp_proxy.server.stages.trace import Trace
from mcp_proxy.server.stages.track import TrackInFlight
from mcp_proxy.server.stages.upstream_input import InputRelay, NoInputRelay, UpstreamInput
from mcp_proxy.server.stages.validate import Validate
from mcp_proxy.upstreams.base import Upstream


class Policy(Decider, ConstraintSource, Protocol):
    """What the stages ask of the approval policy: a decision, and an approved tool's constraints."""


def call_stages(*, audit: AuditSink, inflight: CallsInFlight, access_tools: AccessTools, catalog: ToolLookup,
                upstreams: Mapping[str, Upstream], policy: Policy, user: Callable[[], str | None],
                sign_in: SignInFlow, input_relay: InputRelay | None = None) -> list[Stage]:
    return [
        ErrorBoundary(),
        Trace(),
        AuditCall(audit),
        TrackInFlight(inflight),
        ProxyTools(access_tools),
        Resolve(catalog, upstreams),
        Authorize(policy),
        Constrain(policy),
        Validate(),
        SignIn(sign_in),
        Recheck(catalog, policy, user, policy),
        RecordStarted(audit),
        UpstreamInput(input_relay or NoInputRelay()),
        Forward(),
    ]


async def _unanswered(call: ToolCall) -> CallResult:
    raise RuntimeError(f"no stage answered the call to {call.name!r}")  # the last stage must answer


class Pipeline:
    """The stages chained once, at construction: a call costs one coroutine frame per stage."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        chain: Next = _unanswered
        for stage in reversed(self.stages):
            chain = partial(stage.__call__, call_next=chain)
        self._chain = chain

    async def __call__(self, call: ToolCall) -> CallResult:
        return await self._chain(call)
