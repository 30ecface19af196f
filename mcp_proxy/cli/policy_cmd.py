"""`policy status | sync | validate FILE | sign FILE --key KEY | explain TOOL | draft | keygen`, and the edits
`approve | disable | classify | toolset | profile` of a document (mcp_proxy/admin/ops.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, err
from mcp_proxy.cli._args import add_action, add_group


def register(sub: argparse._SubParsersAction) -> None:
    cmds = add_group(sub, "policy", "the approval policy: status, sync, validate, sign, explain, draft, keygen")
    add_action(cmds, "status", "source, revision, age, expiry and signature of the active policy", _status,
               json=True)
    add_action(cmds, "sync", "fetch the policy once and report what changed for you", _sync, json=True)

    s = add_action(cmds, "validate", "check a policy document (JSON or JWS) and say exactly what is wrong", _validate)
    s.add_argument("file", metavar="FILE")
    s.add_argument("--public-key", metavar="PEM", action="append", default=[],
                   help="verify the signature with this public key file (default: [policy] public_keys, if any)")

    s = add_action(cmds, "sign", "sign a policy document: writes a JWS (EdDSA or ES256, from the key type)", _sign)
    s.add_argument("file", metavar="FILE")
    s.add_argument("--key", metavar="KEY", required=True, help="private key PEM (Ed25519 or EC P-256)")
    s.add_argument("--out", metavar="PATH", help="write the JWS here (default: stdout)")

    s = add_action(cmds, "explain", "walk through the decision for one tool and user", _explain)
    s.add_argument("tool", metavar="TOOL", help="exposed name (pd_list_incidents) or key (pd.list_incidents)")
    s.add_argument("--user", metavar="EMAIL", help="decide for this user (default: [user] email)")

    s = add_action(cmds, "draft", "a policy listing every discovered tool as pending, with hash and class", _draft)
    s.add_argument("--out", metavar="PATH", help="write it here (default: stdout)")
    s.add_argument("--from", dest="existing", metavar="FILE",
                   help="start from this policy: keep reviewed states whose hash still matches, toolsets, profiles")
    s.add_argument("--days", type=float, default=30.0, help="expires_at this many days from now (default 30)")
    s.add_argument("--auto-approve", choices=("none", "read_only"), default="none",
                   help="defaults.auto_approve of the draft (default none)")
    s.add_argument("--trust-annotations", metavar="UPSTREAM", action="append", default=[],
                   help="add this upstream key to defaults.trust_annotations: its tools' own readOnlyHint then counts "
                        "for auto_approve (repeatable; built-in connectors need none)")

    s = add_action(cmds, "keygen", "make a signing key pair for the administrator", _keygen)
    s.add_argument("--out", metavar="PREFIX", required=True, help="writes PREFIX.pem (private) and PREFIX.pub.pem")
    s.add_argument("--alg", choices=("EdDSA", "ES256"), default="EdDSA", help="EdDSA (Ed25519, default) or ES256")
    s.add_argument("--force", action="store_true", help="overwrite existing files")
    _register_edits(cmds)


# -- helpers -------------------------------------------------------------------
def _engine(ctx: CliContext) -> Any:
    from mcp_proxy.policy import PolicyEngine

    config = ctx.config()
    engine = PolicyEngine(config.policy, ctx.paths, emit=lambda *_: None, secret_store=ctx.secret_store())
    engine.load_cached()
    return engine


def _catalog(ctx: CliContext) -> list[Any]:
    from mcp_proxy.catalog.offline import load_catalog_facts  # imported here: the catalog is another part

    return list(load_catalog_facts(ctx.config(), ctx.paths))


def _read(path: str) -> bytes | None:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        err(f"mcp-access-proxy: cannot read {path}: {exc.strerror or type(exc).__name__}")
        return None


def _write(path: str | None, data: bytes, mode: int = 0o644) -> None:
    if path is None:
        sys.stdout.write(data.decode())
        return
    from mcp_proxy.fsutil import atomic_write

    atomic_write(Path(path).expanduser(), data, mode=mode)


# -- status / sync -------------------------------------------------------------
def _status(args: argparse.Namespace, ctx: CliContext) -> int:
    status = _engine(ctx).status()
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return EXIT_OK
    print(status.summary())
    if status.governed:
        rows = [("source", status.source), ("revision", status.revision), ("issued_at", status.issued_at),
                ("expires_at", status.expires_at), ("signature", _signature(status)),
                ("keys configured", str(status.keys_configured)), ("cached copy fetched", status.fetched_at),
                ("etag", status.etag), ("tool entries", str(status.tool_entries) if status.revision else None)]
        for name, value in rows:
            if value:
                print(f"  {name:<20} {value}")
        for warning in status.warnings:
            print(f"  warning: {warning}")
        if status.problem:
            print(f"  fix: run `mcp-access-proxy policy sync`; if it fails, it says why (source: {status.source})")
    return EXIT_OK if status.problem is None else EXIT_FAILURE


def _signature(status: Any) -> str | None:
    if not status.revision:
        return None
    if status.verified_by:
        return f"{status.algorithm}, verified by {status.verified_by}"
    return "signed, NOT verified (no public_keys)" if status.signed else "unsigned"


def _sync(args: argparse.Namespace, ctx: CliContext) -> int:
    import anyio

    engine = _engine(ctx)
    try:
        facts = _catalog(ctx)
    except Exception as exc:  # noqa: BLE001 - the sync itself does not need the catalog
        err(f"mcp-access-proxy: the tool catalog is not available ({type(exc).__name__}); "
            "changes per tool are not reported")
        facts = []
    user = ctx.user()
    report = anyio.run(lambda: engine.sync(facts=facts, user=user))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK if report.ok else EXIT_FAILURE
    print(f"{report.result}: {report.message}")
    if report.result == "activated":
        print(f"  revision {report.previous_revision or '(none)'} -> {report.revision}")
    who = user or "you"
    for name in report.newly_available:
        print(f"  + {name} is now available to {who}")
    for name in report.no_longer_available:
        print(f"  - {name} is no longer available to {who}")
    if report.ok and report.result == "activated" and not (report.newly_available or report.no_longer_available):
        print(f"  no change in the tools available to {who}")
    if not report.ok:
        print(f"  active: {engine.status().summary()}")
    return EXIT_OK if report.ok else EXIT_FAILURE


# -- validate / sign -------------------------------------------------------------
def _keys_for_validate(args: argparse.Namespace, ctx: CliContext) -> tuple[list[str], str]:
    if args.public_key:
        texts = []
        for path in args.public_key:
            data = _read(path)
            if data is None:
                raise SystemExit(EXIT_FAILURE)
            texts.append(data.decode("utf-8", "replace"))
        return texts, "--public-key"
    try:
        config = ctx.config()
    except Exception:  # noqa: BLE001 - validate works without a config
        return [], ""
    return (list(config.policy.public_keys), "[policy] public_keys") if config.policy else ([], "")


def _validate(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.policy.document import DocumentError, format_time, parse_document, parse_json
    from mcp_proxy.policy.signature import (
        KeyProblem,
        SignatureError,
        decode_unverified,
        is_jws,
        load_public_keys,
        verify_jws,
    )

    raw = _read(args.file)
    if raw is None:
        return EXIT_FAILURE
    texts, origin = _keys_for_validate(args, ctx)
    payload = raw
    try:
        if is_jws(raw):
            if texts:
                verified = verify_jws(raw, load_public_keys(texts))
                payload = verified.payload
                print(f"signature: {verified.alg}, verified by {verified.key_id} (keys from {origin})")
            else:
                header, payload = decode_unverified(raw)
                print(f"signature: {header.get('alg')} JWS, NOT verified (give --public-key PEM to check it)")
        elif texts:
            print(f"signature: none, but {origin} are given: the proxy would refuse this document; sign it with "
                  "`mcp-access-proxy policy sign FILE --key KEY`")
        try:
            value = parse_json(payload)
        except DocumentError as exc:  # not JSON (or nested absurdly deep): one line says what and where
            print(f"{args.file}: INVALID: {'; '.join(exc.problems)}")
            return EXIT_FAILURE
        doc = parse_document(value)
    except (SignatureError, KeyProblem) as exc:
        print(f"{args.file}: INVALID signature: {exc}")
        return EXIT_FAILURE
    except DocumentError as exc:
        print(f"{args.file}: INVALID: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return EXIT_FAILURE
    now = time.time()
    state = "EXPIRED" if doc.expired(now) else "valid"
    print(f"{args.file}: {state} schema-1 policy, revision {doc.revision}, issued {format_time(doc.issued_at)}, "
          f"expires {format_time(doc.expires_at)}")
    counts = {s: sum(1 for t in doc.tools.values() if t.state == s) for s in ("approved", "pending", "disabled")}
    print(f"  tools: {counts['approved']} approved, {counts['pending']} pending, {counts['disabled']} disabled; "
          f"auto_approve {doc.auto_approve}; {len(doc.toolsets)} toolset(s), {len(doc.groups)} group(s), "
          f"{len(doc.profiles)} profile(s)")
    for warning in doc.warnings:
        print(f"  warning: {warning}")
    if texts and not is_jws(raw):
        return EXIT_FAILURE
    if doc.expired(now):
        print("  fix: set expires_at later than now and issue a new revision")
        return EXIT_FAILURE
    return EXIT_OK


def _sign(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.policy.document import DocumentError, parse_document, parse_json
    from mcp_proxy.policy.signature import KeyProblem, is_jws, load_private_key, sign_jws

    raw, key_pem = _read(args.file), _read(args.key)
    if raw is None or key_pem is None:
        return EXIT_FAILURE
    if is_jws(raw):
        err(f"mcp-access-proxy: {args.file} is already a JWS; sign the JSON document instead")
        return EXIT_USAGE
    try:
        doc = parse_document(parse_json(raw))
        key = load_private_key(key_pem)
    except DocumentError as exc:
        err(f"mcp-access-proxy: {args.file} is not a valid policy, so it was not signed:")
        for problem in exc.problems:
            err(f"  {problem}")
        return EXIT_FAILURE
    except KeyProblem as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE
    token = sign_jws(raw, key)
    _write(args.out, (token + "\n").encode())
    if args.out:
        err(f"signed revision {doc.revision} -> {args.out}")
    return EXIT_OK


# -- explain / draft / keygen ------------------------------------------------------
def _explain(args: argparse.Namespace, ctx: CliContext) -> int:
    facts = _catalog(ctx)
    wanted = args.tool
    match = [f for f in facts if wanted in (f.exposed_name, f.key)]
    if not match:
        err(f"mcp-access-proxy: no tool {wanted!r} in the catalog; `mcp-access-proxy tools --all` lists every "
            "exposed name and key (MCP upstreams appear after the proxy ran once or `tools --refresh`)")
        return EXIT_FAILURE
    f = match[0]
    engine = _engine(ctx)
    user = args.user or ctx.user()
    decision, steps = engine.explain(f, user)
    print(f"{f.exposed_name} ({f.key}), class {f.classification}, definition sha256 {f.definition_hash}")
    print(f"user: {user or '(none: set [user] email)'}; policy: {engine.status().summary()}")
    marks = {True: "pass", False: "FAIL", None: "n/a "}
    for step in steps:
        print(f"  [{marks[step.passed]}] {step.rule:<10} {step.detail}")
    print(f"=> {'AVAILABLE' if decision.allowed else 'NOT AVAILABLE'} ({decision.code})")
    constraints = engine.constraints_for(f.key)
    if decision.allowed and constraints:
        for path, allowed in constraints.items():
            print(f"   only with {path} in {json.dumps(list(allowed), ensure_ascii=False)}")
    if not decision.allowed:
        print(f"   the model is told: {decision.message}")
    return EXIT_OK


def _draft(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.policy.draft import make_draft

    existing = None
    if args.existing:
        raw = _read(args.existing)
        if raw is None:
            return EXIT_FAILURE
        from mcp_proxy.policy.document import DocumentError, parse_json
        from mcp_proxy.policy.signature import SignatureError, decode_unverified, is_jws

        try:
            value = parse_json(decode_unverified(raw)[1] if is_jws(raw) else raw)
        except (DocumentError, SignatureError) as exc:
            err(f"mcp-access-proxy: {args.existing} is not a readable policy ({exc}); "
                "check it with `mcp-access-proxy policy validate`")
            return EXIT_FAILURE
        existing = value if isinstance(value, dict) else None
        if existing is None:
            err(f"mcp-access-proxy: {args.existing} is not a policy (not a JSON object); "
                "check it with `mcp-access-proxy policy validate`")
            return EXIT_FAILURE
    facts = _catalog(ctx)
    if not facts:
        err("mcp-access-proxy: no tools discovered yet; configure upstreams, then run `mcp-access-proxy tools "
            "--refresh` (or start the proxy once) and draft again")
        return EXIT_FAILURE
    draft = make_draft(facts, time.time(), days=args.days, auto_approve=args.auto_approve,
                       trust_annotations=args.trust_annotations, existing=existing)
    _write(args.out, (json.dumps(draft, indent=2, ensure_ascii=False) + "\n").encode())
    err(f"drafted {len(draft['tools'])} tool(s); review states, add toolsets/groups/profiles, then "
        "`mcp-access-proxy policy sign FILE --key KEY`")
    return EXIT_OK


def _keygen(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.policy.signature import generate_key_pair

    private_path, public_path = Path(f"{args.out}.pem").expanduser(), Path(f"{args.out}.pub.pem").expanduser()
    for path in (private_path, public_path):
        if path.exists() and not args.force:
            err(f"mcp-access-proxy: {path} exists; choose another --out or pass --force")
            return EXIT_FAILURE
    private_pem, public_pem, key_id = generate_key_pair(args.alg)
    _write(str(private_path), private_pem, 0o600)
    _write(str(public_path), public_pem)
    print(f"private key: {private_path} (keep it secret; sign with `policy sign FILE --key {private_path}`)")
    print(f"public key:  {public_path} ({args.alg}, key id {key_id})")
    print("add to every user's config:\n\n[policy]")
    print(f"public_keys = ['''\n{public_pem.decode().strip()}\n''']")
    return EXIT_OK


# -- approve / disable / classify / toolset / profile: edits of a document, for scripts and CI -----------------
def _register_edits(cmds: argparse._SubParsersAction) -> None:
    def edit(name: str, help_text: str) -> argparse.ArgumentParser:
        s = add_action(cmds, name, help_text, _edit)
        s.set_defaults(edit=name)
        return s

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--file", metavar="FILE", required=True, help="the policy document (JSON) to edit")
        s.add_argument("--out", metavar="PATH", help="write the result here (default: back to --file)")
        s.add_argument("--expires-in", metavar="DAYS", type=float,
                       help="set expires_at this many days after the new issued_at (default: keep it)")

    keys_help = "tool keys <upstream>.<tool>; globs (pd.list_*) match keys in the document or the inventory"
    s = edit("approve", "approve tools: state approved, pinned to their definition hash")
    s.add_argument("keys", metavar="KEY", nargs="+", help=keys_help)
    s.add_argument("--class", dest="cls", choices=("read", "write", "destructive"),
                   help="classification (default: keep it, else from the inventory's annotations)")
    pin = s.add_mutually_exclusive_group()
    pin.add_argument("--sha256", metavar="HASH", help="pin this definition hash (one KEY)")
    pin.add_argument("--from-inventory", metavar="PATH", action="append", default=[],
                     help="pin the latest hash seen in this inventory (tools.discovered files; repeatable)")
    common(s)
    s = edit("disable", "disable tools")
    s.add_argument("keys", metavar="KEY", nargs="+", help=keys_help)
    s.add_argument("--from-inventory", metavar="PATH", action="append", default=[], help="known keys for globs")
    common(s)
    s = edit("classify", "set the class of tools: read, write or destructive")
    s.add_argument("keys", metavar="KEY", nargs="+", help=keys_help)
    s.add_argument("cls", metavar="CLASS", choices=("read", "write", "destructive"))
    s.add_argument("--from-inventory", metavar="PATH", action="append", default=[], help="known keys for globs")
    common(s)
    s = edit("toolset", "add patterns to a toolset, or remove them")
    s.add_argument("name", metavar="NAME")
    s.add_argument("action", choices=("add", "remove"))
    s.add_argument("patterns", metavar="PATTERN", nargs="+", help="tool key globs, e.g. pd.list_*")
    common(s)
    s = edit("profile", "create or change a profile: who (members) gets which toolsets")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--members", metavar="MEMBER", nargs="+", help='emails or "group:NAME" (replace the list)')
    s.add_argument("--toolsets", metavar="TOOLSET", nargs="+", help="toolset names (replace the list)")
    s.add_argument("--add", action="store_true", help="add to the lists instead of replacing them")
    s.add_argument("--delete", action="store_true", help="remove the profile")
    common(s)


def _edit(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.admin import ops
    from mcp_proxy.admin.inventory import read_inventory
    from mcp_proxy.policy.document import DocumentError, parse_json
    from mcp_proxy.policy.signature import is_jws

    raw = _read(args.file)
    if raw is None:
        return EXIT_FAILURE
    if is_jws(raw):
        err(f"mcp-access-proxy: {args.file} is a signed JWS; edit the JSON document it was signed from, then "
            "`policy sign` it again")
        return EXIT_USAGE
    try:
        doc = parse_json(raw)
        if not isinstance(doc, dict):
            raise DocumentError(["$: the policy must be a JSON object"])
        paths = getattr(args, "from_inventory", [])
        try:
            inventory = read_inventory(paths) if paths else None
        except OSError as exc:
            err(f"mcp-access-proxy: cannot read the inventory: {exc}")
            return EXIT_FAILURE
        known = [*(doc.get("tools") or {}), *(inventory.tools if inventory else {})]
        notes: list[str] = []
        if args.edit == "approve":
            notes = ops.approve(doc, ops.match_keys(args.keys, known), classification=args.cls,
                                sha256=args.sha256, inventory=inventory)
        elif args.edit == "disable":
            ops.disable(doc, ops.match_keys(args.keys, known))
        elif args.edit == "classify":
            ops.classify(doc, ops.match_keys(args.keys, known), args.cls)
        elif args.edit == "toolset":
            ops.toolset(doc, args.name, args.action, args.patterns)
        else:
            ops.profile(doc, args.name, members=args.members, toolsets=args.toolsets, add=args.add,
                        delete=args.delete)
        parsed = ops.finish(doc, time.time(), expires_in_days=args.expires_in)
    except ops.OpError as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE
    except DocumentError as exc:
        err(f"mcp-access-proxy: the result would not be a valid policy, so {args.file} was not changed:")
        for problem in exc.problems:
            err(f"  {problem}")
        return EXIT_FAILURE
    _write(args.out or args.file, ops.render(doc))
    for note in notes:
        err(f"note: {note}")
    err(f"{args.out or args.file}: revision {parsed.revision}, expires {doc['expires_at']}; sign it with "
        "`mcp-access-proxy policy sign FILE --key KEY`")
    return EXIT_OK
