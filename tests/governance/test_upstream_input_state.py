"""The proxy's request state for a stateless-era client's input round: unguessable, single-use and bound to
the upstream and tool it was handed out for; anything else runs the call anew and never reaches the upstream
as an answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import mcp_types as types
import pytest

from mcp_proxy.server.call import ToolCall
from mcp_proxy.server.stages.upstream_input import NoInputRelay, UpstreamInput

pytestmark = pytest.mark.anyio

CAPS = {types.CLIENT_CAPABILITIES_META_KEY: {"elicitation": {"form": {}}}}
ASK = types.InputRequiredResult(input_requests={"q": types.ElicitRequest(params=types.ElicitRequestFormParams(
    message="colour?", requested_schema={"type": "object", "properties": {}}))}, request_state="upstream-secret"
).model_dump(by_alias=True, exclude_none=True, mode="json")


class Upstream:
    cfg = SimpleNamespace(call_timeout=5.0)

    def __init__(self) -> None:
        self.resumed: list[tuple[dict[str, Any], str | None]] = []

    async def resume_tool_call(self, name, arguments, *, progress, timeout, input_responses, request_state):
        self.resumed.append((input_responses, request_state))
        return {"content": [{"type": "text", "text": "done"}]}


def _call(name: str, upstream: Upstream, **kw: Any) -> ToolCall:
    call = ToolCall(name, {}, stateless=True, meta=CAPS, **kw)
    call.entry = SimpleNamespace(upstream="f", name=name.removeprefix("f_"))  # type: ignore[assignment]
    call.upstream = upstream  # type: ignore[assignment]
    call.allowed = True
    return call


async def test_the_state_is_ours_bound_to_the_tool_and_used_once():
    stage, upstream = UpstreamInput(NoInputRelay()), Upstream()
    fresh: list[str] = []

    async def forward(call: ToolCall):
        fresh.append(call.name)
        return ASK

    first = await stage(_call("f_ask", upstream), forward)
    state = first["requestState"]
    assert first["resultType"] == "input_required" and state != "upstream-secret" and len(state) >= 32
    assert first["inputRequests"]["q"]["params"]["message"] == "[f, while running f_ask] colour?"
    accept = {"q": types.ElicitResult(action="accept", content={})}
    # Handed out for f_ask, presented with f_other: dropped, and the call runs anew without answers.
    await stage(_call("f_other", upstream, request_state=state, input_responses=accept), forward)
    assert upstream.resumed == [] and fresh == ["f_ask", "f_other"]
    # A guessed state is not ours: a new call too.
    await stage(_call("f_ask", upstream, request_state="upstream-secret", input_responses=accept), forward)
    assert upstream.resumed == [] and fresh[-1] == "f_ask"
    # The right one goes to the upstream with the upstream's own state, once.
    again = await stage(_call("f_ask", upstream), forward)
    done = await stage(_call("f_ask", upstream, request_state=again["requestState"], input_responses=accept), forward)
    assert done["content"][0]["text"] == "done"
    assert upstream.resumed == [({"q": {"action": "accept", "content": {}}}, "upstream-secret")]
    await stage(_call("f_ask", upstream, request_state=again["requestState"], input_responses=accept), forward)
    assert len(upstream.resumed) == 1, "a state is used once"
