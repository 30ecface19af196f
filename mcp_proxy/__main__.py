"""Console entry point: `mcp-access-proxy` and `python -m mcp_proxy`.

With no command (or `serve`), stdio is claimed before any other import so
that nothing but protocol can ever reach stdout, and core dumps are turned
off, since the server holds tokens in memory.
"""

from __future__ import annotations

import contextlib
import sys


def _is_serve(argv: list[str]) -> bool:
    commands = [a for a in argv if not a.startswith("-")]
    if any(a in ("-h", "--help", "--version") for a in argv):
        return False
    if not commands:
        return True
    # `--config PATH` / `--log-level LEVEL` take a value: skip it.
    skip_next = False
    for a in argv:
        if skip_next:
            skip_next = False
            continue
        if a in ("--config", "--log-level"):
            skip_next = True
            continue
        if a.startswith("-"):
            continue
        return a == "serve"
    return True


def disable_core_dumps() -> None:
    """No core file for this process: `serve` holds OAuth tokens in memory, and a crash must not write them to
    disk. Soft and hard limit both, so nothing in the process can raise it again. Skipped where the OS has no
    such limit (no `resource` module on Windows)."""
    try:
        import resource
    except ImportError:
        return
    # Lowering a limit is always allowed; only a platform without RLIMIT_CORE refuses.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    wire = None
    if _is_serve(args):
        from mcp_proxy.stdio_guard import claim_stdio

        wire = claim_stdio()
        disable_core_dumps()
    from mcp_proxy.cli import run

    return run(args, wire=wire)


if __name__ == "__main__":
    sys.exit(main())
