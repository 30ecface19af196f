"""The proxy's running state toward the client: the catalog, the tool list, and the call pipeline.

`tools/list` is answered here; `tools/call` goes through the call pipeline (server/pipeline.py), which the
hub builds at construction from the narrow parts each stage needs. The hub knows no vendor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio
import mcp_types as types

from mcp_proxy.catalog.cache import cache_file_name, load_tools, save_tools
from mcp_proxy.catalog.catalog import Catalog, Entry
from mcp_proxy.policy.constraints import narrowed_schema
from mcp_proxy.server.call import CallResult, JsonObject, ToolCall
from mcp_proxy.server.client import ClientLink
from mcp_proxy.server.identity import Identity
from mcp_proxy.server.inflight import CallsInFlight
from mcp_proxy.server.pipeline import Pipeline, call_stages
from mcp_proxy.server.stages.proxy_tools import AccessTools
from mcp_proxy.server.stages.resolve import first_outcome
from mcp_proxy.server.stages.sign_in import SignInFlow
from mcp_proxy.server.upstream_requests import UpstreamRequests
from mcp_proxy.upstreams.base import Upstream, UpstreamEvents

if TYPE_CHECKING:
    from mcp_proxy.audit import AuditLog
    from mcp_proxy.clients.table import ClientSpec
    from mcp_proxy.config import Config
    from mcp_proxy.paths import Paths
    from mcp_proxy.policy import PolicyEngine

log = logging.getLogger(__name__)

FIRST_LIST_WAIT = 5.0  # seconds the first tools/list waits for what has no cached answer (upstreams, policy)
# How long a stateless-era client may keep the merged list: at most this, and no longer than any upstream said
# its own list stays fresh. Private: the list depends on who the user is.
LIST_TTL_MS = 60_000

ListKey = tuple[int, int, str | None, str | None]


class Hub:
    def __init__(self, config: Config, paths: Paths, upstreams: Mapping[str, Upstream], policy: PolicyEngine,
                 audit: AuditLog, link: ClientLink, identity: Identity, inflight: CallsInFlight) -> None:
        self.config = config
        self.paths = paths
        self.upstreams = upstreams
        self.policy = policy
        self.audit = audit
        self.link = link
        self.identity = identity
        self.catalog = Catalog({key: upstream.kind for key, upstream in upstreams.items()})
        # With tool_search, proxy_call_tool runs its target through this hub's own pipeline, built just below.
        self.access_tools = AccessTools(policy, self.catalog.facts, audit.append_nowait,
                                        search=bool(config.tool_search), shown=self._approved_as_shown,
                                        run=lambda call: self.pipeline(call))
        self.inflight = inflight
        self.upstream_requests = UpstreamRequests(link, inflight, audit.append)
        self.pipeline = Pipeline(call_stages(
            audit=audit, inflight=inflight, access_tools=self.access_tools, catalog=self.catalog,
            upstreams=upstreams, policy=policy, user=lambda: identity.user, sign_in=SignInFlow(identity.confirmed),
            input_relay=self.upstream_requests))
        self._list_cache: tuple[ListKey, types.ListToolsResult] | None = None
        self._policy_generation = 0
        self._first_answers: anyio.Event | None = None  # set once the first list's wait is over
        self._budget_noted = False
        self.stop = anyio.Event()
        self._load_cached_tools()

    # -- catalog -------------------------------------------------------------
    def _load_cached_tools(self) -> None:
        for key, upstream in self.upstreams.items():
            static = upstream.static_tools()
            if static is not None:  # built-in connectors: static lists, known at once
                self.catalog.set_tools(key, static)
                continue
            identity = upstream.cache_identity()
            cached = load_tools(self.paths.tool_cache_dir, key, identity) if identity else None
            if cached is not None:
                self.catalog.set_tools(key, cached)

    async def tools_changed(self, key: str, tools: list[JsonObject]) -> None:
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
        await self.audit.append("tools.discovered", {"upstream": key, "tool_count": len(tools),
                                                     "tools": self._inventory(key)})
        await self.link.list_changed()

    def listed_sources(self, names: list[str]) -> dict[str, tuple[str, JsonObject]]:
        """Each named tool's upstream and the upstream's own definition of it: kept with a list for the next
        start, whose early answer is checked against them (server/first_answers.py)."""
        sources = {}
        for name in names:
            entry = self.catalog.lookup(name)
            if entry is not None:
                sources[name] = (entry.upstream, entry.raw)
        return sources

    def cached_tool_lists(self) -> dict[str, list[JsonObject]]:
        """The lists in use that the tool cache keeps (upstreams with a cache identity), by cache file name."""
        return {cache_file_name(key): self.catalog.raw_tools(key) for key, upstream in sorted(self.upstreams.items())
                if upstream.cache_identity() and self.catalog.has_upstream(key)}

    def _inventory(self, key: str) -> list[JsonObject]:
        """What the upstream offers, for the administrator's inventory: each tool's own name, exposed name,
        title, definition hash and annotations (the collector accumulates what users' proxies have seen)."""
        return [{"name": e.name, "exposed": e.exposed, "title": e.tool.title or "",
                 "sha256": e.facts.definition_hash, "annotations": dict(e.facts.annotations)}
                for e in self.catalog.entries() if e.upstream == key]

    async def policy_changed(self) -> None:
        self._policy_generation += 1
        self.audit.context.policy_revision = self.policy.revision
        await self.link.list_changed()

    # -- tools/list ----------------------------------------------------------
    async def _wait_for_first_answers(self) -> None:
        """The first tools/list waits (bounded) for what is not known yet: upstreams with no cached list, and
        the policy when none is cached. Clients such as Claude Desktop ignore list_changed, so an empty first
        answer would stay empty for the whole session."""
        missing = [u for k, u in self.upstreams.items() if not self.catalog.has_upstream(k)]
        with anyio.move_on_after(FIRST_LIST_WAIT):
            async with anyio.create_task_group() as tg:
                for upstream in missing:
                    tg.start_soon(first_outcome, upstream, FIRST_LIST_WAIT)
                tg.start_soon(self.policy.wait_first_sync, FIRST_LIST_WAIT)

    async def _first_answers_in(self) -> None:
        """Every list asked for before the first wait is over waits for it (the client's own, and the one the
        server asks for itself to keep the first answers: server/wire.py), not only the first one."""
        if self._first_answers is None:
            self._first_answers = anyio.Event()
            try:
                await self._wait_for_first_answers()
            finally:
                self._first_answers.set()
        await self._first_answers.wait()

    async def list_tools(self) -> types.ListToolsResult:
        if self.access_tools.search:  # the search mode: the proxy's own tools only, known without waiting
            return self._search_list()
        await self._first_answers_in()
        user = self.identity.user
        key: ListKey = (self.catalog.version, self._policy_generation, user, self.policy.revision)
        if self._list_cache is not None and self._list_cache[0] == key:
            return self._list_cache[1]
        allowed = [e for e in self.catalog.entries() if self.policy.decide(e.facts, user).allowed]
        if self._over_client_limit(len(allowed)):
            return self._search_list()
        allowed = self._within_budget(allowed, user)
        result = types.ListToolsResult(tools=[*self.access_tools.definitions(), *(self._as_shown(e) for e in allowed)],
                                       ttl_ms=self._list_ttl_ms(), cache_scope="private")
        self._list_cache = (key, result)
        return result

    async def _approved_as_shown(self, user: str | None) -> list[types.Tool]:
        """The search mode's catalog: every tool the policy allows `user`, as a direct list would show it (not cut
        to max_tools: that limit is for lists, and the search mode is how a client reaches the rest)."""
        await self._first_answers_in()
        return [self._as_shown(e) for e in self.catalog.entries() if self.policy.decide(e.facts, user).allowed]

    def _as_shown(self, entry: Entry) -> types.Tool:
        """The tool as the model sees it: with argument constraints, its input schema narrowed to match, so the
        model is offered only what it may do (the definition hash stays the upstream's own)."""
        constraints = self.policy.constraints_for(entry.facts.key)
        if not constraints:
            return entry.tool
        return entry.tool.model_copy(update={"input_schema": narrowed_schema(entry.input_schema, constraints)})

    def _list_ttl_ms(self) -> int:
        said = [u.status.list_ttl_ms for u in self.upstreams.values() if u.status.list_ttl_ms is not None]
        return min([LIST_TTL_MS, *said])

    def _search_list(self) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.access_tools.definitions(), ttl_ms=self._list_ttl_ms(),
                                     cache_scope="private")

    def _over_client_limit(self, approved: int) -> bool:
        """With `tool_search` unset and no `max_tools`, more approved tools than the client takes switch this
        session to the search mode: every tool stays reachable (search, describe, call) where a cut list would
        drop some at random."""
        if self.config.tool_search is not None or self.config.max_tools is not None:
            return False
        spec = self._client_spec()
        count = approved + len(self.access_tools.definitions())
        if spec is None or not spec.over_limit(count):
            return False
        self.access_tools.use_search()
        log.warning("%d approved tools exceed %s's limit of %d: this session uses the search mode (proxy_search_tools, "
                    "proxy_describe_tool, proxy_call_tool); set tool_search = false or max_tools to change that",
                    count, spec.display_name, spec.tool_limit)
        return True

    def _client_spec(self) -> ClientSpec | None:
        """The client of this session, when it said its name and the proxy knows it (clients/table.py)."""
        if not self.audit.context.client_name:
            return None
        from mcp_proxy.clients.table import client_for_info

        return client_for_info(self.audit.context.client_name)

    def _within_budget(self, entries: list[Entry], user: str | None) -> list[Entry]:
        """Apply `max_tools`, and warn once when the client cannot handle this many tools.

        With `max_tools`, tools are kept by rank rather than cut at random: those the policy's toolsets
        give this user first (in toolset order), then read-only before write tools, then by name.
        """
        limit = self.config.max_tools
        if limit is not None and len(entries) > limit:

            def rank(e: Entry) -> tuple[int, bool, str]:
                return (self.policy.toolset_rank(e.facts, user), not e.facts.read_only, e.exposed)

            kept = sorted(entries, key=rank)[:limit]
            if not self._budget_noted:
                log.warning("max_tools = %d: exposing %d of %d available tools", limit, limit, len(entries))
            kept_ids = {id(e) for e in kept}
            entries = [e for e in entries if id(e) in kept_ids]
        if not self._budget_noted and self.audit.context.client_name:
            self._budget_noted = True
            spec = self._client_spec()
            warning = spec.budget_warning(len(entries) + len(self.access_tools.definitions())) if spec else None
            if warning:
                log.warning("%s", warning)
        return entries

    # -- tools/call ----------------------------------------------------------
    async def call(self, call: ToolCall) -> CallResult:
        """Run one tools/call through the pipeline, for the user as of now. Never raises but for
        cancellation (the pipeline's error boundary)."""
        call.user = self.identity.user
        return await self.pipeline(call)

    # -- running -------------------------------------------------------------
    def events(self) -> UpstreamEvents:
        return UpstreamEvents(tools_changed=self.tools_changed, requests=self.upstream_requests)
