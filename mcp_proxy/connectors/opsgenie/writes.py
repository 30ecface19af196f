"""Building the bodies of Opsgenie alert writes and reporting their asynchronous outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_proxy.connectors.base import ConnectorError, ToolOutput
from mcp_proxy.connectors.opsgenie.client import SOURCE, WriteOutcome
from mcp_proxy.connectors.schema import iso, iso_datetime, pick

# How Opsgenie names each kind of recipient (the spec's UserRecipient has `username`, the others `name`).
_RECIPIENT_KEYS = {"user": ("id", "username")}


def with_actor(body: dict[str, Any], user: str | None) -> dict[str, Any]:
    """`body` signed as ours: `source`, and `user` (who acted, in the alert log) when known."""
    body["source"] = SOURCE
    if user:
        body["user"] = user
    return body


def recipients(values: Any, name: str) -> list[dict[str, Any]]:
    out = []
    for i, value in enumerate(values or []):
        if not isinstance(value, dict) or not any(value.get(k) for k in ("id", "name", "username")):
            raise ConnectorError(f"{name}[{i}] needs `type` and one of id, name or username", "bad_argument")
        kind = value.get("type")
        keys = _RECIPIENT_KEYS.get(str(kind), ("id", "name"))
        wrong = [k for k in ("name", "username") if value.get(k) and k not in keys]
        if wrong:
            # Sent anyway, Opsgenie would not find the recipient by a field it does not know for this type.
            raise ConnectorError(f"{name}[{i}]: a {kind} is named by {' or '.join(keys)}, not {wrong[0]}; e.g. "
                                 f"{{\"type\": \"{kind}\", \"{keys[1]}\": \"...\"}}", "bad_argument")
        out.append({k: v for k, v in value.items() if v not in (None, "")})
    return out


def action_body(args: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The body of an action on one alert, from the tool's `fields`."""
    body = pick(args, *fields)
    if "endTime" in fields or "minutes" in fields:
        body = {"endTime": snooze_end(args), **pick(args, "note")}
    # The spec types these as recipients, whose `type` is required.
    if "escalation" in body:
        body["escalation"] = {"type": "escalation", **_one_of(body["escalation"], ("id", "name"), "escalation")}
    if "owner" in body:
        body["owner"] = {"type": "user", **_one_of(body["owner"], ("id", "username"), "owner")}
    return body


def _one_of(value: Any, keys: tuple[str, ...], name: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not any(value.get(k) for k in keys):
        raise ConnectorError(f"{name} needs one of: {', '.join(keys)}", "bad_argument")
    return {k: value[k] for k in keys if value.get(k)}


def snooze_end(args: dict[str, Any]) -> str:
    """When snooze_alert's snooze ends: endTime, or minutes from now (shared with the JSM backend)."""
    if bool(args.get("endTime")) == bool(args.get("minutes")):
        raise ConnectorError("give exactly one of endTime (ISO 8601) or minutes", "bad_argument")
    if args.get("minutes"):
        return iso(datetime.now(UTC) + timedelta(minutes=int(args["minutes"])))
    return iso_datetime(args["endTime"], "endTime")


def _failure_hint(status: str) -> str:
    return (" Check the alert identifier and identifierType with list_alerts or get_alert."
            if "not exist" in status.lower() else " Check the arguments and the alert's current state.")


def write_result(verb: str, outcome: WriteOutcome) -> ToolOutput:
    """The real outcome of an asynchronous write, or how to check it later."""
    return outcome_output("Opsgenie", verb, outcome, _failure_hint)


def outcome_output(vendor: str, verb: str, outcome: WriteOutcome, failure_hint: Callable[[str], str]) -> ToolOutput:
    """The outcome of an asynchronous write at `vendor`, or how to check it later; a failed write raises,
    with `failure_hint(status)` appended (shared with the JSM backend)."""
    rid = outcome.request_id
    if not outcome.processed:
        why = (f"checking its status failed ({outcome.poll_error})" if outcome.poll_error
               else "it had not been processed yet when this call stopped waiting")
        structured: dict[str, Any] = {"requestId": rid, "processed": False, "accepted": True}
        if outcome.poll_error:
            structured["statusError"] = outcome.poll_error
        return ToolOutput(
            text=(f"{vendor} accepted the request to {verb} (requestId {rid}), but {why}. Do not repeat it: check "
                  f"the outcome in a few seconds with get_request_status(requestId=\"{rid}\")."),
            structured=structured,
        )
    data = outcome.data
    if data.get("isSuccess") is False:
        status = str(data.get("status") or "no reason given")
        raise ConnectorError(f"{vendor} could not {verb}: {status} (requestId {rid}).{failure_hint(status)}",
                             "action_failed")
    result: dict[str, Any] = {"requestId": rid, "processed": True, **{k: data[k] for k in
              ("isSuccess", "action", "status", "alertId", "alias", "processedAt") if k in data}}
    who = f"alert {data.get('alertId')}" if data.get("alertId") else "the alert"
    alias = f" (alias {data['alias']})" if data.get("alias") else ""
    return ToolOutput(text=f"Done: {verb} — {who}{alias}. {vendor} says: {data.get('status') or 'processed'} "
                           f"(requestId {rid}).", structured=result)
