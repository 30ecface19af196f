"""The stdio upstreams' child processes: started, registered and stopped in one place.

Every child runs in its own process group, registered here until it is reaped, so that an emergency exit
(`kill_all_children`) leaves none behind. A child can be started before the MCP SDK is loaded
(`start_early`): on a first start, with no cached tool list, the client waits for the slowest upstream to
answer, and a child that starts while the proxy loads the SDK answers that much sooner. Its transport takes
it over (`take_early`) when the process it would start is exactly this one, else starts its own.

Imports only the standard library and anyio: it runs before the SDK is loaded (server/run.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Mapping
from contextlib import suppress

import anyio
import anyio.abc

from mcp_proxy.config import Config, SecretRef

log = logging.getLogger(__name__)

# What a child inherits of the proxy's environment besides its configured `env`: the MCP SDK's rule for
# stdio servers (mcp.client.stdio.get_default_environment), which the SDK-independent start must match.
INHERITED = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")

_live_groups: set[int] = set()
_early: dict[str, tuple[tuple[str, ...], dict[str, str], str | None, anyio.abc.Process]] = {}
_exiting = False


def child_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    inherited = {k: v for k in INHERITED if (v := os.environ.get(k)) is not None and not v.startswith("()")}
    return {**inherited, **(env or {})}


async def start_child(argv: tuple[str, ...], env: dict[str, str], cwd: str | None) -> anyio.abc.Process:
    """A child in a process group of its own, registered until `reaped`; stdin/stdout/stderr are pipes."""
    process = await anyio.open_process(list(argv), env=env, cwd=cwd, stderr=-1, start_new_session=True)
    _live_groups.add(process.pid)
    return process


def reaped(process: anyio.abc.Process) -> None:
    _live_groups.discard(process.pid)


async def start_early(config: Config) -> None:
    """Start each stdio upstream whose command needs no secret, before the SDK is loaded."""
    if sys.platform == "win32":  # pragma: no cover - the SDK's own transport starts children there
        return
    for key, upstream in config.upstreams.items():
        if upstream.kind != "mcp" or not upstream.command or \
                any(isinstance(v, SecretRef) for v in upstream.env.values()):
            continue  # a secret is resolved by the upstream itself (a keychain prompt must not come first)
        argv = (upstream.command, *upstream.args)
        env = child_environment({k: v for k, v in upstream.env.items() if isinstance(v, str)})
        try:
            _early[key] = (argv, env, upstream.cwd, await start_child(argv, env, upstream.cwd))
        except OSError as exc:  # the upstream's own start reports it, with the fix
            log.debug("could not start upstream %s early (%s)", key, exc.strerror)


def take_early(key: str, argv: tuple[str, ...], env: dict[str, str], cwd: str | None) -> anyio.abc.Process | None:
    """The child started early for upstream `key`, if it is the process `argv`/`env`/`cwd` describe; a child
    started for something else is stopped."""
    early = _early.pop(key, None)
    if early is None:
        return None
    if early[:3] == (argv, env, cwd):
        return early[3]
    _kill_group(early[3].pid)
    return None


def live_process_groups() -> frozenset[int]:
    """The process groups of stdio upstreams still running."""
    return frozenset(_live_groups)


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _live_groups.discard(pgid)


def kill_all_children() -> None:
    """SIGKILL every child process group still registered (emergency exit path)."""
    _early.clear()
    for pgid in list(_live_groups):
        _kill_group(pgid)


def exiting() -> None:
    """The whole proxy is exiting: children still running are stopped with the short exit graces."""
    global _exiting
    _exiting = True


def is_exiting() -> bool:
    return _exiting
