"""The sign-in stage, the proxy-tools stage, and the whole pipeline in its order, in-process with fakes."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_proxy.errors import SignInRequired
from mcp_proxy.server.call import CallResult, ToolCall
from mcp_proxy.server.inflight import CallsInFlight
from mcp_proxy.server.pipeline import Pipeline, call_stages
from mcp_proxy.server.stages.audit import AuditCall, RecordStarted
from mcp_proxy.server.stages.authorize import Authorize
from mcp_proxy.server.stages.boundary import ErrorBoundary
from mcp_proxy.server.stages.constrain import Constrain
from mcp_proxy.server.stages.forward import Forward
from mcp_proxy.server.stages.proxy_tools import ProxyTools
from mcp_proxy.server.stages.recheck import Recheck
from mcp_proxy.server.stages.resolve import Resolve
from mcp_proxy.server.stages.sign_in import SignIn, SignInFlow
from mcp_proxy.server.stages.trace import Trace
from mcp_proxy.server.stages.track import TrackInFlight
from mcp_proxy.server.stages.upstream_input import UpstreamInput
from mcp_proxy.server.stages.validate import Validate
from mcp_proxy.upstreams.base import Upstream, error_result
from tests._support.pipeline_fakes import (
    AuditRecorder,
    FakePolicy,
    FakeUpstream,
    call_of,
    catalog_with,
    is_error,
    text_of,
)

pytestmark = pytest.mark.anyio


class FakeFlow:
    """Stands in for SignInFlow: None (signed in) or a result that says why not."""

    def __init__(self, outcome: CallResult | None) -> None:
        self.outcome = outcome
        self.asked: list[str] = []

    async def __call__(self, call: ToolCall, upstream: Upstream, exc: SignInRequired) -> CallResult | None:
        self.asked.append(upstream.key)
        return self.outcome


def refusing_then(answers: list[Any]) -> Any:
    async def next_stage(call: ToolCall) -> CallResult:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return next_stage


OK: CallResult = {"content": [{"type": "text", "text": "done"}], "isError": False}


def sign_in_stage(flow: FakeFlow) -> SignIn:
    return SignIn(flow)  # type: ignore[arg-type]  # the fake has SignInFlow's call signature


async def test_a_call_refused_for_want_of_sign_in_signs_in_and_runs_once_more():
    flow = FakeFlow(None)
    call = call_of()
    call.upstream = FakeUpstream("pd")
    result = await sign_in_stage(flow)(call, refusing_then([SignInRequired("pd", "no token is stored"), OK]))
    assert result is OK and flow.asked == ["pd"]


async def test_a_sign_in_that_fails_is_the_answer_and_on_record_as_sign_in_required():
    flow = FakeFlow(error_result("Sign-in to 'pd' was declined, so the call was not made."))
    call = call_of()
    call.upstream = FakeUpstream("pd")
    result = await sign_in_stage(flow)(call, refusing_then([SignInRequired("pd", "no token is stored")]))
    assert "declined" in text_of(result)
    assert (call.outcome, call.error_type) == ("error", "sign_in_required")


async def test_refused_again_right_after_signing_in_is_said_not_looped():
    flow = FakeFlow(None)
    call = call_of()
    call.upstream = FakeUpstream("pd")
    result = await sign_in_stage(flow)(call, refusing_then([SignInRequired("pd", "a"), SignInRequired("pd", "b")]))
    assert "refused the new sign-in right away" in text_of(result)
    assert flow.asked == ["pd"] and call.error_type == "sign_in_required"


async def test_sign_in_without_a_broker_names_the_login_command():
    call = call_of()
    upstream = FakeUpstream("pd")
    result = await SignInFlow(lambda email, key: None)(call, upstream,  # type: ignore[arg-type]
                                                       SignInRequired("pd", "no token is stored"))
    assert result is not None and "mcp-access-proxy login pd" in text_of(result)


class FakeAccessTools:
    names = frozenset({"proxy_unavailable_tools"})

    def __init__(self) -> None:
        self.users: list[str | None] = []

    async def call(self, name: str, arguments: dict[str, Any], user: str | None) -> Any:
        import mcp_types as types

        self.users.append(user)
        return types.CallToolResult(content=[types.TextContent(type="text", text="none")], is_error=False)


async def test_the_proxys_own_tools_are_answered_without_an_upstream():
    tools = FakeAccessTools()
    call = call_of("proxy_unavailable_tools", {})
    call.user = "bob@example.com"
    result = await ProxyTools(tools)(call, refusing_then([AssertionError("went on")]))  # type: ignore[arg-type]
    assert text_of(result) == "none" and tools.users == ["bob@example.com"]
    assert call.audit_fields["upstream"] == "proxy" and call.outcome == "ok"


async def test_other_calls_pass_the_proxy_tools_stage():
    result = await ProxyTools(FakeAccessTools())(call_of(), refusing_then([OK]))  # type: ignore[arg-type]
    assert result is OK


# -- the whole pipeline ----------------------------------------------------------------------------------------
def pipeline(policy: FakePolicy, upstream: FakeUpstream, audit: AuditRecorder,
             inflight: CallsInFlight | None = None) -> Pipeline:
    return Pipeline(call_stages(audit=audit, inflight=inflight or CallsInFlight(),
                                access_tools=FakeAccessTools(),  # type: ignore[arg-type]
                                catalog=catalog_with("up"), upstreams={"up": upstream}, policy=policy,
                                user=lambda: "alice@example.com", sign_in=FakeFlow(None)))  # type: ignore[arg-type]


def test_the_order_of_the_stages():
    stages = pipeline(FakePolicy(), FakeUpstream(), AuditRecorder()).stages
    assert [type(s) for s in stages] == [ErrorBoundary, Trace, AuditCall, TrackInFlight, ProxyTools, Resolve,
                                         Authorize, Constrain, Validate, SignIn, Recheck, RecordStarted, UpstreamInput,
                                         Forward]


async def test_a_denied_call_never_reaches_the_upstream_and_is_on_record():
    upstream, audit = FakeUpstream(), AuditRecorder()
    result = await pipeline(FakePolicy(), upstream, audit)(call_of())
    assert is_error(result) and upstream.calls == []
    assert [e for e, _ in audit.records] == ["mcp.tool.denied"]


async def test_bad_arguments_of_an_approved_tool_never_reach_the_upstream():
    upstream, audit = FakeUpstream(), AuditRecorder()
    result = await pipeline(FakePolicy({"up.echo"}), upstream, audit)(call_of(arguments={"text": 1}))
    assert is_error(result) and upstream.calls == []
    assert audit.records[0][1]["error.type"] == "invalid_arguments"


async def test_an_approved_call_is_forwarded_and_on_record():
    upstream, audit = FakeUpstream(), AuditRecorder()
    result = await pipeline(FakePolicy({"up.echo"}), upstream, audit)(call_of())
    assert text_of(result) == "hi" and upstream.calls == [("echo", {"text": "hi"})]
    [(started, before), (event, fields)] = audit.records
    assert (started, event) == ("mcp.tool.started", "mcp.tool.call")
    assert before["gen_ai.tool.call.id"] == fields["gen_ai.tool.call.id"] and "outcome" not in before
    assert fields["outcome"] == "ok" and fields["decision"] == "allow"


async def test_an_unexpected_failure_is_on_record_and_answered_without_its_text():
    upstream = FakeUpstream(answer=lambda name, args: RuntimeError("secret=abc123"))
    audit = AuditRecorder()
    result = await pipeline(FakePolicy({"up.echo"}), upstream, audit)(call_of())
    assert is_error(result) and "abc123" not in text_of(result)
    assert [e for e, _ in audit.records] == ["mcp.tool.started", "mcp.tool.call"]
    assert audit.records[1][1]["error.type"] == "RuntimeError"


async def test_a_failing_audit_write_still_answers():
    class BrokenAudit(AuditRecorder):
        async def __call__(self, event_name: str, fields: dict[str, Any], /) -> object:
            raise OSError("disk full")

    result = await pipeline(FakePolicy({"up.echo"}), FakeUpstream(), BrokenAudit())(call_of())
    assert is_error(result) and "internal error" in text_of(result)
