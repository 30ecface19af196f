"""`serve`: the stdio MCP server process from start to exit.

Start-up reads only the config and on-disk caches before answering, so the
client's `initialize` and `tools/list` are served at once; upstreams, policy
sync and audit shipping run in the background. Exit is clean on stdin EOF,
and within 3 s on SIGTERM/SIGINT with no child process left behind.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, NoReturn

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskGroup

from mcp_proxy import __version__
from mcp_proxy.config import Config, SecretStore
from mcp_proxy.paths import Paths
from mcp_proxy.stdio_guard import WireFds
from mcp_proxy.upstreams.children import exiting, kill_all_children, live_process_groups, start_early

if TYPE_CHECKING:
    from mcp_proxy.audit import AuditLog
    from mcp_proxy.audit.auditlog import ArgumentRules
    from mcp_proxy.auth.session import SignInInfo
    from mcp_proxy.policy import PolicyEngine
    from mcp_proxy.server.call import JsonObject
    from mcp_proxy.server.first_answers import FirstAnswers
    from mcp_proxy.server.inflight import CallsInFlight
    from mcp_proxy.server.wire import WireLink

log = logging.getLogger("mcp_proxy")

SHUTDOWN_BUDGET = 2.0  # seconds the upstreams get to stop after a signal
STOP_GRACE = 3.0  # seconds calls in flight get to finish at a stop (clients kill after about 5 s)


def open_policy(config: Config, paths: Paths, store: SecretStore,
                emit: Callable[[str, JsonObject], object]) -> PolicyEngine:
    from mcp_proxy.policy import PolicyEngine

    return PolicyEngine(config.policy, paths, emit=emit, secret_store=store)


def open_audit(config: Config, paths: Paths, store: SecretStore, instance_id: str,
               argument_rules: ArgumentRules | None = None) -> AuditLog:
    import socket

    from mcp_proxy.audit import AuditContext, AuditLog

    def secret_values() -> list[str]:
        # Values of the secrets this config references, so the audit can redact them if a model echoes one.
        from mcp_proxy.server.secrets_in_use import known_secret_values

        return known_secret_values(config, store)

    context = AuditContext(proxy_version=__version__, instance_id=instance_id, host=socket.gethostname(),
                           user=config.user_email, governed=config.governed)
    return AuditLog.open(paths, config.audit, context, secret_values=secret_values, argument_rules=argument_rules)


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _watch_signals(on_signal: Callable[[], Awaitable[None]], *,
                         task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            await on_signal()
            return


def _load_server_modules() -> None:
    """The MCP SDK and what is built on it: run in a worker thread while the first answers go out."""
    import mcp_proxy.server.app
    import mcp_proxy.server.hub
    import mcp_proxy.upstreams.factory  # noqa: F401


async def serve_async(config: Config, paths: Paths, wire: WireFds, log_level: str) -> None:
    audit: AuditLog | None = None
    inflight: CallsInFlight | None = None  # once the server is built
    background: list[anyio.CancelScope] = []  # the server's background tasks, once it is built

    async def settle_calls() -> None:
        # Calls in flight finish within the grace, or are cancelled and recorded as cancelled. A few turns of
        # the loop first, so a call read just before stdin closed has reached the pipeline.
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        if inflight is None:
            return
        if len(inflight):
            log.info("waiting up to %g s for %d call(s) in flight", STOP_GRACE, len(inflight))
        cancelled = await inflight.settle(STOP_GRACE)
        if cancelled:
            log.warning("%d call(s) still running after %g s were cancelled", cancelled, STOP_GRACE)

    async def on_signal() -> None:
        # A signal ends the process ourselves (the SDK's server would wait for stdin): let calls in flight
        # settle, stop upstreams (bounded), reap children, flush the audit, exit.
        log.info("signal received; shutting down")
        await settle_calls()
        exiting()
        if not background:
            kill_all_children()  # started early, before anything that stops them gently was built
        for scope in background:
            scope.cancel()
        with anyio.move_on_after(SHUTDOWN_BUDGET):
            while live_process_groups():
                await anyio.sleep(0.02)
        kill_all_children()
        if audit is not None:
            audit.close()
        logging.shutdown()
        os._exit(0)

    async with anyio.create_task_group() as outer:
        await outer.start(_watch_signals, on_signal)  # before any child exists, so none outlives a signal
        await start_early(config)  # first: the children load while this process loads everything else
        import uuid

        from mcp_proxy.logsetup import setup_logging
        from mcp_proxy.server.first_answers import FirstAnswers
        from mcp_proxy.server.wire import wire_streams

        setup_logging(log_level, paths.log_dir)
        store = SecretStore(config.secrets_store, paths.data_dir / "secrets.json")
        policy: PolicyEngine | None = None

        def argument_rules(key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
            # The policy's per-tool redact/hash fields. The policy records its own events in the audit log, so it
            # is opened second; nothing is appended before it exists.
            return policy.argument_rules(key) if policy is not None else ((), ())

        audit = open_audit(config, paths, store, uuid.uuid4().hex, argument_rules)
        policy = open_policy(config, paths, store, audit.append_nowait)
        policy.load_cached()
        audit.context.policy_revision = policy.revision
        first = FirstAnswers(config, paths, policy)
        async with wire_streams(wire, on_eof=settle_calls, max_message_bytes=config.server.max_message_bytes,
                                first=first) as client_wire:
            async with anyio.create_task_group() as loading:  # the first answers go out meanwhile
                loading.start_soon(_cancel_when, client_wire.gone, loading.cancel_scope)
                await anyio.to_thread.run_sync(_load_server_modules, abandon_on_cancel=True)
                loading.cancel_scope.cancel()
            if client_wire.gone.is_set():
                log.info("the client closed stdin before the server was up; shutting down")
                kill_all_children()
                outer.cancel_scope.cancel()
                audit.close()
                return
            from mcp_proxy.server.inflight import CallsInFlight

            inflight = CallsInFlight()
            await _serve_loaded(config, paths, store, audit, policy, first, inflight, client_wire, background)
        outer.cancel_scope.cancel()
        audit.close()


async def _serve_loaded(config: Config, paths: Paths, store: SecretStore, audit: AuditLog, policy: PolicyEngine,
                        first: FirstAnswers, inflight: CallsInFlight, client_wire: WireLink,
                        background_scopes: list[anyio.CancelScope]) -> None:
    """Build the server on the loaded SDK, and serve until the client closes stdin. `background_scopes` gets the
    scope of the background tasks (a signal cancels it)."""
    from mcp_proxy.auth import AuthEvents
    from mcp_proxy.catalog.cache import era_memory
    from mcp_proxy.server.app import build_server, initialization_options
    from mcp_proxy.server.client import ClientLink
    from mcp_proxy.server.fastpath import ToolCallFastPath
    from mcp_proxy.server.hub import Hub
    from mcp_proxy.server.identity import Identity, adopt_stored_identities
    from mcp_proxy.upstreams.factory import build_upstreams

    link = ClientLink(audit.context)
    identity = Identity(config.user_email, audit.context, audit.append, link.list_changed)

    def auth_events(key: str) -> AuthEvents:
        # Token events go into the audit log, tokens into its redaction, a completed sign-in to the identity.
        async def announce(info: SignInInfo) -> None:
            await identity.confirmed(info.identity_email, key)

        return AuthEvents(emit=audit.append_nowait, reveal=audit.add_secret, announce=announce)

    upstreams = build_upstreams(config, paths, store, auth_events, eras=era_memory(paths.tool_cache_dir))
    adopt_stored_identities(identity, upstreams)
    hub = Hub(config, paths, upstreams, policy, audit, link, identity, inflight)
    server = build_server(hub)
    first.catalog = hub
    governed = f"policy revision {policy.revision or 'none (nothing is exposed until a valid policy arrives)'}" \
        if config.governed else "UNGOVERNED (no [policy]: every tool is exposed)"
    log.info("mcp-access-proxy %s serving; config %s; upstreams %s; %s", __version__, config.path,
             ", ".join(f"{k} ({u.kind})" for k, u in upstreams.items()) or "none", governed)

    async def listed(key: str, result: JsonObject) -> None:
        # Each list the SDK gives is kept for the next start, if it is still the list of now (it is kept with what
        # it depends on as of now); one that differs from an early answer is announced.
        shown = [t.get("name") for t in result.get("tools") or () if isinstance(t, dict)]
        if shown == [t.name for t in (await hub.list_tools()).tools]:
            first.record_tools_list(key, result, identity.user)
        if client_wire.early is not None and client_wire.early.early_list_was_stale(result.get("tools")):
            await link.list_changed()

    async with anyio.create_task_group() as background:
        background_scopes.append(background.cancel_scope)
        for upstream in upstreams.values():
            background.start_soon(upstream.run, hub.events())
        background.start_soon(policy.run, hub.policy_changed, hub.stop)
        _start_shipper(background, config, paths, store, audit, hub.stop)
        background.start_soon(audit.close_unfinished)  # kill -9'd processes' open calls, after start-up
        read_stream, write_stream = client_wire.open_sdk(ToolCallFastPath(link, hub.call), listed)
        await server.run(read_stream, write_stream, initialization_options(server))
        log.info("the client closed stdin; shutting down")
        hub.stop.set()
        exiting()  # the client waits for us to leave: children get short graces (upstreams/stdio_transport.py)
        background.cancel_scope.cancel()


def _start_shipper(tg: TaskGroup, config: Config, paths: Paths, store: SecretStore, audit: AuditLog,
                   stop: anyio.Event) -> None:
    if not config.audit.collector:
        return
    from mcp_proxy.audit import run_shipper

    # The shipper's own events (a batch set aside, records dropped) go into this process's audit log.
    tg.start_soon(partial(run_shipper, emit=audit.append_nowait), paths, config.audit, store, stop)


def serve(config: Config, paths: Paths, wire: WireFds, log_level: str) -> NoReturn:
    """Serve until the client closes stdin or a signal, then exit the process. Logging is set up (at `log_level`)
    once the upstreams' children are started: they load while this process does the rest."""
    anyio.run(serve_async, config, paths, wire, log_level)
    # Everything is written and closed (the audit above, the log here). Leave without the interpreter's teardown:
    # unwinding tens of MiB of modules and objects takes longer than the whole shutdown, and the client waits.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
