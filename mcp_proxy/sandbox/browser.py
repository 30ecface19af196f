"""A stand-in browser for the sandbox and tests: `python -m mcp_proxy.sandbox.browser URL`.

Point `BROWSER` at it (Python's `webbrowser` runs `$BROWSER URL`): it follows
the authorization URL with plain HTTP GETs, as a user who clicks "Allow" would,
so the sandbox OAuth server redirects to the proxy's loopback callback.
"""

from __future__ import annotations

import shlex
import sys
import urllib.request


def browser_command() -> str:
    """A BROWSER value that runs this stand-in with the current interpreter."""
    return f"{shlex.quote(sys.executable)} -m mcp_proxy.sandbox.browser %s"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m mcp_proxy.sandbox.browser URL", file=sys.stderr)
        return 2
    url = argv[0]
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        print("the sandbox browser only opens loopback URLs", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # follows the redirect to the callback
            response.read()
    except Exception as exc:  # noqa: BLE001 - report, like a browser showing an error page
        print(f"sandbox browser: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
