"""The proxy's own tools, always listed, even with no valid policy.

`proxy_unavailable_tools` tells the model which upstream tools exist but are
not available to this user, and why; `proxy_request_access` records a request
for access with the user's reason as an `access.requested` audit event, which
the organisation sees at its collector.

With `tool_search = true` the client sees, instead of the approved catalog, three more:
`proxy_search_tools` (a query over the approved tools), `proxy_describe_tool` (one tool's
full definition) and `proxy_call_tool` (a call, which the server runs through the same call
pipeline as a direct call). Their definitions and the ranking live here; the server answers them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_proxy.policy.definition import ToolFacts

if TYPE_CHECKING:
    from mcp_proxy.policy.engine import PolicyEngine

ACCESS_TOOL_NAMES = ("proxy_unavailable_tools", "proxy_request_access")
SEARCH_TOOL_NAMES = ("proxy_search_tools", "proxy_describe_tool", "proxy_call_tool")
SEARCH_LIMIT = 10  # tools one search answers with by default
MAX_SEARCH_LIMIT = 50
MAX_LISTED = 200  # tools named in one answer; the rest are counted
MAX_REASON = 1000
REPEAT_WINDOW = 600.0  # seconds in which the same user's request for the same tool is recorded once

_WHY = {
    "pending": "pending review: not approved by the policy yet",
    "disabled": "disabled by the policy",
    "not_in_profile": "approved, but not in any of the user's policy profiles",
    "definition_changed": "changed upstream since it was approved: pending review again",
    "no_policy": "no valid policy is active",
    "expired": "the policy has expired",
}


def search_tool_definitions() -> list[dict[str, Any]]:
    """The search mode's tools (`tool_search = true`): find, describe and call the approved tools."""
    return [
        {
            "name": "proxy_search_tools",
            "description": (
                "Search the tools available to this user (incident, on-call, status page, monitoring tools of the "
                "connected services). Start here: returns matching tools' names, titles and one-line "
                "descriptions; then proxy_describe_tool for the arguments and proxy_call_tool to run one."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "maxLength": 500,
                              "description": "Words to match, e.g. 'acknowledge incident'; empty lists all."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT, "default": SEARCH_LIMIT},
                },
                "additionalProperties": False,
            },
            "annotations": {"title": "Search tools", "readOnlyHint": True, "destructiveHint": False,
                            "idempotentHint": True, "openWorldHint": False},
        },
        {
            "name": "proxy_describe_tool",
            "description": "One available tool's full definition (description and input schema), before calling it.",
            "inputSchema": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 200,
                                        "description": "The tool's name, as proxy_search_tools shows it."}},
                "required": ["name"],
                "additionalProperties": False,
            },
            "annotations": {"title": "Describe a tool", "readOnlyHint": True, "destructiveHint": False,
                            "idempotentHint": True, "openWorldHint": False},
        },
        {
            "name": "proxy_call_tool",
            "description": (
                "Call an available tool by name with its arguments (see proxy_describe_tool). The same policy, "
                "checks and audit apply as to a direct call; the result is the tool's own."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 200, "description": "The tool's name."},
                    "arguments": {"type": "object", "description": "The tool's arguments."},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            # It may call any tool: as cautious as the most dangerous one.
            "annotations": {"title": "Call a tool", "readOnlyHint": False, "destructiveHint": True,
                            "idempotentHint": False, "openWorldHint": True},
        },
    ]


def access_tool_definitions(search: bool = False) -> list[dict[str, Any]]:
    """The proxy's own tools: with `search`, the search mode's three first."""
    return [*(search_tool_definitions() if search else []), *_access_definitions()]


def _access_definitions() -> list[dict[str, Any]]:
    return [
        {
            "name": "proxy_unavailable_tools",
            "description": (
                "List the upstream tools that exist but are not available to this user, and why (pending review, "
                "disabled, not in their profiles, definition changed, no policy). Call it when a tool the user "
                "needs is missing; then proxy_request_access."),
            "inputSchema": {
                "type": "object",
                "properties": {"filter": {"type": "string", "description": "Name contains."}},
                "additionalProperties": False,
            },
            "annotations": {"title": "Unavailable tools", "readOnlyHint": True, "destructiveHint": False,
                            "idempotentHint": True, "openWorldHint": False},
        },
        {
            "name": "proxy_request_access",
            "description": (
                "Ask the organisation's administrators for access to an unavailable tool (see "
                "proxy_unavailable_tools), in the audit log they review. Ask the user for the reason; do not "
                "invent one."),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "tool": {"type": "string", "description": "Its name in proxy_unavailable_tools, or "
                                                              "<upstream>.<tool>."},
                    "reason": {"type": "string", "description": "Why the user needs it, in their words."},
                },
                "required": ["tool", "reason"],
                "additionalProperties": False,
            },
            "annotations": {"title": "Request access to a tool", "readOnlyHint": False, "destructiveHint": False,
                            "idempotentHint": True, "openWorldHint": False},
        },
    ]


def _problem_text(engine: PolicyEngine) -> str:
    return (f"No upstream tool is available right now: {engine.problem}. This is the organisation's policy "
            "failing closed, not an error of the tools. The user can run `mcp-access-proxy policy sync` and "
            "`mcp-access-proxy policy status` in a terminal to see why, or ask the administrator to publish a "
            "valid, current policy. The proxy picks up a new policy automatically.")


def _unavailable(engine: PolicyEngine, facts: list[ToolFacts], user: str | None,
                 arguments: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    needle = arguments.get("filter")
    if needle is not None and not isinstance(needle, str):
        return "`filter` must be a string (part of a tool name), or left out.", {}, True
    if not engine.governed:
        return ("The proxy is ungoverned (no approval policy is configured): every upstream tool is available, "
                "so nothing is hidden.", {"governed": False, "unavailable": []}, False)
    rows = []
    for f in sorted(facts, key=lambda f: f.exposed_name):
        if needle and needle.lower() not in f.exposed_name.lower() and needle.lower() not in f.key.lower():
            continue
        decision = engine.decide(f, user)
        if not decision.allowed:
            rows.append({"tool": f.exposed_name, "key": f.key, "code": decision.code, "state": decision.state,
                         "class": f.classification})
    structured: dict[str, Any] = {"governed": True, "policy_revision": engine.revision, "problem": engine.problem,
                                  "unavailable": rows[:MAX_LISTED], "not_listed": max(0, len(rows) - MAX_LISTED)}
    lines = [_problem_text(engine)] if engine.problem else []
    if not rows:
        lines.append("Every known upstream tool" + (f" matching '{needle}'" if needle else "")
                     + " is available to this user.")
        return "\n".join(lines), structured, False
    lines.append(f"{len(rows)} upstream tool(s) exist but are not available to {user or 'this user'} "
                 f"(policy revision {engine.revision or 'none'}):")
    lines += [f"- {r['tool']} ({r['key']}): {_WHY.get(r['code'], r['code'])}" for r in rows[:MAX_LISTED]]
    if len(rows) > MAX_LISTED:
        lines.append(f"... and {len(rows) - MAX_LISTED} more (use `filter` to narrow the list)")
    if not engine.problem:
        lines.append("To ask for one, call proxy_request_access with the tool's name and the user's reason.")
    return "\n".join(lines), structured, False


def _find(facts: list[ToolFacts], name: str) -> ToolFacts | None:
    for f in facts:
        if name in (f.exposed_name, f.key):
            return f
    lowered = name.lower()
    return next((f for f in facts if lowered in (f.exposed_name.lower(), f.key.lower())), None)


def _request(engine: PolicyEngine, facts: list[ToolFacts], user: str | None, arguments: dict[str, Any],
             emit: Callable[[str, dict[str, Any]], object]) -> tuple[str, dict[str, Any], bool]:
    tool, reason = arguments.get("tool"), arguments.get("reason")
    if not isinstance(tool, str) or not tool.strip():
        return ("`tool` is required: the name of the tool (from proxy_unavailable_tools) or its key "
                "<upstream>.<tool>.", {}, True)
    if not isinstance(reason, str) or not reason.strip():
        return ("`reason` is required: ask the user why they need this tool and pass their answer; administrators "
                "decide on the reason.", {}, True)
    target = _find(facts, tool.strip())
    if target is None:
        return (f"No upstream tool named '{tool}' is known. Call proxy_unavailable_tools to see the exact names, "
                "then ask again.", {}, True)
    decision = engine.decide(target, user)
    if decision.allowed:
        return (f"'{target.exposed_name}' is already available to this user; no request is needed. If the client "
                "does not show it, list the tools again (some clients need a restart).",
                {"tool": target.exposed_name, "key": target.key, "available": True}, False)
    requests: dict[tuple[str, str], tuple[float, str]] = getattr(engine, "access_requests", {})
    marker = ((user or "").lower(), target.key)
    now = time.monotonic()
    earlier = requests.get(marker)
    if earlier is not None and now - earlier[0] < REPEAT_WINDOW:
        request_id = earlier[1]
        repeated = True
    else:
        request_id = uuid.uuid4().hex[:12]
        requests[marker] = (now, request_id)
        repeated = False
        emit("access.requested", {
            "request.id": request_id, "user.email": user, "tool.key": target.key,
            "gen_ai.tool.name": target.exposed_name, "upstream": target.upstream, "tool.class": target.classification,
            "tool.sha256": target.definition_hash, "reason": reason.strip()[:MAX_REASON],
            "policy.decision.code": decision.code, "policy.revision": engine.revision})
    next_steps = (
        "An administrator reviews it at the organisation's audit collector. If approved, they set "
        f"tools[\"{target.key}\"] to \"approved\" with sha256 {target.definition_hash} (and add it to one of the "
        "user's profiles, if the policy uses profiles) and publish a new policy revision; the proxy picks it up "
        "automatically and the tool appears in the list (some clients need a restart to see new tools). "
        "There is nothing more to do now; tell the user the request was sent.")
    if decision.code in ("no_policy", "expired"):
        next_steps += " Note: " + _problem_text(engine)
    head = (f"Access to '{target.exposed_name}' was already requested (request {request_id}); it is not recorded "
            "twice. " if repeated else f"Request {request_id} for '{target.exposed_name}' was recorded. ")
    structured = {"request_id": request_id, "tool": target.exposed_name, "key": target.key, "recorded": not repeated,
                  "current_decision": decision.code}
    return head + next_steps, structured, False


async def call_access_tool(name: str, arguments: dict[str, Any], *, engine: PolicyEngine, facts: list[ToolFacts],
                           user: str | None,
                           emit: Callable[[str, dict[str, Any]], object]) -> tuple[str, dict[str, Any], bool]:
    """(text, structured content, is_error) for one of ACCESS_TOOL_NAMES."""
    arguments = arguments if isinstance(arguments, dict) else {}
    if name == "proxy_unavailable_tools":
        return _unavailable(engine, list(facts), user, arguments)
    if name == "proxy_request_access":
        return _request(engine, list(facts), user, arguments, emit)
    return f"'{name}' is not a tool of the proxy; use one of {', '.join(ACCESS_TOOL_NAMES)}.", {}, True


_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def rank_tools(query: str, tools: list[tuple[str, str, str]], limit: int = SEARCH_LIMIT) -> list[int]:
    """Indexes of `tools` ((name, title, description) each) that match `query`, best first.

    Simple on purpose: each query word scores 3 in the name, 2 in the title, 1 in the description (a word
    matches a word it begins, so "incident" finds "incidents"); ties go by name. An empty query lists all."""
    words = _words(query)
    scored: list[tuple[int, str, int]] = []
    for index, (name, title, description) in enumerate(tools):
        fields = ((3, set(_words(name))), (2, set(_words(title))), (1, set(_words(description))))
        score = 0
        for word in words:
            score += max((weight for weight, found in fields if any(w.startswith(word) for w in found)), default=0)
        if score or not words:
            scored.append((-score, name, index))
    return [index for _, _, index in sorted(scored)[:limit]]


def first_line(description: str, limit: int = 160) -> str:
    """A description's first sentence (or line), at most `limit` characters."""
    head = description.strip().split("\n", 1)[0]
    end = head.find(". ")
    head = head[: end + 1] if end > 0 else head
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"
