"""The audit stages: a record for every call, whatever its outcome, and one before it reaches a vendor.

An allowed call is recorded twice, sharing `gen_ai.tool.call.id`: `mcp.tool.started` before anything
is sent upstream (RecordStarted), `mcp.tool.call` when it ends (AuditCall). A call stopped by a kill
between the two is closed as `unknown` at the next start (audit/unfinished.py). A refused call is one
`mcp.tool.denied`.
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Protocol

import anyio

from mcp_proxy.errors import AuditError
from mcp_proxy.server.call import CallResult, JsonObject, Next, ToolCall
from mcp_proxy.server.failures import failure_of


class AuditSink(Protocol):
    """The audit log as the call stages use it (audit.AuditLog)."""

    async def append(self, event_name: str, fields: JsonObject, /) -> object: ...

    async def append_required(self, event_name: str, fields: JsonObject, /) -> object:
        """Raises AuditError when the record could not be put on disk."""


class AuditAppend(Protocol):
    async def __call__(self, event_name: str, fields: JsonObject, /) -> object: ...


class AuditCall:
    """Writes `mcp.tool.denied` for a call a stage refused, else `mcp.tool.call` with its outcome. It sits
    outside every stage that can refuse, fail or be cancelled, so all of them end on record; the write is
    shielded so a cancelled call is recorded too."""

    def __init__(self, audit: AuditSink) -> None:
        self._audit = audit

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        call.audit_fields.update({
            "mcp.method.name": "tools/call", "gen_ai.tool.name": call.name, "gen_ai.tool.call.id": call.call_id,
            "jsonrpc.request.id": None if call.request_id is None else str(call.request_id),
            "arguments": call.arguments,
        })
        result: CallResult | None = None
        try:
            result = await call_next(call)
            return result
        except anyio.get_cancelled_exc_class():
            call.outcome, call.error_type = "cancelled", "cancelled"
            raise
        except Exception as exc:
            failure = failure_of(exc)
            call.outcome, call.error_type = failure.outcome, failure.error_type
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._record(call, result)

    async def _record(self, call: ToolCall, result: CallResult | None) -> None:
        fields = call.audit_fields
        if call.denial is not None:
            fields.update({"decision": "deny", "reason": call.denial.reason,
                           "policy.decision.code": call.denial.code})
            event = "mcp.tool.denied"
        else:
            outcome, error_type = call.judge(result) if result is not None else (call.outcome, call.error_type)
            fields["outcome"] = outcome or "error"
            fields["error.type"] = error_type
            event = "mcp.tool.call"
        fields["duration_ms"] = round((time.perf_counter() - call.started) * 1000, 3)
        if event == "mcp.tool.denied":
            # No record, no call: the call was refused anyway; the log counts what it could not write.
            with suppress(AuditError):
                await self._audit.append_required(event, fields)
        else:
            await self._audit.append(event, fields)


class RecordStarted:
    """Writes `mcp.tool.started` once, right before the call is forwarded: a call that reaches a vendor is
    on record even if the process is killed before it ends."""

    def __init__(self, audit: AuditSink) -> None:
        self._audit = audit

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        if not call.started_recorded:  # raises when it cannot be put on disk: no record, no call
            await self._audit.append_required("mcp.tool.started", dict(call.audit_fields))
            call.started_recorded = True
        return await call_next(call)
