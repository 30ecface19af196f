"""`doctor`: one line per check, with the fix; exit 1 when something is broken."""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, CliContext
from mcp_proxy.cli._args import add_command

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Check:
    status: str
    name: str
    detail: str


class Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, status: str, name: str, detail: str) -> None:
        self.checks.append(Check(status, name, detail))
        print(f"[{status:>4}] {name}: {detail}", flush=True)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "doctor", "check config, paths, secrets, upstreams, tokens, policy, audit, clients")
    p.add_argument("--offline", action="store_true", help="skip checks that contact upstreams")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per upstream check (default 15)")
    p.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.config import ConfigError

    report = Report()
    try:
        config = ctx.config()
    except ConfigError as exc:
        report.add(FAIL, "config", str(exc))
        return EXIT_FAILURE
    report.add(OK, "config", f"{ctx.config_path} ({len(config.upstreams)} upstreams)")
    _check_paths(report, ctx)
    store = ctx.secret_store()
    _check_keychain(report, store, config)
    _check_secrets(report, config, store)
    if not args.offline:
        _check_upstreams(report, config, ctx, store, args.timeout)
    _check_tokens(report, config, ctx, store)
    count = _check_policy(report, config, ctx, store, sync=not args.offline)
    _check_audit(report, config, ctx, store)
    _check_clients(report, count)
    print(f"\n{'something is broken: fix the FAIL lines above' if report.failed else 'all good'}")
    return EXIT_FAILURE if report.failed else EXIT_OK


def _check_paths(report: Report, ctx: CliContext) -> None:
    paths = ctx.paths
    for label, path in (("data dir", paths.data_dir), ("cache dir", paths.cache_dir), ("log dir", paths.log_dir)):
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".doctor-probe"
            probe.write_text("ok")
            probe.unlink()
            report.add(OK, label, str(path))
        except OSError as exc:
            report.add(FAIL, label, f"{path} is not writable ({exc.strerror}); fix its permissions or set "
                                    "MCP_ACCESS_PROXY_HOME to a writable directory")


def _check_keychain(report: Report, store: Any, config: Any) -> None:
    if store.backend == "file":
        report.add(WARN, "secret store", "the opt-in 0600 file store is in use ([secrets] store = \"file\"); "
                                         "prefer the OS keychain where one works")
        return
    from mcp_proxy.server.secrets_in_use import secret_refs

    available, name = store.keyring_available()
    needed = any(r.scheme == "keyring" for r in secret_refs(config)) or any(
        u.auth == "oauth" for u in config.upstreams.values())
    if available:
        report.add(OK, "keychain", name)
    else:
        report.add(FAIL if needed else WARN, "keychain",
                   f"no usable keychain backend ({name}); on headless Linux run a Secret Service "
                   "(dbus-run-session + gnome-keyring-daemon --unlock) or set [secrets] store = \"file\"")


def _check_secrets(report: Report, config: Any, store: Any) -> None:
    from mcp_proxy.config import SecretError
    from mcp_proxy.server.secrets_in_use import secret_refs

    for ref in secret_refs(config):
        try:
            ref.resolve(store)
            report.add(OK, f"secret {ref.where}", f"{ref} resolves")
        except SecretError as exc:
            report.add(FAIL, f"secret {ref.where}", str(exc))


def _check_upstreams(report: Report, config: Any, ctx: CliContext, store: Any, timeout: float) -> None:
    import anyio

    from mcp_proxy.upstreams.health import check_upstreams

    results = anyio.run(check_upstreams, config, ctx.paths, store, timeout)
    for key, check in sorted(results.items()):
        report.add(OK if check.ok else FAIL, f"upstream {key}", check.detail)
        if check.tools is not None and check.cache_identity:
            # What doctor saw is the truth: refresh the tool cache so the policy and budget checks count it.
            from mcp_proxy.catalog.cache import save_tools

            with contextlib.suppress(OSError):  # the paths check above already reported an unwritable cache dir
                save_tools(ctx.paths.tool_cache_dir, key, check.cache_identity, check.tools)


def _check_tokens(report: Report, config: Any, ctx: CliContext, store: Any) -> None:
    for key, cfg in sorted(config.upstreams.items()):
        if cfg.auth != "oauth" or cfg.oauth is None or (cfg.kind == "mcp" and not cfg.url):
            continue
        from mcp_proxy.auth import TokenBroker

        info = TokenBroker.for_upstream(cfg, ctx.paths, store).token_info()
        if info is None:
            report.add(FAIL, f"sign-in {key}", f"not signed in; run `mcp-access-proxy login {key}`")
            continue
        remaining = (info.expires_at or 0) - time.time() if getattr(info, "expires_at", None) else None
        who = getattr(info, "identity_email", None) or "unknown user"
        missing = getattr(info, "missing_scopes", None) or ()
        detail = f"signed in as {who}"
        if remaining is not None:
            detail += f", access token {'expired' if remaining <= 0 else f'valid for {remaining / 3600:.1f} h'} " \
                      "(refreshed automatically)"
        if missing:
            report.add(WARN, f"sign-in {key}", f"{detail}; missing scopes {' '.join(missing)}: ask the OAuth app's "
                                                f"admin to grant them, then `mcp-access-proxy login {key}` again")
        else:
            report.add(OK, f"sign-in {key}", detail)


def _check_policy(report: Report, config: Any, ctx: CliContext, store: Any, *, sync: bool) -> int:
    from mcp_proxy.catalog.offline import load_catalog_entries
    from mcp_proxy.server.run import open_policy

    policy = open_policy(config, ctx.paths, store, lambda *_: None)
    policy.load_cached()
    if config.governed and sync:
        # Fetch once, as serve would: is the source reachable, and does what it serves verify?
        import anyio

        result = anyio.run(policy.sync)
        status = OK if result.ok else (WARN if policy.problem is None else FAIL)
        report.add(status, "policy source", result.message + ("" if result.ok else (
            "; the cached policy stays active" if policy.problem is None else "")))
    entries, unknown = load_catalog_entries(config, ctx.paths)
    user = ctx.user()
    exposed = sum(1 for e in entries if policy.decide(e.facts, user).allowed)
    if not config.governed:
        report.add(WARN, "policy", "ungoverned: no [policy] section, so every tool is exposed")
    else:
        policy_status = policy.status()
        line = getattr(policy_status, "summary", None)
        problem = getattr(policy_status, "problem", None)
        text = line() if callable(line) else str(policy_status)
        report.add(FAIL if problem else OK, "policy", text)
    for key in unknown:
        report.add(WARN, f"tools {key}", "tool list not known yet; start the proxy once or run "
                                          "`mcp-access-proxy tools --refresh`")
    report.add(OK, "tools", f"{exposed} of {len(entries)} upstream tools exposed to {user or 'you'}")
    return exposed


def _check_audit(report: Report, config: Any, ctx: CliContext, store: Any) -> None:
    from mcp_proxy.audit import audit_health

    for status, name, detail in audit_health(ctx.paths, config.audit):
        report.add(status, name, detail)


def _check_clients(report: Report, tool_count: int) -> None:
    from mcp_proxy.clients import scan_client_configs

    found = False
    for status in scan_client_configs():
        if status.error:
            report.add(FAIL, f"client {status.client.display_name}", status.error)
        for entry in status.entries:
            found = True
            name = f"client {entry.client.display_name}"
            if entry.problems:
                report.add(FAIL, name, f"{entry.config_file}: " + "; ".join(entry.problems))
            else:
                report.add(OK, name, f"{entry.config_file} runs {entry.command}")
            warning = entry.client.budget_warning(tool_count + 2)
            if warning:
                report.add(WARN, f"{name} tool budget", warning)
    if not found:
        report.add(WARN, "clients", "no client config points at this proxy yet; run `mcp-access-proxy install CLIENT`")
