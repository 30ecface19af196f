"""Each stage of the call pipeline on its own, in-process, with fakes (no subprocess)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from mcp_proxy.errors import (
    CallTimeout,
    ConfigError,
    SecretError,
    SignInRequired,
    ToolFailure,
    UpstreamUnavailable,
)
from mcp_proxy.server.call import CallResult, ToolCall
from mcp_proxy.server.stages.audit import AuditCall
from mcp_proxy.server.stages.authorize import Authorize
from mcp_proxy.server.stages.boundary import ErrorBoundary
from mcp_proxy.server.stages.forward import Forward
from mcp_proxy.server.stages.resolve import Resolve
from mcp_proxy.server.stages.validate import Validate
from mcp_proxy.upstreams.base import error_result
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

OK: CallResult = {"content": [{"type": "text", "text": "fine"}], "isError": False}


async def answer_ok(call: ToolCall) -> CallResult:
    return OK


def resolved(call: ToolCall, upstream: FakeUpstream | None = None) -> ToolCall:
    call.entry = catalog_with("up").lookup("up_echo")
    call.upstream = upstream or FakeUpstream()
    return call


def raising(exc: BaseException) -> Any:
    async def next_stage(call: ToolCall) -> CallResult:
        raise exc

    return next_stage


# -- the error boundary --------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [
    ToolFailure("PagerDuty refused: rate limited. Wait a minute.", "rate_limited"),
    UpstreamUnavailable("the upstream 'up' is not available; try again shortly"),
    CallTimeout("no answer within 5 s"),
    SecretError("upstreams.pd.api_key: keyring:pd is not stored; run `mcp-access-proxy secret set pd`"),
    ConfigError(["upstreams.pd.region must be us or eu"]),
])
async def test_the_boundary_shows_a_proxy_errors_own_text(exc):
    result = await ErrorBoundary()(call_of(), raising(exc))
    assert is_error(result)
    assert text_of(result) == (exc.message if isinstance(exc, ToolFailure) else str(exc))


@pytest.mark.parametrize("exc", [RuntimeError("token=sk_live_123 leaked"), KeyError("Bearer abc"),
                                 ValueError("password=hunter2")])
async def test_the_boundary_never_shows_other_exception_text(exc, caplog):
    with caplog.at_level(logging.ERROR):
        result = await ErrorBoundary()(call_of(), raising(exc))
    assert is_error(result)
    assert "internal error" in text_of(result)
    for secret in ("sk_live_123", "Bearer abc", "hunter2"):
        assert secret not in text_of(result)
    assert type(exc).__name__ in caplog.text  # the log names what happened, for the maintainer


async def test_the_boundary_lets_cancellation_through():
    with anyio.CancelScope() as scope:
        async def cancelled(call: ToolCall) -> CallResult:
            scope.cancel()
            await anyio.sleep(1)
            raise AssertionError("not reached")

        await ErrorBoundary()(call_of(), cancelled)
        raise AssertionError("cancellation was swallowed")
    assert scope.cancelled_caught


# -- audit ---------------------------------------------------------------------------------------------------
async def test_audit_records_an_answered_call_with_its_fields():
    audit = AuditRecorder()
    call = call_of(request_id=7)
    call.audit_fields.update({"upstream": "up", "decision": "allow"})
    assert await AuditCall(audit)(call, answer_ok) is OK
    [(event, fields)] = audit.records
    assert event == "mcp.tool.call"
    assert fields["outcome"] == "ok" and fields["error.type"] is None
    assert fields["gen_ai.tool.name"] == "up_echo" and fields["jsonrpc.request.id"] == "7"
    assert fields["arguments"] == {"text": "hi"} and fields["upstream"] == "up"
    assert fields["duration_ms"] >= 0


async def test_audit_records_a_tool_error_result_as_tool_error():
    audit = AuditRecorder()

    async def tool_error(call: ToolCall) -> CallResult:
        return {"content": [{"type": "text", "text": "no such incident"}], "isError": True}

    await AuditCall(audit)(call_of(), tool_error)
    assert audit.records[0][1]["outcome"] == "tool_error"


async def test_audit_records_a_denial_as_denied():
    audit = AuditRecorder()

    async def deny(call: ToolCall) -> CallResult:
        return call.deny("pending", "pending review", "The tool is pending review.")

    await AuditCall(audit)(call_of(), deny)
    [(event, fields)] = audit.records
    assert event == "mcp.tool.denied"
    assert fields["decision"] == "deny" and fields["policy.decision.code"] == "pending"
    assert fields["reason"] == "pending review" and "outcome" not in fields


@pytest.mark.parametrize("exc, outcome, error_type", [
    (ToolFailure("vendor said no", "http_404"), "tool_error", "http_404"),
    (UpstreamUnavailable("down"), "error", "upstream_unavailable"),
    (CallTimeout("slow"), "error", "timeout"),
    (RuntimeError("bug"), "error", "RuntimeError"),
])
async def test_audit_records_an_exception_and_lets_it_through(exc, outcome, error_type):
    audit = AuditRecorder()
    with pytest.raises(type(exc)):
        await AuditCall(audit)(call_of(), raising(exc))
    [(event, fields)] = audit.records
    assert (event, fields["outcome"], fields["error.type"]) == ("mcp.tool.call", outcome, error_type)


async def test_audit_records_a_cancelled_call():
    audit = AuditRecorder()
    with anyio.CancelScope() as scope:
        async def slow(call: ToolCall) -> CallResult:
            scope.cancel()
            await anyio.sleep(5)
            return OK

        await AuditCall(audit)(call_of(), slow)
    [(event, fields)] = audit.records
    assert (event, fields["outcome"], fields["error.type"]) == ("mcp.tool.call", "cancelled", "cancelled")


# -- resolve -------------------------------------------------------------------------------------------------
async def test_resolve_finds_the_entry_and_its_upstream():
    upstream = FakeUpstream()
    seen: list[ToolCall] = []

    async def capture(call: ToolCall) -> CallResult:
        seen.append(call)
        return OK

    await Resolve(catalog_with("up"), {"up": upstream})(call_of(), capture)
    [call] = seen
    assert call.entry is not None and call.entry.name == "echo" and call.upstream is upstream
    assert call.audit_fields == {"upstream": "up", "upstream.tool": "echo"}


async def test_resolve_denies_an_unknown_tool_without_going_on():
    call = call_of("up_nothing")
    result = await Resolve(catalog_with("up"), {"up": FakeUpstream()})(call, raising(AssertionError("went on")))
    assert call.denial is not None and call.denial.code == "unknown_tool"
    assert "no tool named 'up_nothing'" in text_of(result) or "There is no tool named 'up_nothing'" in text_of(result)


async def test_resolve_waits_for_an_upstream_still_connecting_then_says_why():
    from mcp_proxy.catalog.catalog import Catalog

    upstream = FakeUpstream(connect_timeout=0.2)
    upstream.status.detail = "the command was not found"
    call = call_of()
    started = anyio.current_time()
    result = await Resolve(Catalog(), {"up": upstream})(call, raising(AssertionError("went on")))
    assert anyio.current_time() - started >= 0.15  # it waited for the first attempt, bounded
    assert call.denial is not None and call.denial.code == "upstream_unavailable"
    assert "the command was not found" in text_of(result)


async def test_resolve_takes_a_tool_that_arrives_while_waiting():
    from mcp_proxy.catalog.catalog import Catalog
    from tests._support.pipeline_fakes import ECHO_TOOL

    catalog = Catalog()
    upstream = FakeUpstream(connect_timeout=2.0)

    async def connect() -> None:
        await anyio.sleep(0.1)
        catalog.set_tools("up", [ECHO_TOOL])
        upstream.status.connected_once.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(connect)
        result = await Resolve(catalog, {"up": upstream})(call_of(), answer_ok)
    assert result is OK


# -- authorize -----------------------------------------------------------------------------------------------
async def test_authorize_asks_the_policy_for_this_user_and_denies():
    policy = FakePolicy()
    call = resolved(call_of())
    call.user = "alice@example.com"
    result = await Authorize(policy)(call, raising(AssertionError("went on")))
    assert policy.asked == [("up.echo", "alice@example.com")]
    assert call.denial is not None and call.denial.code == "pending"
    assert text_of(result) == "'up_echo' is pending review."


async def test_authorize_lets_an_approved_tool_on_and_records_the_decision():
    call = resolved(call_of())
    assert await Authorize(FakePolicy({"up.echo"}))(call, answer_ok) is OK
    assert call.audit_fields == {"policy.decision.code": "approved", "decision": "allow", "reason": "approved"}


# -- validate ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arguments, problem", [
    ({}, "'text' is required"),
    ({"text": 5}, "argument 'text'"),
    ({"text": "x", "extra": 1}, "allowed: text"),
])
async def test_validate_refuses_bad_arguments_before_forwarding(arguments, problem):
    call = resolved(call_of(arguments=arguments))
    result = await Validate()(call, raising(AssertionError("went on")))
    assert is_error(result) and problem in text_of(result)
    assert (call.outcome, call.error_type) == ("error", "invalid_arguments")


async def test_validate_lets_good_arguments_on():
    assert await Validate()(resolved(call_of()), answer_ok) is OK


# -- forward -------------------------------------------------------------------------------------------------
async def test_forward_runs_the_upstream_tool_under_its_own_name():
    upstream = FakeUpstream()
    result = await Forward()(resolved(call_of(), upstream), raising(AssertionError("forward calls on")))
    assert upstream.calls == [("echo", {"text": "hi"})]
    assert text_of(result) == "hi"


async def test_forward_turns_a_timeout_into_a_call_timeout_that_warns_about_writes():
    upstream = FakeUpstream(answer=lambda name, args: TimeoutError(), call_timeout=5)
    with pytest.raises(CallTimeout) as caught:
        await Forward()(resolved(call_of(), upstream), answer_ok)
    assert "within 5 s" in str(caught.value) and "may or may not have taken effect" in str(caught.value)


async def test_forward_without_an_upstream_says_to_list_again():
    call = resolved(call_of())
    call.upstream = None
    with pytest.raises(UpstreamUnavailable, match="not configured any more"):
        await Forward()(call, answer_ok)


def test_error_result_is_an_is_error_text_result():
    result = error_result("what happened; what to do")
    assert result.is_error and text_of(result) == "what happened; what to do"


async def test_sign_in_required_is_one_type_for_rest_and_mcp():
    from mcp_proxy.auth.errors import SignInRequired as AuthSignInRequired

    assert AuthSignInRequired is SignInRequired
