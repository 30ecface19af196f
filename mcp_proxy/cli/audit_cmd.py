"""`audit status [--json]`, `audit tail [-n N] [-f] [--json]`, `audit push [--retry-rejected]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, CliContext, err
from mcp_proxy.cli._args import add_action, add_group


def register(sub: argparse._SubParsersAction) -> None:
    cmds = add_group(sub, "audit", "the local audit log: status, tail, push")
    add_action(cmds, "status", "backlog, last push and its result, oldest unsent record, chain check", _status,
               json=True)

    s = add_action(cmds, "tail", "the newest records, one line each (every process's)", _tail)
    s.add_argument("-n", type=int, default=20, metavar="N", help="how many records (default 20)")
    s.add_argument("-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C")
    s.add_argument("--json", action="store_true", help="print the records as stored (JSON lines)")
    s.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)

    s = add_action(cmds, "push", "ship the spool to the collector now", _push)
    s.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for another process's push to finish (default 10)")
    s.add_argument("--retry-rejected", action="store_true",
                   help="first send again the batches set aside in rejected/ (each is removed once the "
                        "collector accepts it; one refused again stays)")


# -- status --------------------------------------------------------------------
def _status(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.audit.status import collect, kib, set_aside_text, when

    config = ctx.config()
    s = collect(ctx.paths, config.audit)
    chain_ok = s["chain"]["ok"]
    if args.json:
        print(json.dumps(s, indent=2))
        return EXIT_OK if chain_ok else EXIT_FAILURE
    print(f"audit spool {s['spool']} ({s['durability']} durability)")
    rows = [
        ("collector", f"{s['collector']} ({s['protocol']})" if s["collector"] else "none: the log stays local"),
        ("backlog", f"{s['backlog_records']} records ({kib(s['backlog_bytes'])}) not yet acknowledged"),
        ("oldest unsent", when(s["oldest_unsent"]) if s["oldest_unsent"] else "-"),
        ("segments", f"{s['segments']} ({s['writers_alive']} being written now); "
                     f"{kib(s['disk_bytes'])} of {kib(s['quota_bytes'])} quota"),
        ("last push", f"{when(s['last_attempt'])}: {s['last_result'] or '-'}"
                      + (f" ({s['last_detail']})" if s["last_detail"] else "")),
        ("last success", when(s["last_success"])),
        ("shipped", f"{s['shipped_records']} records"),
    ]
    if s["paused"]:
        rows.append(("shipping", s["paused"]))
    if s["retry_not_before"] and s["retry_not_before"] > time.time():
        rows.append(("next try", f"in {s['retry_not_before'] - time.time():.0f} s (backing off)"))
    if s["set_aside"]["batches"]:
        rows.append(("set aside", set_aside_text(s["set_aside"])))
    if s["rejected_batches"] or s["partial_rejected_records"]:
        rows.append(("refused", f"{s['rejected_records']} records in {s['rejected_batches']} batches refused so far; "
                                f"{s['partial_rejected_records']} rejected in partial successes"))
    from mcp_proxy.audit import writability_lines

    for _status_word, name, detail in writability_lines(ctx.paths):
        rows.append((name.removeprefix("audit "), detail))
    if s["dropped_records"]:
        rows.append(("dropped", f"{s['dropped_records']} unsent records ({kib(s['dropped_bytes'])}) by the disk quota"))
    if s["torn_records"] or s["corrupt_records"] or s["unencodable_records"]:
        rows.append(("damaged", f"{s['torn_records']} torn last lines, {s['corrupt_records']} corrupt lines, "
                                f"{s['unencodable_records']} records the protocol cannot carry (never sent; "
                                "reported to the collector; the lines are kept in rejected/)"))
    if s["checkpoint_problem"]:
        rows.append(("checkpoint", s["checkpoint_problem"]))
    elif s["checkpoint_last_reset"]:
        reset = s["checkpoint_last_reset"]
        rows.append(("checkpoint", f"authenticated; reset {s['checkpoint_resets']} times, latest "
                                   f"{when(reset['at'])}: {reset['reason']}"))
    chain = s["chain"]
    torn = f"; {chain['torn_tails']} torn last records (crashes, not tampering)" if chain["torn_tails"] else ""
    rows.append(("chain", f"ok: {chain['records']} records link up{torn}" if chain_ok else
                 f"BROKEN: {chain['problem_count']} problems{torn}"))
    for name, value in rows:
        print(f"  {name:<14} {value}")
    for problem in chain["problems"]:
        print(f"    {problem}")
    for line in chain["torn"] + chain["notes"]:
        print(f"    {line}")
    if not chain_ok:
        err("the spool or its shipping checkpoint was edited or damaged; keep the files for investigation "
            "(the collector holds what was delivered)")
    return EXIT_OK if chain_ok else EXIT_FAILURE


# -- tail ----------------------------------------------------------------------
def _line(record: dict[str, Any]) -> str:
    from mcp_proxy.audit.record import describe

    when = str(record.get("time", "?")).replace("T", " ")[:23]
    client = record.get("mcp.client.name")
    tail = f"  [{client}]" if client else ""
    if not record.get("policy.governed", True):
        tail += "  UNGOVERNED"
    return f"{when}  {record.get('event_name', '?'):<22} {describe(record)}{tail}"


def _print(raw: bytes, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(raw.decode("utf-8", "replace") + "\n")
        return
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    print(_line(record) if isinstance(record, dict) else f"(damaged line: {raw[:80]!r})")


def _tail(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.audit.layout import Layout
    from mcp_proxy.audit.reader import iter_lines

    layout = Layout(ctx.paths)
    offsets: dict[str, int] = {}
    newest: list[tuple[str, bytes]] = []
    for seg in layout.segments():
        end = 0
        try:
            for line in iter_lines(seg.path):
                newest.append((_time_key(line.raw), line.raw))
                end = line.end
        except FileNotFoundError:
            continue
        offsets[seg.name] = end
    newest.sort(key=lambda item: item[0])
    for _, raw in newest[-args.n:] if args.n > 0 else []:
        _print(raw, args.json)
    sys.stdout.flush()
    if not args.follow:
        return EXIT_OK
    try:
        while True:
            time.sleep(args.interval)
            fresh: list[tuple[str, bytes]] = []
            for seg in layout.segments():
                start = offsets.get(seg.name, 0)
                if seg.size <= start:
                    continue
                try:
                    for line in iter_lines(seg.path, start):
                        fresh.append((_time_key(line.raw), line.raw))
                        offsets[seg.name] = line.end
                except FileNotFoundError:
                    continue
            for _, raw in sorted(fresh, key=lambda item: item[0]):
                _print(raw, args.json)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_OK


def _time_key(raw: bytes) -> str:
    start = raw.find(b'"time":"')
    return raw[start + 8:start + 35].decode("ascii", "replace") if start >= 0 else ""


# -- push ----------------------------------------------------------------------
def _push(args: argparse.Namespace, ctx: CliContext) -> int:
    import anyio

    config = ctx.config()
    if not config.audit.collector:
        err("mcp-access-proxy: no [audit] collector is configured, so there is nowhere to push; set "
            "collector = \"https://...\" in the config (records stay in the local spool until then)")
        return EXIT_FAILURE
    return anyio.run(_push_async, args, ctx, config)


async def _push_async(args: argparse.Namespace, ctx: CliContext, config: Any) -> int:
    import socket
    import uuid

    from mcp_proxy import __version__
    from mcp_proxy.audit import AuditContext, AuditLog
    from mcp_proxy.audit.shipper import Shipper

    store = ctx.secret_store()
    # The push's own events (a batch set aside, records dropped) are records of this process.
    context = AuditContext(proxy_version=__version__, instance_id=uuid.uuid4().hex, host=socket.gethostname(),
                           user=config.user_email, governed=config.governed)
    audit = AuditLog.open(ctx.paths, config.audit, context)
    shipper = Shipper(ctx.paths, config.audit, store, emit=audit.append_nowait)
    total = batches = partial = 0
    resent_ok = True
    try:
        if args.retry_rejected:
            resent_ok = await _resend(shipper, args.wait, config)
        for _ in range(3):
            written = audit.writer.written
            report = await shipper.push_once(force=True, lock_wait=args.wait)
            total, batches, partial = total + report.sent, batches + report.batches, partial + report.partial
            # Events this push recorded (a batch set aside, records dropped) go out in another round.
            if report.result != "ok" or audit.writer.written == written:
                break
    finally:
        await shipper.aclose()
        audit.close()
    target = f"{config.audit.collector} ({config.audit.protocol})"
    if report.result == "busy":
        err(f"mcp-access-proxy: {report.detail}; it ships every process's records, so nothing is lost. "
            "Run `mcp-access-proxy audit status` to see its result, or try again in a few seconds.")
        return EXIT_FAILURE
    if report.failed:
        when = f"; the next automatic try is in {report.retry_in:.0f} s" if report.retry_in else ""
        if report.result == "paused":
            when = ("; shipping stays paused (no automatic retry): fix [audit] headers/collector, then run "
                    "`mcp-access-proxy audit push`")
        sent = f" ({total} records in {batches} batches were accepted first)" if total else ""
        err(f"mcp-access-proxy: push to {target} {report.result}: {report.detail}{sent}{when}. The records stay in "
            "the local spool" + (" (the refused batch is kept in rejected/)" if report.result == "rejected" else ""))
        return EXIT_FAILURE
    if total == 0 and not partial:
        print(f"nothing to push: every record is acknowledged by {target}")
        return EXIT_OK if resent_ok else EXIT_FAILURE
    print(f"pushed {total} records in {batches} batches to {target}")
    if partial:
        err(f"mcp-access-proxy: the collector rejected {partial} records ({report.detail}); they are not retried "
            "(the batches are kept in rejected/)")
        return EXIT_FAILURE
    return EXIT_OK if resent_ok else EXIT_FAILURE


async def _resend(shipper: Any, wait: float, config: Any) -> bool:
    """`--retry-rejected`: send rejected/ again, say what happened; False when any batch is still there."""
    from mcp_proxy.audit.ship_rejected import Resender

    r = await Resender(shipper).run(lock_wait=wait)
    if r.result == "busy":
        err(f"mcp-access-proxy: {r.detail}; try again in a few seconds")
        return False
    if r.result == "nothing":
        print("no set-aside batches to send again (rejected/ is empty)")
        return True
    print(f"re-sent {r.sent_records} set-aside records in {r.sent_batches} batches to {config.audit.collector} "
          f"(removed from rejected/); {r.kept_records} records in {r.kept_batches} batches stay in rejected/")
    if r.result == "stopped":
        err(f"mcp-access-proxy: re-sending stopped: {r.detail}; the rest stay in rejected/, run "
            "`mcp-access-proxy audit push --retry-rejected` again later")
    for reason in r.reasons[:5]:
        err(f"mcp-access-proxy: kept in rejected/: {reason}")
    return r.kept_batches == 0
