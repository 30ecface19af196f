"""Requests an upstream sends toward the user (elicitation, sampling, roots), governed like calls.

An upstream may only talk to the user while the user's AI is using it: a request is relayed only while a
call to an approved tool of that upstream is in flight, labelled with the upstream and the tool it comes
from, and recorded. Anything else (an upstream whose tools are all disabled asking for a password, a
request between calls, a client that cannot answer) is refused toward the upstream and recorded. The
record names the kind, upstream, tool and the user's action; answer contents are scrubbed like every
field of a record.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import mcp_types as types

from mcp_proxy.server.call import JsonObject, ToolCall
from mcp_proxy.server.client import ClientLink
from mcp_proxy.server.inflight import CallsInFlight
from mcp_proxy.server.stages.audit import AuditAppend

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

log = logging.getLogger(__name__)

EVENT = "mcp.upstream.request"
REFUSED = -32600  # invalid request, from the upstream's point of view: it may not ask this now


def _refusal(upstream: str, what: str) -> types.ErrorData:
    return types.ErrorData(code=REFUSED, message=(
        f"mcp-access-proxy refused this {what}: an upstream may ask the user only while the user's AI is "
        f"running one of its approved tools ('{upstream}' has no such call in flight)."))


class UpstreamRequests:
    def __init__(self, link: ClientLink, inflight: CallsInFlight, append: AuditAppend) -> None:
        self._link = link
        self._inflight = inflight
        self._append = append

    def _governing_call(self, upstream: str, call: ToolCall | None = None) -> ToolCall | None:
        """The approved call in flight that the request belongs to: the one given (an input request of that
        call's own result), else any approved call of `upstream` (a handshake-era request, tied to no call)."""
        if call is not None:
            return call if call.allowed and call.entry is not None and call.entry.upstream == upstream else None
        return self._inflight.approved_call_to(upstream)

    async def _record(self, kind: str, upstream: str, call: ToolCall | None, decision: str, reason: str,
                      **more: object) -> None:
        fields: JsonObject = {"mcp.request.kind": kind, "upstream": upstream, "decision": decision, "reason": reason}
        if call is not None and call.entry is not None:
            fields.update({"upstream.tool": call.entry.name, "gen_ai.tool.name": call.name,
                           "gen_ai.tool.call.id": call.call_id})
        fields.update(more)
        await self._append(EVENT, fields)

    def _client(self, capability: str) -> ServerSession | None:
        session = self._link.session
        caps = session.client_capabilities if session is not None else None
        if session is None or caps is None or getattr(caps, capability) is None:
            return None
        return session

    async def elicit(self, upstream: str, params: types.ElicitRequestParams, *,
                     call: ToolCall | None = None) -> types.ElicitResult | types.ErrorData:
        call = self._governing_call(upstream, call)
        if call is None:
            await self._record("elicitation", upstream, None, "deny", "no approved call of this upstream in flight")
            return _refusal(upstream, "elicitation")
        session = self._client("elicitation")
        if session is None:
            await self._record("elicitation", upstream, call, "deny", "the client does not support elicitation")
            return types.ElicitResult(action="decline")
        label = f"[{upstream}, while running {call.name}] "
        labelled = params.model_copy(update={"message": label + params.message})
        try:
            answer = await session.send_request(types.ElicitRequest(params=labelled), types.ElicitResult)
        except Exception as exc:  # noqa: BLE001 - the client failed to answer: the upstream hears a decline
            log.debug("the client did not answer an elicitation (%s)", type(exc).__name__)
            answer = types.ElicitResult(action="cancel")
        await self._record("elicitation", upstream, call, "allow", "relayed during an approved call",
                           **{"elicitation.mode": params.mode or "form", "elicitation.action": answer.action,
                              "elicitation.content": answer.content})
        return answer

    async def sample(self, upstream: str, params: types.CreateMessageRequestParams, *,
                     call: ToolCall | None = None) -> types.CreateMessageResult | types.ErrorData:
        call = self._governing_call(upstream, call)
        session = self._client("sampling") if call is not None else None
        if call is None or session is None:
            reason = ("no approved call of this upstream in flight" if call is None
                      else "the client does not support sampling")
            await self._record("sampling", upstream, call, "deny", reason)
            return _refusal(upstream, "sampling request") if call is None else types.ErrorData(
                code=REFUSED, message="The user's client does not support sampling.")
        try:
            result = await session.send_request(types.CreateMessageRequest(params=params), types.CreateMessageResult)
        except Exception as exc:  # noqa: BLE001 - the client refused or failed: the upstream hears an error
            await self._record("sampling", upstream, call, "allow", "relayed; the client refused",
                               **{"error.type": type(exc).__name__})
            return types.ErrorData(code=REFUSED, message="The user's client refused the sampling request.")
        await self._record("sampling", upstream, call, "allow", "relayed during an approved call",
                           **{"sampling.model": result.model})
        return result

    async def list_roots(self, upstream: str, *, call: ToolCall | None = None
                         ) -> types.ListRootsResult | types.ErrorData:
        call = self._governing_call(upstream, call)
        session = self._client("roots") if call is not None else None
        if call is None or session is None:
            reason = ("no approved call of this upstream in flight" if call is None
                      else "the client does not offer roots")
            await self._record("roots", upstream, call, "deny", reason)
            return _refusal(upstream, "roots request") if call is None else types.ListRootsResult(roots=[])
        try:
            result = await session.list_roots()
        except Exception as exc:  # noqa: BLE001 - the client refused or failed: no roots
            await self._record("roots", upstream, call, "allow", "relayed; the client refused",
                               **{"error.type": type(exc).__name__})
            return types.ListRootsResult(roots=[])
        await self._record("roots", upstream, call, "allow", "relayed during an approved call",
                           **{"roots.count": len(result.roots)})
        return result

    # -- the 2026-07-28 era: input requests inside an upstream's InputRequiredResult ------------------------------
    async def answer(self, upstream: str, call: ToolCall,
                     request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """One input request of `call`'s InputRequiredResult, asked of a handshake-era client through the
        session exactly as the request itself would be (labelled, recorded; refused or declined likewise)."""
        if isinstance(request, types.ElicitRequest):
            return await self.elicit(upstream, request.params, call=call)
        if isinstance(request, types.CreateMessageRequest):
            return await self.sample(upstream, request.params, call=call)
        return await self.list_roots(upstream, call=call)

    async def handed_on(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest) -> None:
        """An input request passed on to a stateless-era client inside the proxy's own InputRequiredResult."""
        await self._record(_kind(request), upstream, call, "allow", "passed on to the client during an approved call",
                           **{"mcp.input.key": key})

    async def refused_input(self, upstream: str, call: ToolCall, request: types.InputRequest, reason: str) -> None:
        """An input request the stateless-era client cannot serve: the proxy answers it (decline, no roots) or
        ends the call (sampling), as for a handshake-era client."""
        await self._record(_kind(request), upstream, call, "deny", reason)

    async def answered(self, upstream: str, call: ToolCall, key: str, request: types.InputRequest,
                       response: object) -> None:
        """The stateless-era client's answer to an input request, as it goes back to the upstream."""
        more: JsonObject = {"mcp.input.key": key}
        if isinstance(response, types.ElicitResult):
            more.update({"elicitation.action": response.action, "elicitation.content": response.content})
        elif isinstance(response, (types.CreateMessageResult, types.CreateMessageResultWithTools)):
            more["sampling.model"] = response.model
        elif isinstance(response, types.ListRootsResult):
            more["roots.count"] = len(response.roots)
        else:
            more["error.type"] = "no_answer"
        await self._record(_kind(request), upstream, call, "allow", "the client's answer, relayed to the upstream",
                           **more)


def _kind(request: types.InputRequest) -> str:
    if isinstance(request, types.ElicitRequest):
        return "elicitation"
    if isinstance(request, types.CreateMessageRequest):
        return "sampling"
    return "roots"
