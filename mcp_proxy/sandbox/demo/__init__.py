"""`mcp-access-proxy demo`: the whole mission on the built-in sandbox, with no account and no network.

Starts local stand-ins for PagerDuty (REST, its OAuth server and its hosted MCP server), Opsgenie, JSM
Operations, Statuspage and UptimeObserver,
a policy server and a collector on 127.0.0.1; drafts, approves and signs a policy as an administrator would;
runs the real proxy in front of them with a generated config under a temporary home; and drives one
scripted client session through it, printing what happens.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

import anyio


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the sandbox is stopped and its directory (the sandbox's secrets and
    tokens) removed on the way out, where the default action would kill the process and leave both."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the clean-up short
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(*, keep: bool = False, out: TextIO = sys.stdout) -> int:
    with _sigterm_as_interrupt():
        return _run_demo(keep, out)


def _run_demo(keep: bool, out: TextIO) -> int:
    from mcp_proxy.sandbox.demo.session import Transcript, client_snippet, run_session, shell_hint
    from mcp_proxy.sandbox.demo.world import World

    started = time.monotonic()
    t = Transcript(out)
    root = Path(tempfile.mkdtemp(prefix="mcp-access-proxy-demo-"))
    world = World(root)
    proxy_log = root / "proxy-stderr.log"
    failed = False  # only a failure keeps the directory, for its logs; a success or an interruption removes it
    try:
        t.heading("mcp-access-proxy demo: a governed MCP gateway, end to end, on 127.0.0.1 (no account, no network)")
        world.start()
        world.publish_policy()
        t.say("Sandbox: " + ", ".join(f"{name} {server.url}" for name, server in world.servers.items())
              + f", uptimeobserver {world.uptimeobserver_url}, pagerduty hosted MCP {world.pagerduty_mcp_url}",
              indent=0)
        t.say(f"Proxy config {world.config_path}; the policy was drafted from the catalog, decided and signed "
              f"(revision {world.policy_revision}); the proxy verifies it with the public key in its config.",
              indent=0)
        with open(proxy_log, "w", encoding="utf-8") as errlog:
            anyio.run(run_session, world, t, errlog)
        print(f"\nDone in {time.monotonic() - started:.1f} s.", file=out)
        if keep:
            print("\nThe sandbox keeps running. To try it from a real client, add this entry to its config "
                  "(see client-configs/ for each client's file), then restart the client:\n", file=out)
            print(client_snippet(world), file=out)
            try:  # the prompt inside: a stop sent as soon as it is read may arrive before the loop starts
                print(f"\nThe audit log, as it grows: {shell_hint(world)}\nThe proxy's log: {proxy_log}\n"
                      "Press Ctrl-C to stop the sandbox.", file=out, flush=True)
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("\nStopping the sandbox.", file=out, flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - the demo reports what failed and where to look
        failed = True
        print(f"\nThe demo failed: {type(exc).__name__}: {exc}", file=out)
        print(f"Its files are kept in {root}; the proxy's log is {proxy_log}; its last lines:", file=out)
        try:
            for line in proxy_log.read_text(encoding="utf-8").splitlines()[-15:]:
                print(f"  {line}", file=out)
        except OSError:
            pass
        return 1
    finally:
        world.stop()
        if not failed:
            shutil.rmtree(root, ignore_errors=True)
