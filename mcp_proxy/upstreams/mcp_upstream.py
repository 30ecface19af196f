"""Upstreams that are MCP servers: a local stdio command, Streamable HTTP or SSE.

Each upstream runs in its own task: it connects in the background (bounded by
`connect_timeout`), reads every page of `tools/list`, reports the tools, and
watches the connection; when the server dies it reconnects with backoff. One
upstream that is down, hangs, sends an off-spec list or crashes mid-call
affects only its own tools and calls. So does one whose answer is larger than
`max_message_bytes`: the transports drop it as it streams by and fail that call
(or that tool list, which is then asked for again only after `TOO_LARGE_RETRY`).

Protocol eras: an upstream is probed with `server/discover` and spoken to in the stateless 2026-07-28 era
when it answers, else with the `initialize` handshake (`Client(mode="auto")`, its probe bounded by
`PROBE_TIMEOUT`). The verdict is remembered (`EraMemory`, kept in the tool cache), so the next start does
not probe: a handshake-era verdict connects with `initialize` (probed again after `LEGACY_VERDICT_LIFETIME`,
to notice an upgrade), a 2026-07-28 one adopts the remembered `server/discover` result. A remembered verdict
that fails (the server was upgraded or downgraded: its first answer refuses the era, or lacks the era's
`resultType`) is dropped and the upstream is connected again at once, with a probe.

On the 2026-07-28 era there are no requests toward the user (an upstream answers `InputRequiredResult`
instead, passed on as the call's result), no `ping` (HTTP health checks use `server/discover`), and a
changed tool list is announced only on `subscriptions/listen`: the upstream listens there when the server
says it serves it, and otherwise lists again on a timer bounded by the list's `ttlMs`.
"""

from __future__ import annotations

import logging
import math
import random
from contextlib import AsyncExitStack
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_proxy import __version__
from mcp_proxy.config import SecretError, SecretRef, SecretStore, UpstreamConfig
from mcp_proxy.tracing import outbound_meta
from mcp_proxy.upstreams.base import (
    ProgressRelay,
    Upstream,
    UpstreamEvents,
    UpstreamStatus,
    UpstreamUnavailable,
    connection_identity,
)
from mcp_proxy.upstreams.eras import LEGACY, PROBE_TIMEOUT, EraMemory, connect_options, verdict_for
from mcp_proxy.upstreams.mcp_failures import (
    HttpStatusWatch,
    call_answer_too_large,
    closed_before_sent,
    closed_during_call,
    connect_failure_text,
    failed_on_size,
    leaf_of,
    not_json_result,
    not_mcp_result,
    refused_mid_session_result,
    rejected_result,
)
from mcp_proxy.upstreams.mcp_listing import list_all
from mcp_proxy.upstreams.raw import (
    bound_discover_probe,
    bounded_streamable_http,
    is_closed,
    is_too_large,
    raw_request,
    stamped_params,
    supports_raw,
)
from mcp_proxy.upstreams.stdio_lane import AnswerNotJson, NotSent, StdioLane

log = logging.getLogger(__name__)

HEALTH_INTERVAL = 0.5
PING_INTERVAL = 30.0
# An oversized tool list does not shrink by asking again at once: wait this long (not the backoff's 0.5 s,
# 1 s, ...) between attempts, each of which costs reading the whole answer.
TOO_LARGE_RETRY = 300.0
# Re-listing a 2026-07-28 upstream that does not serve subscriptions/listen: every `ttlMs`, within these bounds,
# and every RELIST_DEFAULT when the list says no ttlMs.
RELIST_DEFAULT = 60.0
RELIST_BOUNDS = (5.0, 600.0)


class McpUpstream(Upstream):
    kind = "mcp"

    @property
    def oauth_storage(self) -> Any:
        """Where this upstream's OAuth tokens live (`auth = "oauth"`), else None."""
        return getattr(self._http_auth, "storage", None)

    def __init__(self, cfg: UpstreamConfig, store: SecretStore, *, http_auth: Any = None,
                 eras: EraMemory | None = None) -> None:
        self.key = cfg.key
        self.cfg = cfg
        self.store = store
        self.status = UpstreamStatus()
        self._http_auth = http_auth
        self._client: Client | None = None
        self._changed = anyio.Event()  # set (then replaced) whenever an attempt to connect ends, either way
        self._relist = anyio.Event()
        self._dead = anyio.Event()
        self._http_watch = HttpStatusWatch()
        self._drop_reason: str | None = None  # why the proxy itself ended the session, for the status line
        # The last attempt failed on the credentials: waiting for a reconnect cannot help, so calls fail at once.
        self._credentials_refused = False
        self._eras = eras
        self._verdict: dict[str, Any] | None = None  # the remembered era verdict, until one fails
        self._mode = "auto"  # how the current attempt negotiates: "auto" (probe), "legacy" or a modern version
        self._listening = False  # a subscriptions/listen stream announces list changes
        self._lane: StdioLane | None = None  # a stdio upstream's calls, past the SDK's session (stdio_lane.py)

    def cache_identity(self) -> str:
        return connection_identity(self.cfg)

    # -- connection ----------------------------------------------------------
    def _resolve(self, values: dict[str, str | SecretRef]) -> dict[str, str]:
        return {k: v.resolve(self.store) if isinstance(v, SecretRef) else v for k, v in values.items()}

    def _describe_failure(self, exc: BaseException) -> str:
        """A one-line reason without exception text that might carry a secret."""
        status = self._http_watch.last_error_status
        return connect_failure_text(exc, self.cfg, status, self.auth_advice(status) if status in (401, 403) else None)

    def _refused_credentials(self, exc: BaseException) -> bool:
        return isinstance(leaf_of(exc), SecretError) or self._http_watch.last_error_status in (401, 403)

    def auth_advice(self, status: int) -> str:
        if self.cfg.auth == "oauth":
            # The token was refused and could not be refreshed for a passing reason (server error, rate limit)
            # or a wrong client secret: the sign-in is kept, so signing in again is not the advice.
            problem = getattr(self._http_auth, "refresh_problem", None)
            if problem:
                return f"the proxy could not renew its sign-in: {problem}"
            return (f"the server needs you to sign in (HTTP {status}); run `mcp-access-proxy login {self.key}` in a "
                    "terminal (the proxy picks the new token up by itself)")
        return (f"the server refused the credentials (HTTP {status}); check the secrets referenced by "
                f"upstreams.{self.key}.headers")

    def _transport(self, stack: AsyncExitStack) -> Any:
        cfg = self.cfg
        if cfg.command:
            from mcp_proxy.upstreams.stdio_transport import stdio_transport

            self._lane = StdioLane()
            return stdio_transport(StdioServerParameters(
                command=cfg.command, args=list(cfg.args), env=self._resolve(cfg.env) or None, cwd=cfg.cwd
            ), label=self.key, max_message_bytes=cfg.max_message_bytes, lane=self._lane)
        assert cfg.url is not None, "the config requires a command or a url"
        headers = self._resolve(cfg.headers)
        hooks = {"response": [self._http_watch.on_response]}
        import httpx2

        if cfg.transport == "sse":
            from mcp.client.sse import sse_client

            def factory(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                        auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
                return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks=hooks)

            return sse_client(cfg.url, headers=headers, timeout=cfg.connect_timeout,
                              httpx_client_factory=factory, auth=self._http_auth)
        http = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(cfg.connect_timeout, read=max(300.0, cfg.call_timeout)),
            auth=self._http_auth, event_hooks=hooks,
        )
        stack.push_async_callback(http.aclose)
        return bounded_streamable_http(cfg.url, http_client=http, max_message_bytes=cfg.max_message_bytes)

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist.set()
        elif isinstance(message, Exception):
            log.debug("upstream %s sent something that is not MCP (%s)", self.key, type(message).__name__)

    async def _list_all(self, client: Client, *, check_era: bool = False) -> list[dict[str, Any]]:
        """Every page of the upstream's tools/list (mcp_listing.py); the list's freshness goes to the status."""
        listing = await list_all(client, self.cfg, check_era=check_era)
        self.status.list_ttl_ms = listing.ttl_ms
        return listing.tools

    async def run(self, events: UpstreamEvents) -> None:
        if self._eras is not None:
            self._verdict = await anyio.to_thread.run_sync(self._eras.recall)
        attempt = 0
        while True:
            self._dead = anyio.Event()
            self._drop_reason = None
            too_large = False
            doubted = False
            try:
                await self._session_once(events)
                attempt = 0
                reason = self._drop_reason or "the server closed the connection"
            except Exception as exc:  # noqa: BLE001 - isolate this upstream's failure
                reason = self._describe_failure(exc)
                self._credentials_refused = self._refused_credentials(exc)
                too_large = failed_on_size(exc)
                # The remembered era may be what failed (the server was upgraded or downgraded): the next attempt
                # probes, and comes at once. A failure that had nothing to do with the era costs one probe.
                doubted = self._mode != "auto" and self._verdict is not None and not too_large
                if doubted:
                    log.info("upstream %s: connecting in the remembered era %s failed (%s); probing again",
                             self.key, self._mode, reason)
                    self._verdict = None
            self._client = None
            self._listening = False
            delay = min(60.0, 0.5 * 2**attempt) * (0.75 + random.random() / 2)
            if too_large:
                delay = TOO_LARGE_RETRY
            if doubted:
                delay = 0.0
            else:
                attempt += 1
            self.status.state = "reconnecting"
            self.status.detail = f"{reason}; retrying in {delay:.0f} s"
            log.warning("upstream %s: %s; retrying in %.1f s", self.key, reason, delay)
            self._announce()
            await anyio.sleep(delay)

    async def _session_once(self, events: UpstreamEvents) -> None:
        # The deadline covers the handshake and the first tools/list only. It is lifted once connected,
        # rather than wrapping the connect in fail_after, because the client must be entered and exited
        # inside the same cancel scope.
        async with AsyncExitStack() as stack:
            self._http_watch.last_error_status = None
            with anyio.CancelScope(deadline=anyio.current_time() + self.cfg.connect_timeout) as connect_scope:
                self._mode, prior = self._era_options()
                bound_discover_probe(PROBE_TIMEOUT)
                client = Client(
                    self._transport(stack),
                    mode=self._mode,
                    prior_discover=prior,
                    message_handler=self._on_message,
                    **self._request_callbacks(events),
                    client_info=types.Implementation(name="mcp-access-proxy", version=__version__),
                    cache=None,
                )
                async with client:
                    tools = await self._list_all(client, check_era=prior is not None)
                    connect_scope.deadline = math.inf
                    self.status.protocol_version = client.protocol_version
                    await self._remember_era(client)
                    self._client = client
                    self.status.state = "connected"
                    self.status.detail = ""
                    self._credentials_refused = False
                    self.status.tool_count = len(tools)
                    log.info("upstream %s: connected, %d tools", self.key, len(tools))
                    await events.tools_changed(self.key, tools)
                    self._announce()
                    self.status.connected_once.set()
                    await self._watch(client, events)
            if connect_scope.cancelled_caught:
                raise TimeoutError

    # -- protocol era --------------------------------------------------------
    def _era_options(self) -> tuple[str, types.DiscoverResult | None]:
        """How to connect: the remembered verdict's era (and DiscoverResult), else "auto" (probe)."""
        return connect_options(self.cfg.protocol, self._verdict)

    async def _remember_era(self, client: Client) -> None:
        """Remember what the connection speaks, if it was probed (a confirmed verdict is kept as it is)."""
        discover = client.session.discover_result
        era = LEGACY if discover is None else client.protocol_version
        if self._mode != "auto" and self._verdict is not None and self._verdict.get("era") == era:
            return
        verdict = verdict_for(era, discover)
        log.info("upstream %s speaks %s", self.key, client.protocol_version)
        self._verdict = verdict
        if self._eras is not None:
            await anyio.to_thread.run_sync(self._eras.remember, verdict)

    # -- watching ---------------------------------------------------------------
    async def _watch(self, client: Client, events: UpstreamEvents) -> None:
        modern = client.protocol_version in MODERN_PROTOCOL_VERSIONS
        async with anyio.create_task_group() as tg:
            tools_caps = client.server_capabilities.tools
            if modern and tools_caps is not None and tools_caps.list_changed:
                tg.start_soon(self._listen, client)
            await self._watch_loop(client, events, modern)
            tg.cancel_scope.cancel()

    async def _listen(self, client: Client) -> None:
        """2026-07-28: a changed tool list is announced only on a subscriptions/listen stream."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                if not subscription.honored.tools_list_changed:
                    return
                self._listening = True
                self._relist.set()  # a change between the first list and the acknowledgement is not announced
                async for _event in subscription:
                    self._relist.set()
        except (MCPError, SubscriptionLost, ListenNotSupportedError, TimeoutError) as exc:
            log.info("upstream %s: no subscriptions/listen stream (%s); listing again on a timer", self.key,
                     type(exc).__name__)
        finally:
            self._listening = False

    def _relist_every(self) -> float:
        ttl_ms = self.status.list_ttl_ms
        seconds = RELIST_DEFAULT if ttl_ms is None else ttl_ms / 1000
        return min(max(seconds, RELIST_BOUNDS[0]), RELIST_BOUNDS[1])

    async def _watch_loop(self, client: Client, events: UpstreamEvents, modern: bool) -> None:
        since_ping = since_list = 0.0
        while True:
            with anyio.move_on_after(HEALTH_INTERVAL):
                await self._relist.wait()
            if is_closed(client.session) or self._dead.is_set():
                return
            since_list += HEALTH_INTERVAL
            if modern and not self._listening and since_list >= self._relist_every():
                self._relist.set()
            if self._relist.is_set():
                self._relist = anyio.Event()
                since_list = 0.0
                tools = await self._list_all(client)
                self.status.tool_count = len(tools)
                await events.tools_changed(self.key, tools)
            since_ping += HEALTH_INTERVAL
            if since_ping >= PING_INTERVAL and self.cfg.url:
                since_ping = 0.0
                if modern:  # no ping on 2026-07-28: discover is as cheap, and is answered by every server
                    await client.session.send_discover(client.protocol_version)
                else:
                    await raw_request(client.session, "ping", None, {"timeout": 10.0})

    def _request_callbacks(self, events: UpstreamEvents) -> dict[str, Any]:
        """The SDK client's callbacks for this upstream's requests toward the user: each goes to the server,
        which relays or refuses it under the policy; with no server to ask, each is refused."""
        requests, key = events.requests, self.key
        refused = types.ErrorData(code=-32600, message="mcp-access-proxy does not relay requests toward the user "
                                                       "here.")

        async def elicit(_context: ClientRequestContext,
                         params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
            return refused if requests is None else await requests.elicit(key, params)

        async def sample(_context: ClientRequestContext, params: types.CreateMessageRequestParams
                         ) -> types.CreateMessageResult | types.ErrorData:
            return refused if requests is None else await requests.sample(key, params)

        async def list_roots(_context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
            return refused if requests is None else await requests.list_roots(key)

        return {"elicitation_callback": elicit, "sampling_callback": sample, "list_roots_callback": list_roots}

    def _announce(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    # -- calls ---------------------------------------------------------------
    async def _wait_connected(self, budget: float) -> Client:
        if self._client is not None:  # connected: no timer to set up, on every call's path
            return self._client
        with anyio.move_on_after(min(budget, self.cfg.connect_timeout)):
            # Wait through attempts until one connects, or one is refused on the credentials: a reconnect cannot
            # fix a key, so that fails the call at once (with OAuth the next attempt may sign in again: wait).
            while self._client is None and not (self._credentials_refused and self._http_auth is None):
                await self._changed.wait()
        if self._client is None:
            detail = self.status.detail or "it has not connected yet"
            raise UpstreamUnavailable(
                f"the upstream '{self.key}' is not available ({detail}). Its other tools are unavailable too; "
                "the proxy keeps retrying in the background. Try again shortly, or run `mcp-access-proxy doctor`."
            )
        return self._client

    async def wait_ready(self, budget: float) -> None:
        follow = getattr(self._http_auth, "follow_stored_sign_in", None)  # OAuth: auth/mcp_oauth.py
        if follow is not None:  # a `login` elsewhere is taken up; with none stored, SignInRequired before any wait
            await follow()
        # Connected means its tool list has been reported: the catalog holds the live definitions.
        await self._wait_connected(budget)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float
    ) -> types.CallToolResult | dict[str, Any]:
        return await self._call(name, arguments, progress=progress, timeout=timeout)

    async def resume_tool_call(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float,
        input_responses: dict[str, Any], request_state: str | None,
    ) -> types.CallToolResult | dict[str, Any]:
        return await self._call(name, arguments, progress=progress, timeout=timeout,
                                resume={"inputResponses": input_responses, "requestState": request_state})

    async def _call(
        self, name: str, arguments: dict[str, Any], *, progress: ProgressRelay | None, timeout: float,
        resume: dict[str, Any] | None = None,
    ) -> types.CallToolResult | dict[str, Any]:
        client = await self._wait_connected(timeout)
        opts: CallOptions = {"timeout": timeout}
        if progress is not None:
            opts["on_progress"] = progress
        refusals = self._http_watch.auth_refusals
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if resume is not None:  # the retry of an InputRequiredResult (2026-07-28): the answers and its state
            params.update({k: v for k, v in resume.items() if v is not None})
        trace = outbound_meta()  # the call's W3C trace context, so the upstream's spans join the client's trace
        if trace:
            params["_meta"] = trace
        lane = self._lane
        try:
            if lane is not None and (lane.attached or lane.closed) and supports_raw(client.session):
                raw = await lane.request("tools/call", stamped_params(client.session, "tools/call", params, opts),
                                         timeout=timeout, on_progress=progress)
            else:
                raw = await raw_request(client.session, "tools/call", params, opts)
        except MCPError as exc:
            code = exc.error.code
            if is_too_large(exc.error):  # the transport dropped the answer as it streamed by; the session is intact
                raise call_answer_too_large(self.cfg) from None
            if self._http_watch.auth_refusals > refusals:
                return self._refused_mid_session()
            if code == REQUEST_TIMEOUT:
                raise TimeoutError from None
            if isinstance(exc, NotSent) or code == CONNECTION_CLOSED:
                self._dead.set()
                text = closed_before_sent(self.key) if isinstance(exc, NotSent) else closed_during_call(self.key)
                raise UpstreamUnavailable(text) from None
            if isinstance(exc, AnswerNotJson):
                return not_json_result(self.key)
            return rejected_result(self.key, code, exc.error.message or "")
        # Returned as the raw dict: the server validates and sieves it once for the client's protocol version on
        # the way out, so validating it here too would double the cost of every call. A result that is not
        # even shaped like one is turned into an error here, so the model learns what happened.
        result_type = raw.get("resultType")  # only on the 2026-07-28 era
        if result_type == "input_required":
            # The upstream asks for input (an elicitation, ...) instead of sending a request: passed on unchanged.
            return raw
        if not isinstance(raw.get("content"), list):
            return not_mcp_result(self.key)
        if result_type == "complete":
            # The result as a handshake-era upstream sends it: the server adds `resultType` for a 2026-07-28
            # client (app.py: for_era), and the fast path, which serves handshake-era clients, passes dicts on.
            del raw["resultType"]
        return raw

    def _refused_mid_session(self) -> types.CallToolResult:
        """The server refused the credentials of a session that was working (a key revoked or rotated)."""
        status = self._http_watch.last_error_status or 401
        advice = self.auth_advice(status)
        log.warning("upstream %s: %s", self.key, advice)
        # The session is useless now: end it, so the status says why and reconnecting shows when a new key works.
        self._drop_reason = advice
        self._credentials_refused = True
        self.status.detail = advice
        self._client = None  # calls from now on fail at once with the advice, not on the closing session
        self._dead.set()
        return refused_mid_session_result(self.key, advice)
