"""UpstreamInput: an upstream that answers a call with an `InputRequiredResult` (the 2026-07-28 era's
multi round-trip, instead of an elicitation, sampling or roots request toward the user) is relayed under the
same rules as those requests (server/upstream_requests.py): only inside this call, which the policy allowed
to a tool of that upstream; labelled with the upstream and the tool; each input request recorded as
`mcp.upstream.request`.

How depends on the client's era:
- handshake era: each input request is asked of the client through the session, as the request itself
  would be (`UpstreamRequests.answer`), and the upstream call is repeated with the answers and the
  upstream's `request_state`, for at most MAX_ROUNDS rounds;
- stateless era: the client gets an `InputRequiredResult` of its own, holding the upstream's requests
  (labelled) and a proxy-owned `request_state`: an unguessable token that maps, here, to the upstream's
  state and is bound to the upstream and the tool. The client's retry passes the pipeline again (decided
  anew) and its answers go to the upstream with the upstream's state. A state handed out for another tool,
  or expired, is dropped and the call starts anew; one that is not ours (the sign-in's) is left alone.

A request the client cannot serve is answered as UpstreamRequests answers it: an elicitation is declined,
roots are empty, and sampling ends the call with an error; each is recorded.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import anyio
import mcp_types as types
from pydantic import ValidationError

from mcp_proxy.server.call import CallResult, JsonObject, Next, ToolCall
from mcp_proxy.server.stages.forward import on_upstream

log = logging.getLogger(__name__)

MAX_ROUNDS = 5  # input rounds one call may take, whichever era the client speaks
STATE_LIFETIME = 600.0  # seconds a stateless-era client has to answer
MAX_WAITING = 256  # states kept at most; the oldest go first
STATE_ONLY_PAUSE = 0.1  # an upstream that sent only a state (no requests) is asked again after this pause


class InputRelay(Protocol):
    """What the stage asks of server/upstream_requests.py: UpstreamRequests."""

    async def answer(self, upstream: str, call: ToolCall,
                     request: types.InputRequest) -> types.InputResponse | types.ErrorData: ...

    async def handed_on(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest) -> None: ...

    async def refused_input(self, upstream: str, call: ToolCall, request: types.InputRequest,
                            reason: str) -> None: ...

    async def answered(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest,
                       response: object) -> None: ...


class NoInputRelay:
    """No client to ask (a pipeline built without one): every input request is refused, nothing recorded."""

    async def answer(self, upstream: str, call: ToolCall,
                     request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        return types.ErrorData(code=-32600, message="mcp-access-proxy does not relay requests toward the user here.")

    async def handed_on(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest) -> None:
        return None

    async def refused_input(self, upstream: str, call: ToolCall, request: types.InputRequest,
                            reason: str) -> None:
        return None

    async def answered(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest,
                       response: object) -> None:
        return None


@dataclass(eq=False)
class _Waiting:
    """An upstream's input requests handed to a stateless-era client, until it retries the call."""

    upstream: str
    tool: str  # the exposed name the client called
    upstream_state: str | None
    asked: dict[str, types.InputRequest]  # handed on to the client, by the upstream's keys
    answers: JsonObject = field(default_factory=dict)  # answered by the proxy itself (wire format)
    rounds: int = 0
    deadline: float = 0.0


def _input_required(result: CallResult) -> types.InputRequiredResult | Exception | None:
    """The upstream's InputRequiredResult, None for any other result, or why it is not a valid one."""
    if not isinstance(result, dict) or result.get("resultType") != "input_required":
        return None
    try:
        return types.InputRequiredResult.model_validate(result, by_name=False)
    except ValidationError as exc:
        return exc


def _wire(response: object) -> object:
    dump = getattr(response, "model_dump", None)
    return dump(by_alias=True, exclude_none=True, mode="json") if callable(dump) else response


def _client_capability(call: ToolCall, kind: str) -> Mapping[str, object] | None:
    """A stateless-era client's capability `kind` as declared in the request's `_meta`, or None."""
    caps = (call.meta or {}).get(types.CLIENT_CAPABILITIES_META_KEY)
    caps = _wire(caps)
    value = caps.get(kind) if isinstance(caps, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _label(request: types.InputRequest, upstream: str, call: ToolCall) -> types.InputRequest:
    if isinstance(request, types.ElicitRequest):
        params = request.params
        labelled = params.model_copy(update={"message": f"[{upstream}, while running {call.name}] {params.message}"})
        return request.model_copy(update={"params": labelled})
    return request


class UpstreamInput:
    def __init__(self, relay: InputRelay) -> None:
        self._relay = relay
        self._waiting: dict[str, _Waiting] = {}  # by the proxy's request state

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        waiting = self._take(call)
        if waiting is None:
            result = await call_next(call)
            rounds = 0
        else:
            result = await self._again(call, await self._answers(call, waiting), waiting.upstream_state)
            rounds = waiting.rounds
        while True:
            asked = _input_required(result)
            if asked is None:
                return result
            entry = call.entry
            assert entry is not None, "Resolve runs before UpstreamInput"
            if isinstance(asked, Exception):
                return call.fail("invalid_input_request", f"The upstream '{entry.upstream}' asked for input in a way "
                                 "that is not valid MCP; the proxy cannot pass it on. Report this to the server's "
                                 "maintainers.")
            rounds += 1
            if rounds > MAX_ROUNDS:
                return call.fail("input_rounds_exceeded", f"The upstream '{entry.upstream}' kept asking for input "
                                 f"({MAX_ROUNDS} rounds) without finishing the call; it was stopped there.")
            requests = asked.input_requests or {}
            if not requests:
                await anyio.sleep(STATE_ONLY_PAUSE)
                result = await self._again(call, {}, asked.request_state)
                continue
            if call.stateless:
                handed = await self._hand_on(call, entry.upstream, asked, requests, rounds)
                if not isinstance(handed, dict) or handed.get("resultType") == "input_required":
                    return handed
                result = await self._again(call, handed, asked.request_state)  # the proxy answered them all
                continue
            responses: JsonObject = {}
            for key, request in requests.items():
                answer = await self._relay.answer(entry.upstream, call, request)
                if isinstance(answer, types.ErrorData):
                    return call.fail("input_refused", f"The upstream '{entry.upstream}' asked for input that could "
                                     f"not be given: {answer.message}")
                responses[key] = _wire(answer)
            result = await self._again(call, responses, asked.request_state)

    # -- the stateless era -----------------------------------------------------------------------------
    async def _hand_on(self, call: ToolCall, upstream: str, asked: types.InputRequiredResult,
                       requests: dict[str, types.InputRequest], rounds: int) -> CallResult | JsonObject:
        """The client's own InputRequiredResult with the requests it can serve, or, when the proxy answered
        every request itself, those answers (a JsonObject without resultType)."""
        handed: dict[str, types.InputRequest] = {}
        answers: JsonObject = {}
        for key, request in requests.items():
            if isinstance(request, types.ElicitRequest):
                elicitation = _client_capability(call, "elicitation")
                url = isinstance(request.params, types.ElicitRequestURLParams)
                if elicitation is None or (url and elicitation.get("url") is None):
                    await self._relay.refused_input(upstream, call, request, "the client does not support "
                                                    + ("URL " if url else "") + "elicitation")
                    answers[key] = _wire(types.ElicitResult(action="decline"))
                    continue
            elif isinstance(request, types.CreateMessageRequest):
                if _client_capability(call, "sampling") is None:
                    await self._relay.refused_input(upstream, call, request, "the client does not support sampling")
                    return call.fail("input_refused", f"The upstream '{upstream}' asked for input that could not be "
                                     "given: the user's client does not support sampling.")
            elif _client_capability(call, "roots") is None:
                await self._relay.refused_input(upstream, call, request, "the client does not offer roots")
                answers[key] = _wire(types.ListRootsResult(roots=[]))
                continue
            await self._relay.handed_on(upstream, call, key, request)
            handed[key] = _label(request, upstream, call)
        if not handed:
            return answers
        self._forget_expired()
        state = secrets.token_urlsafe(24)
        self._waiting[state] = _Waiting(upstream, call.name, asked.request_state, dict(requests), answers, rounds,
                                        anyio.current_time() + STATE_LIFETIME)
        return types.InputRequiredResult(input_requests=handed, request_state=state).model_dump(
            by_alias=True, exclude_none=True, mode="json")

    def _take(self, call: ToolCall) -> _Waiting | None:
        """The waiting input round this retry answers, if its state is ours and fits this call."""
        if not call.request_state:
            return None
        waiting = self._waiting.pop(call.request_state, None)
        if waiting is None:
            return None  # not ours (the sign-in's), or forgotten: the call runs as a new one
        entry = call.entry
        if entry is None or (waiting.upstream, waiting.tool) != (entry.upstream, call.name) or \
                anyio.current_time() > waiting.deadline:
            log.info("a request state for another call (or an expired one) was dropped; the call starts anew")
            return None
        return waiting

    async def _answers(self, call: ToolCall, waiting: _Waiting) -> JsonObject:
        """The client's answers to what it was handed (recorded), with the proxy's own; nothing else."""
        given = call.input_responses or {}
        answers = dict(waiting.answers)
        for key, request in waiting.asked.items():
            if key in answers:
                continue
            response = given.get(key)
            await self._relay.answered(waiting.upstream, call, key, request, response)
            if response is not None:
                answers[key] = _wire(response)
        return answers

    def _forget_expired(self) -> None:
        now = anyio.current_time()
        for state, waiting in list(self._waiting.items()):
            if now > waiting.deadline:
                del self._waiting[state]
        while len(self._waiting) >= MAX_WAITING:
            del self._waiting[next(iter(self._waiting))]

    # -- the upstream, once more -------------------------------------------------------------------------
    async def _again(self, call: ToolCall, responses: JsonObject, state: str | None) -> CallResult:
        return await on_upstream(call, lambda upstream, name, timeout: upstream.resume_tool_call(
            name, call.arguments, progress=call.progress, timeout=timeout, input_responses=responses,
            request_state=state))
