"""An upstream's requests toward the user, governed like calls (server/upstream_requests.py), in-process."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import mcp_types as types
import pytest

from mcp_proxy.server.inflight import CallsInFlight
from mcp_proxy.server.upstream_requests import UpstreamRequests
from tests._support.pipeline_fakes import AuditRecorder, call_of, catalog_with

pytestmark = pytest.mark.anyio

ASK = types.ElicitRequestFormParams(message="Re-enter your password", requested_schema={
    "type": "object", "properties": {"password": {"type": "string"}}})


class FakeClient:
    """The client's session as the relay sees it: what it declared, and what the user answers."""

    def __init__(self, *, elicitation: bool = True, answer: dict[str, Any] | None = None) -> None:
        self.client_capabilities = types.ClientCapabilities(
            elicitation=types.ElicitationCapability() if elicitation else None)
        self.asked: list[Any] = []
        self._answer = answer or {"password": "hunter2"}

    async def send_request(self, request: Any, result_type: Any) -> Any:
        self.asked.append(request.params)
        return types.ElicitResult(action="accept", content=self._answer)


def relay(client: FakeClient | None, inflight: CallsInFlight, audit: AuditRecorder) -> UpstreamRequests:
    return UpstreamRequests(SimpleNamespace(session=client), inflight, audit)  # type: ignore[arg-type]


def approved_call_in_flight(inflight: CallsInFlight, upstream: str = "up") -> Any:
    call = call_of()
    call.entry = catalog_with(upstream).lookup(f"{upstream}_echo")
    call.allowed = True
    inflight.enter(call, anyio.CancelScope())
    return call


async def test_an_upstream_with_no_approved_call_in_flight_cannot_ask_the_user():
    client, audit, inflight = FakeClient(), AuditRecorder(), CallsInFlight()
    answer = await relay(client, inflight, audit).elicit("up", ASK)
    assert isinstance(answer, types.ErrorData) and "refused" in answer.message
    assert client.asked == []  # the user never saw it
    [(event, fields)] = audit.records
    assert event == "mcp.upstream.request" and fields["decision"] == "deny" and fields["upstream"] == "up"
    assert fields["mcp.request.kind"] == "elicitation"


async def test_a_denied_call_of_that_upstream_does_not_open_the_way():
    client, audit, inflight = FakeClient(), AuditRecorder(), CallsInFlight()
    call = approved_call_in_flight(inflight)
    call.allowed = False
    assert isinstance(await relay(client, inflight, audit).elicit("up", ASK), types.ErrorData)
    assert client.asked == []


async def test_another_upstreams_call_does_not_open_the_way():
    client, audit, inflight = FakeClient(), AuditRecorder(), CallsInFlight()
    approved_call_in_flight(inflight, "other")
    assert isinstance(await relay(client, inflight, audit).elicit("up", ASK), types.ErrorData)
    assert client.asked == []


async def test_during_an_approved_call_the_request_is_relayed_labelled_and_recorded():
    client, audit, inflight = FakeClient(), AuditRecorder(), CallsInFlight()
    call = approved_call_in_flight(inflight)
    answer = await relay(client, inflight, audit).elicit("up", ASK)
    assert isinstance(answer, types.ElicitResult) and answer.action == "accept"
    [asked] = client.asked
    assert asked.message.startswith("[up, while running up_echo] ") and asked.message.endswith(ASK.message)
    [(event, fields)] = audit.records
    assert (event, fields["decision"], fields["elicitation.action"]) == ("mcp.upstream.request", "allow", "accept")
    assert fields["gen_ai.tool.call.id"] == call.call_id and fields["upstream.tool"] == "echo"


async def test_a_client_without_elicitation_gets_nothing_and_the_upstream_hears_decline():
    client, audit, inflight = FakeClient(elicitation=False), AuditRecorder(), CallsInFlight()
    approved_call_in_flight(inflight)
    answer = await relay(client, inflight, audit).elicit("up", ASK)
    assert isinstance(answer, types.ElicitResult) and answer.action == "decline" and client.asked == []
    assert audit.records[0][1]["decision"] == "deny"


@pytest.mark.parametrize("kind", ["sampling", "roots"])
async def test_sampling_and_roots_are_refused_without_an_approved_call_and_recorded(kind):
    audit, inflight = AuditRecorder(), CallsInFlight()
    requests = relay(FakeClient(), inflight, audit)
    if kind == "sampling":
        params = types.CreateMessageRequestParams(messages=[], max_tokens=10)
        answer: Any = await requests.sample("up", params)
    else:
        answer = await requests.list_roots("up")
    assert isinstance(answer, types.ErrorData)
    assert audit.records[0][1]["mcp.request.kind"] == kind and audit.records[0][1]["decision"] == "deny"
