"""The proxy's running state: catalog, upstreams, policy, audit, the client.

`tools/list` and `tools/call` are answered here. The hub knows no vendor: it
routes by exposed name to an upstream, asks the policy, validates arguments,
forwards, and records every decision and outcome in the audit log before the
result goes back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
import mcp_types as types

from mcp_proxy.catalog.arguments import check_arguments
from mcp_proxy.catalog.cache import load_tools, save_tools
from mcp_proxy.catalog.catalog import Catalog, Entry
from mcp_proxy.config import Config, SecretStore
from mcp_proxy.paths import Paths
from mcp_proxy.upstreams.base import ToolFailure, Upstream, UpstreamEvents, UpstreamUnavailable

log = logging.getLogger(__name__)

FIRST_LIST_WAIT = 5.0  # seconds the first tools/list waits for what has no cached answer (upstreams, policy)


async def _first_outcome(upstream: Upstream, timeout: float) -> None:
    """Wait until the upstream has connected once or its first attempt failed (it then retries with backoff,
    which a waiting client should not sit through), at most `timeout` seconds."""
    with anyio.move_on_after(timeout):
        while not upstream.status.connected_once.is_set() and upstream.status.state not in ("reconnecting", "failed"):
            with anyio.move_on_after(0.05):
                await upstream.status.connected_once.wait()


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


class Hub:
    def __init__(self, config: Config, paths: Paths, store: SecretStore, upstreams: dict[str, Upstream],
                 policy: Any, audit: Any) -> None:
        self.config = config
        self.paths = paths
        self.store = store
        self.upstreams = upstreams
        self.policy = policy
        self.audit = audit
        self.catalog = Catalog()
        self.downstream: Any = None  # the client's ServerSession, once initialized
        self._pending_list_changed = False
        self._list_cache: tuple[tuple, types.ListToolsResult] | None = None
        self._policy_generation = 0
        self._first_list_done = False
        self._access_tool_cache: list[types.Tool] | None = None
        self._budget_noted = False
        self.stop = anyio.Event()
        self.user = config.user_email
        self._identity_warned = False
        self._load_cached_tools()
        self._attach_sign_in()

    # -- catalog -------------------------------------------------------------
    def _load_cached_tools(self) -> None:
        for key, upstream in self.upstreams.items():
            tool_dicts = getattr(upstream, "tool_dicts", None)
            if tool_dicts is not None:  # built-in connectors: static lists, known at once
                self.catalog.set_tools(key, tool_dicts())
                continue
            identity = upstream.cache_identity()
            cached = load_tools(self.paths.tool_cache_dir, key, identity) if identity else None
            if cached is not None:
                self.catalog.set_tools(key, cached)

    async def tools_changed(self, key: str, tools: list[dict[str, Any]]) -> None:
        if not self.catalog.set_tools(key, tools):
            return
        upstream = self.upstreams.get(key)
        identity = upstream.cache_identity() if upstream else None
        if identity:
            try:
                await anyio.to_thread.run_sync(save_tools, self.paths.tool_cache_dir, key, identity, tools)
            except OSError as exc:
                log.warning("could not cache the tool list of %s (%s)", key, exc.strerror)
        self.policy.check_definitions(self.catalog.facts())
        await self.audit.append("tools.discovered", {"upstream": key, "tool_count": len(tools)})
        await self.notify_list_changed()

    async def policy_changed(self) -> None:
        self._policy_generation += 1
        self.audit.context.policy_revision = self.policy.revision
        await self.notify_list_changed()

    async def notify_list_changed(self) -> None:
        self._list_cache = None
        if self.downstream is None:
            self._pending_list_changed = True
            return
        try:
            await self.downstream.send_tool_list_changed()
        except Exception as exc:  # noqa: BLE001 - a client that went away must not break the hub
            log.debug("could not send list_changed (%s)", type(exc).__name__)

    async def client_initialized(self, session: Any) -> None:
        self.downstream = session
        params = getattr(session, "client_params", None)
        info = getattr(params, "client_info", None)
        if info is not None:
            self.audit.context.client_name = info.name
            self.audit.context.client_version = info.version
        if self._pending_list_changed:
            self._pending_list_changed = False
            await self.notify_list_changed()

    async def identity_confirmed(self, email: str | None, upstream: str) -> None:
        """A vendor confirmed who the user is: that email is the user of audit records from now on."""
        await self.audit.append("auth.signed_in", {"upstream": upstream, "user.email": email})
        if self._adopt_identity(email, upstream):
            await self.notify_list_changed()

    def _adopt_identity(self, email: str | None, upstream: str) -> bool:
        if not email or email == self.user:
            return False
        if self.config.user_email and email.lower() != self.config.user_email.lower() and not self._identity_warned:
            self._identity_warned = True
            log.warning("%s confirms you as %s, but [user] email is %s; audit records use %s",
                        upstream, email, self.config.user_email, email)
        self.user = email
        self.audit.context.user = email
        return True

    def _attach_sign_in(self) -> None:
        """Upstreams with per-user OAuth: record their token events in the audit log, hear of completed
        sign-ins, and start with the identity a previous sign-in confirmed."""
        for key, upstream in self.upstreams.items():
            storage = getattr(upstream, "oauth_storage", None)
            if storage is not None:  # an MCP upstream's tokens: redacted like the configured secrets
                storage.reveal = self.audit.add_secret
            broker = getattr(getattr(upstream, "credentials", None), "broker", None)
            if broker is None:
                continue
            broker.emit = self.audit.append_nowait
            broker.reveal = self.audit.add_secret

            async def announce(info: Any, key: str = key) -> None:
                await self.identity_confirmed(getattr(info, "identity_email", None), key)

            broker.announce = announce
            try:
                email = broker.identity_email
            except Exception as exc:  # noqa: BLE001 - a damaged token record must not stop start-up
                log.debug("no stored identity for %s (%s)", key, type(exc).__name__)
                continue
            if email and self._adopt_identity(email, key):
                log.info("%s: signed in as %s (from the last sign-in)", key, email)

    # -- tools/list ----------------------------------------------------------
    async def _wait_for_first_answers(self) -> None:
        """The first tools/list waits (bounded) for what is not known yet: upstreams with no cached list, and
        the policy when none is cached. Clients such as Claude Desktop ignore list_changed, so an empty first
        answer would stay empty for the whole session."""
        missing = [u for k, u in self.upstreams.items() if not self.catalog.has_upstream(k)]
        with anyio.move_on_after(FIRST_LIST_WAIT):
            async with anyio.create_task_group() as tg:
                for upstream in missing:
                    tg.start_soon(_first_outcome, upstream, FIRST_LIST_WAIT)
                wait_policy = getattr(self.policy, "wait_first_sync", None)
                if wait_policy is not None:
                    tg.start_soon(wait_policy, FIRST_LIST_WAIT)

    async def _wait_for_tool(self, name: str) -> Entry | None:
        """A call for a tool of an upstream whose list is not known yet (no cache, still connecting)."""
        upstream = self.upstreams.get(name.split("_", 1)[0])
        if upstream is None or self.catalog.has_upstream(upstream.key):
            return None
        await _first_outcome(upstream, upstream.cfg.connect_timeout)
        return self.catalog.lookup(name)

    async def list_tools(self) -> types.ListToolsResult:
        if not self._first_list_done:
            self._first_list_done = True
            await self._wait_for_first_answers()
        key = (self.catalog.version, self._policy_generation, self.user, self.policy.revision)
        if self._list_cache is not None and self._list_cache[0] == key:
            return self._list_cache[1]
        allowed = [e for e in self.catalog.entries() if self.policy.decide(e.facts, self.user).allowed]
        allowed = self._within_budget(allowed)
        result = types.ListToolsResult(tools=[*self._access_tools(), *(e.tool for e in allowed)])
        self._list_cache = (key, result)
        return result

    def _within_budget(self, entries: list[Entry]) -> list[Entry]:
        """Apply `max_tools`, and warn once when the client cannot handle this many tools.

        With `max_tools`, tools are kept by rank rather than cut at random: those the policy's toolsets
        give this user first (in toolset order), then read-only before write tools, then by name.
        """
        limit = self.config.max_tools
        if limit is not None and len(entries) > limit:
            rank = getattr(self.policy, "toolset_rank", None)

            def key(e: Entry) -> tuple:
                return (rank(e.facts, self.user) if rank else 0, not e.facts.read_only, e.exposed)

            kept = sorted(entries, key=key)[:limit]
            if not self._budget_noted:
                log.warning("max_tools = %d: exposing %d of %d available tools", limit, limit, len(entries))
            kept_ids = {id(e) for e in kept}
            entries = [e for e in entries if id(e) in kept_ids]
        if not self._budget_noted and self.audit.context.client_name:
            self._budget_noted = True
            from mcp_proxy.clients.table import client_for_info

            spec = client_for_info(self.audit.context.client_name)
            warning = spec.budget_warning(len(entries) + len(self._access_tools())) if spec else None
            if warning:
                log.warning("%s", warning)
        return entries

    def _access_tools(self) -> list[types.Tool]:
        if self._access_tool_cache is None:
            from mcp_proxy.policy.access_tools import access_tool_definitions

            self._access_tool_cache = [types.Tool.model_validate(d) for d in access_tool_definitions()]
        return self._access_tool_cache

    # -- tools/call ----------------------------------------------------------
    async def call_tool(self, name: str, arguments: dict[str, Any] | None, *, progress: Any = None,
                        request_id: Any = None, sign_in: Any = None) -> types.CallToolResult | dict[str, Any]:
        started = time.perf_counter()
        arguments = arguments or {}
        record: dict[str, Any] = {"mcp.method.name": "tools/call", "gen_ai.tool.name": name,
                                  "jsonrpc.request.id": None if request_id is None else str(request_id),
                                  "arguments": arguments}
        if any(t.name == name for t in self._access_tools()):
            return await self._call_access_tool(name, arguments, record, started)
        entry = self.catalog.lookup(name)
        if entry is None:
            entry = await self._wait_for_tool(name)
        if entry is None:
            upstream = self.upstreams.get(name.split("_", 1)[0])
            if upstream is not None and not self.catalog.has_upstream(upstream.key):
                # Its tools are not known because it has not answered yet: say why, not "no such tool".
                reason = upstream.status.detail or "it has not answered yet"
                await self._deny(record, "upstream_unavailable", reason, started)
                return error_result(f"The upstream '{upstream.key}' is not available, so its tools are unknown: "
                                    f"{reason}. Try again later; `mcp-access-proxy doctor` checks it.")
            await self._deny(record, "unknown_tool", f"no tool named {name!r}", started)
            return error_result(
                f"There is no tool named '{name}'. It may have been removed or renamed upstream. "
                "List the tools again and use a name from that list.")
        record.update({"upstream": entry.upstream, "upstream.tool": entry.name})
        decision = self.policy.decide(entry.facts, self.user)
        record["policy.decision.code"] = decision.code
        if not decision.allowed:
            await self._deny(record, decision.code, decision.message, started)
            return error_result(decision.message)
        record["decision"] = "allow"
        record["reason"] = decision.code
        problem = check_arguments(entry.input_schema, arguments)
        if problem is not None:
            await self._finish(record, "error", "invalid_arguments", started)
            return error_result(f"Invalid arguments for '{name}': {problem}. Fix the arguments and call again.")
        return await self._forward(entry, arguments, record, started, progress, sign_in)

    async def _forward(self, entry: Entry, arguments: dict[str, Any], record: dict[str, Any], started: float,
                       progress: Any, sign_in: Any) -> types.CallToolResult | dict[str, Any]:
        upstream = self.upstreams.get(entry.upstream)
        timeout = upstream.cfg.call_timeout if upstream is not None else 30.0
        outcome, error_type = "error", None
        try:
            if upstream is None:
                raise UpstreamUnavailable(f"the upstream '{entry.upstream}' is not configured any more; "
                                          "list the tools again")
            try:
                result = await upstream.call_tool(entry.name, arguments, progress=progress, timeout=timeout)
            except Exception as exc:
                if sign_in is None or type(exc).__name__ != "SignInRequired":
                    raise
                # Per-user OAuth: sign in (elicitation or browser), then run the call once more.
                signed_in_error = await sign_in(upstream, exc)
                if signed_in_error is not None:
                    error_type = "sign_in_required"
                    return signed_in_error
                try:
                    result = await upstream.call_tool(entry.name, arguments, progress=progress, timeout=timeout)
                except Exception as again:
                    if type(again).__name__ != "SignInRequired":
                        raise
                    error_type = "sign_in_required"  # signed in, yet refused at once: say so, do not loop
                    return error_result(f"{again} The vendor refused the new sign-in right away; check the "
                                        "account's access to this tool, then call it again.")
            failed = result.get("isError") is True if isinstance(result, dict) else result.is_error
            outcome = "tool_error" if failed else "ok"
            error_type = "tool_error" if failed else None
            return result
        except ToolFailure as exc:
            outcome, error_type = "tool_error", exc.error_type
            return error_result(exc.message)
        except UpstreamUnavailable as exc:
            error_type = "upstream_unavailable"
            return error_result(str(exc))
        except TimeoutError:
            error_type = "timeout"
            return error_result(
                f"The upstream '{entry.upstream}' did not answer within {timeout:g} s (call_timeout). A write may "
                "or may not have taken effect: check before repeating it.")
        except anyio.get_cancelled_exc_class():
            error_type = "cancelled"
            raise
        except Exception as exc:  # noqa: BLE001 - never let exception text reach the client
            error_type = type(exc).__name__
            log.error("unexpected %s while calling %s", type(exc).__name__, record["gen_ai.tool.name"],
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return error_result(
                "The proxy hit an internal error while running this tool; nothing was reported by the upstream. "
                "Try again; if it persists, run `mcp-access-proxy doctor` and check the proxy log.")
        finally:
            with anyio.CancelScope(shield=True):
                await self._finish(record, outcome, error_type, started)

    async def _call_access_tool(self, name: str, arguments: dict[str, Any], record: dict[str, Any],
                                started: float) -> types.CallToolResult:
        from mcp_proxy.policy.access_tools import call_access_tool

        record.update({"upstream": "proxy", "upstream.tool": name, "decision": "allow", "reason": "built_in"})
        text, structured, is_error = await call_access_tool(
            name, arguments, engine=self.policy, facts=self.catalog.facts(), user=self.user,
            emit=self.audit.append_nowait)
        await self._finish(record, "tool_error" if is_error else "ok", None, started)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured, is_error=is_error)

    async def _deny(self, record: dict[str, Any], code: str, reason: str, started: float) -> None:
        record.update({"decision": "deny", "reason": reason, "policy.decision.code": code})
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self.audit.append("mcp.tool.denied", record)

    async def _finish(self, record: dict[str, Any], outcome: str, error_type: str | None, started: float) -> None:
        record["outcome"] = outcome
        record["error.type"] = error_type
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self.audit.append("mcp.tool.call", record)

    # -- running -------------------------------------------------------------
    def events(self) -> UpstreamEvents:
        return UpstreamEvents(tools_changed=self.tools_changed, elicit=self._relay_elicitation)

    async def _relay_elicitation(self, params: types.ElicitRequestParams) -> types.ElicitResult:
        session = self.downstream
        caps = getattr(session, "client_capabilities", None) if session is not None else None
        if session is None or caps is None or caps.elicitation is None:
            return types.ElicitResult(action="decline")
        return await session.send_request(types.ElicitRequest(params=params), types.ElicitResult)
