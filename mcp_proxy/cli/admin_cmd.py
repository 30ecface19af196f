"""`admin`: the administrator's review console on 127.0.0.1 (mcp_proxy/admin/)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from mcp_proxy.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliContext, err, quiet_logging
from mcp_proxy.cli._args import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "admin", "the administrator's console on 127.0.0.1: discovered tools, review, approve, "
                                  "sign, publish")
    p.add_argument("--policy", metavar="FILE|URL", help="the policy to start from (JSON or JWS; a missing file is "
                                                       "created on publish; default: a new empty policy)")
    p.add_argument("--inventory", metavar="PATH", action="append", default=[],
                   help="tools.discovered records: OTLP JSON / NDJSON files or directories, tools --all --json "
                        "outputs (repeatable)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)  # refused unless loopback
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening the browser")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--key", metavar="FILE", help="private key PEM to sign with (stays on the server side)")
    key.add_argument("--key-keychain", metavar="NAME", help="read the private key PEM from the keychain entry NAME "
                                                           "(`mcp-access-proxy secret set NAME`)")
    p.add_argument("--out", metavar="PATH", help="write the published (signed) document here (default: next to "
                                                 "--policy FILE, as .jws when signing)")
    p.add_argument("--publish-url", metavar="URL", help="publish by HTTP PUT to this URL (https; plain http only on "
                                                       "a loopback host)")
    p.add_argument("--publish-token", metavar="REF", help="send `Authorization: Bearer TOKEN` with the PUT, the token "
                                                         "read from REF: keyring:NAME (`mcp-access-proxy secret set "
                                                         "NAME`) or env:NAME; never the token itself")
    p.add_argument("--days", type=float, default=30.0, help="default expiry of a published revision (days)")
    p.set_defaults(func=_admin)


def _new_policy() -> dict[str, Any]:
    from mcp_proxy.policy.document import format_time

    now = time.time()
    return {"schema": 1, "revision": "new", "issued_at": format_time(now), "expires_at": format_time(now + 30 * 86400),
            "defaults": {"auto_approve": "none"}, "tools": {}, "toolsets": {}, "groups": {}, "profiles": []}


def _check_url(url: str) -> None:
    from mcp_proxy.admin.ops import OpError
    from mcp_proxy.config.checker import LOOPBACK_HOSTS
    from mcp_proxy.httpsafe import origin_of

    origin = origin_of(url)
    if origin.scheme != "https" and origin.host not in LOOPBACK_HOSTS:
        raise OpError(f"{origin}: a policy URL must be https (plain http only on a loopback host)")


def _fetch(url: str) -> bytes:
    import httpx

    from mcp_proxy.admin.ops import OpError

    _check_url(url)
    try:
        reply = httpx.get(url, timeout=20, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise OpError(f"cannot fetch {url}: {type(exc).__name__}") from None
    if not reply.is_success:
        raise OpError(f"cannot fetch {url}: HTTP {reply.status_code}")
    return reply.content


def _public_keys(ctx: CliContext, signer_key: Any) -> list[str]:
    texts: list[str] = []
    try:
        config = ctx.config()
        if config.policy:
            texts += list(config.policy.public_keys)
    except Exception:  # noqa: BLE001 - the console works without a config
        pass
    if signer_key is not None:
        from cryptography.hazmat.primitives import serialization

        texts.append(signer_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    return texts


def _publish_token(args: argparse.Namespace, ctx: CliContext) -> str | None:
    """The token of `--publish-token REF`, or None. A reference only: a token typed on the command line would be
    in the shell's history and in every `ps` listing."""
    from mcp_proxy.admin.ops import OpError
    from mcp_proxy.config import SecretRef

    if args.publish_token is None:
        return None
    if not args.publish_url:
        raise OpError("--publish-token goes with --publish-url: it is sent with the PUT")
    ref = SecretRef.parse(args.publish_token, "--publish-token")
    if ref is None:
        raise OpError("--publish-token takes where the token is, keyring:NAME or env:NAME, not the token itself "
                      "(store it with `mcp-access-proxy secret set NAME`)")
    return ref.resolve(ctx.secret_store())


def _admin(args: argparse.Namespace, ctx: CliContext) -> int:
    from mcp_proxy.admin.inventory import Inventory, acyclic_bulk, normal_time
    from mcp_proxy.admin.review import Review
    from mcp_proxy.admin.server import Console, NotLoopback, Publisher, check_loopback
    from mcp_proxy.errors import ProxyError
    from mcp_proxy.policy.document import DocumentError, parse_document, parse_json
    from mcp_proxy.policy.signature import decode_unverified, is_jws, load_private_key, load_public_keys, sign_jws

    quiet_logging(args)
    try:
        check_loopback(args.host)
    except NotLoopback as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_USAGE
    try:
        # The signing key: read once, kept in this process only.
        key = None
        if args.key:
            key = load_private_key(Path(args.key).expanduser().read_bytes())
        elif args.key_keychain:
            pem = ctx.secret_store().get(args.key_keychain)
            if not pem:
                err(f"mcp-access-proxy: no keychain entry {args.key_keychain!r}; store the key with "
                    f"`mcp-access-proxy secret set {args.key_keychain} < key.pem`")
                return EXIT_FAILURE
            try:
                key = load_private_key(pem.encode())
            except ProxyError as exc:
                err(f"mcp-access-proxy: keychain entry {args.key_keychain!r}: {exc}")
                return EXIT_FAILURE
        # The publishing token: resolved now, so a missing one is said at start, not at the first publish.
        token = _publish_token(args, ctx)
        if args.publish_url:
            _check_url(args.publish_url)
        # The policy.
        source, json_path, signature = args.policy or "(new policy)", None, "unsigned"
        raw: bytes | None = None
        if args.policy and args.policy.startswith(("http://", "https://")):
            raw = _fetch(args.policy)
        elif args.policy:
            path = Path(args.policy).expanduser()
            raw = path.read_bytes() if path.exists() else None
            if raw is None or not is_jws(raw):
                json_path = path
        if raw is None:
            doc: Any = _new_policy()
        else:
            payload = raw
            if is_jws(raw):
                from mcp_proxy.policy.signature import verify_jws

                texts = _public_keys(ctx, key)
                if texts:
                    verified = verify_jws(raw, load_public_keys(texts))
                    payload, signature = verified.payload, f"{verified.alg}, verified by {verified.key_id}"
                else:
                    payload, signature = decode_unverified(raw)[1], "signed, NOT verified (no public key given)"
            doc = parse_json(payload)
            parse_document(doc)
        # The inventory: the files given, and the administrator's own catalog for full definitions.
        inventory = Inventory()
        with acyclic_bulk(keep=True):
            for path_text in args.inventory:
                inventory.read(path_text)
            try:
                from mcp_proxy.catalog.offline import load_catalog_entries

                entries, _unknown = load_catalog_entries(ctx.config(), ctx.paths)
                inventory.add_catalog(entries, normal_time(time.time() * 1e9 // 1), ctx.config().user_email)
            except (ProxyError, OSError):
                pass  # no config: the inventory files alone
    except DocumentError as exc:
        err(f"mcp-access-proxy: {source} is not a valid policy:")
        for problem in exc.problems:
            err(f"  {problem}")
        return EXIT_FAILURE
    except (ProxyError, OSError) as exc:
        err(f"mcp-access-proxy: {exc}")
        return EXIT_FAILURE
    out = Path(args.out).expanduser() if args.out else None
    if out is None and key is not None and args.policy and json_path is not None:
        out = json_path.with_suffix(".jws")
    elif out is None and args.policy and json_path is None and not args.policy.startswith(("http://", "https://")):
        out = Path(args.policy).expanduser()  # a local JWS: replaced by the new one
    publisher = Publisher(sign=(lambda payload: sign_jws(payload, key)) if key is not None else None,
                          json_path=json_path, out_path=out, put_url=args.publish_url, put_token=token,
                          token_ref=args.publish_token)
    review = Review(doc, inventory, source=source, signature=signature)
    console = Console(review, publisher, host=args.host, port=args.port, default_days=args.days)
    print(f"admin console: {console.url}", flush=True)
    print(json.dumps({"url": console.url, "tools": len(review.keys()), "inventory_files": len(inventory.files)}),
          file=sys.stderr, flush=True)
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(console.url):
            err("mcp-access-proxy: no browser could be opened; open the URL above yourself")
    try:
        console.serve_forever()
    except KeyboardInterrupt:
        err("admin console stopped")
    finally:
        console.httpd.server_close()
    return EXIT_OK
