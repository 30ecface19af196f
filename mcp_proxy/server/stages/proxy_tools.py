"""The proxy's own tools (proxy_unavailable_tools, proxy_request_access, and with `tool_search` the search
mode's proxy_search_tools, proxy_describe_tool, proxy_call_tool), answered without an upstream.

`proxy_call_tool` is the one that reaches an upstream: it re-enters the whole call pipeline with a new
`ToolCall` for the tool it names, so the policy, constraints, validation, sign-in and audit apply exactly as to a
direct call, and that call's records name the real tool. Its own record (upstream "proxy") carries only the
target's name, never its arguments: those are on the real tool's record, redacted by that tool's rules.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import mcp_types as types

from mcp_proxy.policy.access_tools import ACCESS_TOOL_NAMES, SEARCH_TOOL_NAMES
from mcp_proxy.server.call import CallResult, JsonObject, Next, ToolCall
from mcp_proxy.tracing import outbound_meta
from mcp_proxy.upstreams.base import error_result

if TYPE_CHECKING:
    from mcp_proxy.policy.definition import ToolFacts
    from mcp_proxy.policy.engine import PolicyEngine

# The approved tools as the model would see them for a user (names exposed, schemas narrowed).
ShownTools = Callable[[str | None], Awaitable[list[types.Tool]]]
RunCall = Callable[[ToolCall], Awaitable[CallResult]]

_ACCESS = frozenset(ACCESS_TOOL_NAMES)
_SEARCH = frozenset(SEARCH_TOOL_NAMES)
_BOTH = _ACCESS | _SEARCH


class AccessTools:
    """The proxy's access tools, with what they read: the policy, the catalog's facts, the audit log; in search
    mode also the approved tools as shown and the pipeline to run a call through."""

    def __init__(self, engine: PolicyEngine, facts: Callable[[], list[ToolFacts]],
                 emit: Callable[[str, JsonObject], object], *, search: bool = False,
                 shown: ShownTools | None = None, run: RunCall | None = None) -> None:
        self.search = False
        self._definitions: dict[bool, list[types.Tool]] = {}  # by mode
        self._engine = engine
        self._facts = facts
        self._emit = emit
        self._shown = shown
        self._run = run
        if search:
            self.use_search()

    def use_search(self) -> None:
        """Switch to the search mode: the search, describe and call tools join the access tools."""
        if self._shown is None or self._run is None:
            raise ValueError("the search mode needs the shown tools and the pipeline")
        self.search = True

    @property
    def search_names(self) -> frozenset[str]:
        return _SEARCH if self.search else frozenset()

    @property
    def names(self) -> frozenset[str]:
        return _BOTH if self.search else _ACCESS

    def definitions(self) -> list[types.Tool]:
        """The tools' definitions in the current mode (built once per mode)."""
        if self.search not in self._definitions:
            from mcp_proxy.policy.access_tools import access_tool_definitions

            self._definitions[self.search] = [types.Tool.model_validate(d)
                                              for d in access_tool_definitions(search=self.search)]
        return self._definitions[self.search]

    async def call(self, name: str, arguments: JsonObject, user: str | None) -> types.CallToolResult:
        if name in self.search_names:
            return await self._search_tool(name, arguments, user)
        from mcp_proxy.policy.access_tools import call_access_tool

        text, structured, is_error = await call_access_tool(
            name, arguments, engine=self._engine, facts=self._facts(), user=user, emit=self._emit)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured, is_error=is_error)

    # -- the search mode -----------------------------------------------------
    async def _search_tool(self, name: str, arguments: JsonObject, user: str | None) -> types.CallToolResult:
        assert self._shown is not None  # the constructor makes sure of it in search mode
        tools = await self._shown(user)
        if name == "proxy_search_tools":
            return _search(tools, arguments)
        return _describe(tools, arguments)

    async def call_through(self, call: ToolCall) -> CallResult:
        """`proxy_call_tool`: the named tool's call, run through the whole pipeline as a call of its own."""
        assert self._run is not None
        target, arguments = call.arguments.get("name"), call.arguments.get("arguments", {})
        call.audit_fields["arguments"] = {"name": target}  # the target's arguments go on its own record
        if not isinstance(target, str) or not target.strip():
            return call.fail("bad_argument", "`name` is required: a tool's name from proxy_search_tools.",
                             "tool_error")
        if not isinstance(arguments, dict):
            return call.fail("bad_argument", "`arguments` must be an object: the tool's arguments by name.",
                             "tool_error")
        if target in self.names:
            return call.fail("bad_argument", f"'{target}' is one of the proxy's own tools: call it directly.",
                             "tool_error")
        inner = ToolCall(name=target.strip(), arguments=arguments, request_id=call.request_id, client=call.client,
                         progress=call.progress, meta={**(call.meta or {}), **outbound_meta()},
                         stateless=call.stateless, input_responses=call.input_responses,
                         request_state=call.request_state)
        inner.user = call.user
        call.audit_fields.update({"proxy.call.tool": inner.name, "proxy.call.id": inner.call_id})
        result = await self._run(inner)
        if inner.denial is not None:
            call.outcome, call.error_type = "tool_error", "denied"
        else:
            call.outcome, call.error_type = inner.judge(result)
        return result


def _search(tools: list[types.Tool], arguments: JsonObject) -> types.CallToolResult:
    from mcp_proxy.policy.access_tools import MAX_SEARCH_LIMIT, SEARCH_LIMIT, first_line, rank_tools

    query, limit = arguments.get("query") or "", arguments.get("limit", SEARCH_LIMIT)
    if not isinstance(query, str):
        return error_result("`query` must be a string of words, or left out.")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SEARCH_LIMIT:
        return error_result(f"`limit` must be an integer from 1 to {MAX_SEARCH_LIMIT}.")
    rows = [(t.name, _title(t), t.description or "") for t in tools]
    found = [{"name": rows[i][0], "title": rows[i][1], "description": first_line(rows[i][2])}
             for i in rank_tools(query, rows, limit)]
    if not found:
        text = (f"No available tool matches '{query}'. Try other words, or proxy_unavailable_tools for tools that "
                "exist but are not available to this user.")
    else:
        text = "\n".join([f"{len(found)} of {len(tools)} available tools"
                          + (f" matching '{query}'" if query else "") + ":",
                          *(f"- {f['name']}: {f['title']}. {f['description']}" for f in found),
                          "proxy_describe_tool shows a tool's arguments; proxy_call_tool runs it."])
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content={"tools": found, "available": len(tools)})


def _describe(tools: list[types.Tool], arguments: JsonObject) -> types.CallToolResult:
    name = arguments.get("name")
    if not isinstance(name, str) or not name.strip():
        return error_result("`name` is required: a tool's name from proxy_search_tools.")
    tool = next((t for t in tools if t.name == name.strip()), None)
    if tool is None:
        return error_result(f"No available tool is named '{name}'. proxy_search_tools finds the available tools; "
                            "proxy_unavailable_tools lists those that exist but are not available to this user.")
    definition = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(definition))],
                                structured_content=definition)


def _title(tool: types.Tool) -> str:
    return tool.title or (tool.annotations.title if tool.annotations else None) or tool.name


class ProxyTools:
    """Answers a call to one of the proxy's own tools; every other call goes on."""

    def __init__(self, tools: AccessTools) -> None:
        self._tools = tools

    async def __call__(self, call: ToolCall, call_next: Next) -> CallResult:
        if call.name not in self._tools.names:
            return await call_next(call)
        call.audit_fields.update({"upstream": "proxy", "upstream.tool": call.name, "decision": "allow",
                                  "reason": "built_in"})
        if call.name == "proxy_call_tool":
            return await self._tools.call_through(call)
        result = await self._tools.call(call.name, call.arguments, call.user)
        call.outcome = "tool_error" if result.is_error else "ok"
        return result
