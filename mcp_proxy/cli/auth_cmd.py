"""`login UPSTREAM`, `logout UPSTREAM`, `whoami`: per-user OAuth sign-in, sign-out, and who each
upstream sees.

Progress (the URL to copy, the countdown) goes to stderr; the result to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import TYPE_CHECKING

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, err, quiet_logging
from mcp_proxy.cli._args import add_command
from mcp_proxy.cli.auth_expiry import describe_expiry

if TYPE_CHECKING:
    from mcp_proxy.config import UpstreamConfig

LOGIN_TIMEOUT = 300.0
LOGOUT_LOCK_WAIT = 60.0  # a refresh holds the lock for at most its own lock wait plus one request


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "login", "sign in to an upstream with your own account (OAuth in the browser)")
    p.add_argument("upstream", metavar="UPSTREAM", help="the upstream's key in the config, e.g. pd")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; print the URL to open")
    p.add_argument("--timeout", type=float, default=LOGIN_TIMEOUT,
                   help=f"seconds to wait for the browser (default {LOGIN_TIMEOUT:g})")
    p.set_defaults(func=_login)

    p = add_command(sub, "logout", "forget your sign-in to an upstream, revoking the token where possible")
    p.add_argument("upstream", metavar="UPSTREAM")
    p.add_argument("--no-revoke", action="store_true", help="only forget the token here; do not revoke it")
    p.set_defaults(func=_logout)

    p = add_command(sub, "whoami", "who each upstream sees you as, token expiry and scopes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--offline", action="store_true", help="do not ask the vendors; show what is stored")
    p.set_defaults(func=_whoami)


# -- helpers -------------------------------------------------------------------------
def _oauth_upstream(args: argparse.Namespace, ctx: CliContext) -> UpstreamConfig | None:
    """What `login` and `logout` start with: logging for a terminal, and the upstream the command names; None
    when it has no per-user sign-in, after saying why."""
    quiet_logging(args)
    key = args.upstream
    config = ctx.config()
    cfg = config.upstreams.get(key)
    if cfg is None:
        known = ", ".join(sorted(config.upstreams)) or "none"
        err(f"mcp-access-proxy: there is no upstream {key!r} in {ctx.config_path} (configured: {known})")
        return None
    if cfg.auth != "oauth" or cfg.oauth is None:
        err(f"mcp-access-proxy: upstreams.{key} does not use per-user sign-in (auth = \"{cfg.auth}\"); set "
            f"auth = \"oauth\" and client_id to sign in with your own account")
        return None
    if cfg.kind == "mcp" and not cfg.url:
        err(f"mcp-access-proxy: upstreams.{key} is a local command; OAuth sign-in applies to url upstreams only")
        return None
    return cfg


class _Countdown:
    """Seconds left, on stderr: rewritten in place on a terminal, a line every 15 s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last: int | None = None

    def __call__(self, left: float) -> None:
        seconds = int(left)
        if self.tty:
            sys.stderr.write(f"\r  waiting for the browser sign-in: {seconds:4d} s left ")
            sys.stderr.flush()
        elif self.last is None or self.last - seconds >= 15:
            self.last = seconds
            print(f"  waiting for the browser sign-in: {seconds} s left", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 50 + "\r")


def _open_in_background(url: str) -> threading.Thread:
    def run() -> None:
        import webbrowser  # honours BROWSER

        try:
            opened = webbrowser.open(url)
        except Exception:  # noqa: BLE001 - no browser at all
            opened = False
        if not opened:
            print("  no browser could be opened here: open the URL above yourself", file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, daemon=True, name="open-browser")
    thread.start()
    return thread


# -- login ----------------------------------------------------------------------------
def _login(args: argparse.Namespace, ctx: CliContext) -> int:
    cfg = _oauth_upstream(args, ctx)
    if cfg is None:
        return EXIT_USAGE
    if cfg.kind == "mcp":
        return _login_mcp(args, ctx, cfg)
    from mcp_proxy.auth.broker import TokenBroker
    from mcp_proxy.auth.errors import SignInError
    from mcp_proxy.auth.session import ElsewhereSignIn, SignInSession

    broker = TokenBroker.for_upstream(cfg, ctx.paths, ctx.secret_store())
    try:
        session = broker.begin_sign_in_blocking(lifetime=args.timeout)
    except SignInError as exc:
        err(f"mcp-access-proxy: cannot sign in to '{cfg.key}': {exc}")
        return EXIT_FAILURE
    if isinstance(session, ElsewhereSignIn):
        err(f"mcp-access-proxy: another proxy process is running a sign-in on port {session.port} (a tool call in your "
            "AI client started it); finish it in the browser tab it opened, or wait a few minutes and try again")
        return EXIT_FAILURE
    if not isinstance(session, SignInSession):
        # Joined or already signed in: neither happens here, `login` always starts its own sign-in and no
        # other runs in this process.
        err(f"mcp-access-proxy: cannot sign in to '{cfg.key}': a sign-in is already running in this process")
        return EXIT_FAILURE
    err(f"Sign in to {broker.vendor} (upstream '{cfg.key}') in your browser. If it does not open, copy this URL "
        f"into one:\n\n  {session.url}\n")
    if not args.no_browser:
        _open_in_background(session.url)
    countdown = _Countdown()
    try:
        info = session.wait_blocking(args.timeout, countdown)
    except SignInError as exc:
        countdown.done()
        err(f"mcp-access-proxy: sign-in to '{cfg.key}' did not complete: {exc}")
        return EXIT_FAILURE
    finally:
        session.end() if not session.listener.done.is_set() else session.close()
    countdown.done()
    config = ctx.config()
    from mcp_proxy.cli.audit_note import record

    record(ctx, "auth.signed_in", {"upstream": cfg.key, "user.email": info.identity_email, "origin": "login"},
           user=info.identity_email)
    asked = broker.provider.identity_path if broker.provider and broker.provider.identity_path else "/users/me"
    who = info.identity_email or f"an account the proxy could not name (GET {asked} failed)"
    print(f"Signed in to '{cfg.key}' ({broker.vendor}) as {who}.")
    if info.region:
        print(f"  region: {info.region}{' (from the sign-in)' if broker.oauth.region_from_token else ''}")
    print(f"  access token: {describe_expiry(info.expires_at)}; refreshed automatically")
    print(f"  scopes granted: {' '.join(info.scopes) or 'none'}")
    if info.missing_scopes:
        print(f"  MISSING scopes: {' '.join(info.missing_scopes)}; tools that need them will be refused. Ask the "
              f"OAuth app's admin to grant them, then run `mcp-access-proxy login {cfg.key}` again.")
    if info.identity_email and config.user_email and info.identity_email.lower() != config.user_email.lower():
        print(f"  note: [user] email is {config.user_email}, but {broker.vendor} confirms {info.identity_email}; "
              "audit records use the confirmed one")
    return EXIT_OK


def _login_mcp(args: argparse.Namespace, ctx: CliContext, cfg: UpstreamConfig) -> int:
    import anyio

    from mcp_proxy.auth.mcp_oauth import mcp_oauth_auth
    from mcp_proxy.errors import ProxyError

    server_url = cfg.url
    if not server_url:  # `_oauth_upstream` refused it already
        err(f"mcp-access-proxy: upstreams.{cfg.key} is a local command; OAuth sign-in applies to url upstreams only")
        return EXIT_USAGE
    countdown = _Countdown()

    async def show(url: str) -> None:
        err(f"Sign in to '{cfg.key}' ({cfg.url}) in your browser. If it does not open, copy this URL into one:"
            f"\n\n  {url}\n")
        if not args.no_browser:
            _open_in_background(url)

    auth = mcp_oauth_auth(cfg, ctx.paths, ctx.secret_store(), show, interactive=True, fresh=True, wait=args.timeout,
                          tick=countdown)

    async def connect() -> int:
        import httpx2
        import mcp_types as types
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30.0, read=args.timeout + 30)) as http:
            transport = streamable_http_client(server_url, http_client=http)
            async with Client(transport, mode="legacy", cache=None,
                              client_info=types.Implementation(name="mcp-access-proxy", version="login")) as client:
                tools = await client.list_tools()
        return len(tools.tools)

    if cfg.transport == "sse":
        err(f"mcp-access-proxy: upstreams.{cfg.key} uses SSE; sign-in supports Streamable HTTP servers")
        return EXIT_FAILURE
    try:
        count = anyio.run(connect)
    except BaseException as exc:  # noqa: BLE001 - ExceptionGroup from the transport; find the reason
        from mcp_proxy.upstreams.mcp_failures import leaf_of

        leaf = leaf_of(exc)
        if isinstance(leaf, KeyboardInterrupt):
            raise leaf from None
        countdown.done()
        # A ProxyError's text is written to be shown (SignInError, SignInRequired, RefreshFailed, SecretError);
        # anything else may echo a request or a token: its type only.
        reason = str(leaf) if isinstance(leaf, ProxyError) else type(leaf).__name__
        err(f"mcp-access-proxy: sign-in to '{cfg.key}' did not complete: {reason}")
        return EXIT_FAILURE
    countdown.done()
    from mcp_proxy.cli.audit_note import record

    record(ctx, "auth.signed_in", {"upstream": cfg.key, "origin": "login"})
    info = auth.storage.tokens.info()
    print(f"Signed in to '{cfg.key}' ({cfg.url}); {count} tools visible.")
    if info is not None:
        print(f"  access token: {describe_expiry(info.expires_at)}; scopes: {' '.join(info.scopes) or 'not stated'}")
    return EXIT_OK


# -- logout ---------------------------------------------------------------------------
def _logout(args: argparse.Namespace, ctx: CliContext) -> int:
    cfg = _oauth_upstream(args, ctx)
    if cfg is None:
        return EXIT_USAGE
    from mcp_proxy.auth.errors import AuthUnavailable

    store = ctx.secret_store()
    if cfg.kind == "mcp":
        from mcp_proxy.auth.vault import TokenStore, refresh_lock
        from mcp_proxy.config import SecretError
        from mcp_proxy.fsutil import LockTimeout

        try:
            # The lock a refresh in a running `serve` holds: that refresh finishes first and this removes its
            # result, instead of the refresh writing the token back after it was removed.
            with refresh_lock(ctx.paths, cfg.key, timeout=LOGOUT_LOCK_WAIT):
                had = TokenStore(cfg.key, store, ctx.paths).forget()
        except LockTimeout:
            err(f"mcp-access-proxy: another proxy process has been refreshing the '{cfg.key}' token for "
                f"{LOGOUT_LOCK_WAIT:g} s; nothing was removed. Try again in a moment")
            return EXIT_FAILURE
        except SecretError as exc:
            err(f"mcp-access-proxy: {exc}")
            return EXIT_FAILURE
        if had:
            from mcp_proxy.cli.audit_note import record

            record(ctx, "auth.signed_out", {"upstream": cfg.key, "origin": "logout", "revoked": False})
        print(f"Signed out of '{cfg.key}': the token was removed from this machine." if had else
              f"'{cfg.key}': not signed in; nothing to remove.")
        return EXIT_OK
    from mcp_proxy.auth.broker import TokenBroker
    from mcp_proxy.fsutil import LockTimeout

    broker = TokenBroker.for_upstream(cfg, ctx.paths, store)
    try:
        result = broker.sign_out(revoke=not args.no_revoke)
    except AuthUnavailable as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE
    except LockTimeout:
        err(f"mcp-access-proxy: another proxy process has been refreshing the '{cfg.key}' token for a while; "
            "nothing was removed. Try again in a moment")
        return EXIT_FAILURE
    if not result["had_token"]:
        print(f"'{cfg.key}': not signed in; nothing to remove.")
        return EXIT_OK
    from mcp_proxy.cli.audit_note import record

    record(ctx, "auth.signed_out", {"upstream": cfg.key, "user.email": result["identity_email"], "origin": "logout",
                                    "revoked": result["revoked"]}, user=result["identity_email"])
    who = f" ({result['identity_email']})" if result["identity_email"] else ""
    if result["revoked"] is True:
        print(f"Signed out of '{cfg.key}'{who}: {broker.vendor} revoked the token and it was removed from this "
              "machine.")
    elif result["revoked"] is False:
        hint = broker.provider.console_hint if broker.provider else "the vendor's settings for the app"
        print(f"Signed out of '{cfg.key}'{who}: the token was removed from this machine, but {broker.vendor} did not "
              f"confirm the revocation ({result['detail']}). To be sure, revoke it in {hint}.")
    else:
        print(f"Signed out of '{cfg.key}'{who}: the token was removed from this machine"
              f"{' (not revoked, as asked)' if args.no_revoke else f'; {broker.vendor} has no revocation endpoint'}.")
        if not args.no_revoke and broker.provider is not None and broker.provider.console_hint:
            print(f"  To end the app's access to your account as well, remove it at {broker.provider.console_hint}.")
    return EXIT_OK


# -- whoami ---------------------------------------------------------------------------
def _whoami(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.cli.auth_whoami import describe_all

    config = ctx.config()
    rows = describe_all(config, ctx.paths, ctx.secret_store(), live=not args.offline)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    audit_user = next((r["identity"] for r in rows if r.get("confirmed")), None) or config.user_email
    print(f"audit records name: {audit_user or '(no [user] email and no sign-in)'}")
    for row in rows:
        print(f"{row['upstream']} ({row['kind']}, {row['auth']}): {row['summary']}")
        for line in row.get("details", []):
            print(f"  {line}")
    return EXIT_OK
