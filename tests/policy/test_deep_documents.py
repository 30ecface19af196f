"""A policy document nested thousands of levels deep is refused with one clear line, never a RecursionError:
by `policy validate`, by the sync (plain JSON and a JWS payload), and the active document stays active."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_proxy.policy.document import DocumentError, parse_json
from mcp_proxy.policy.jsondepth import MAX_DEPTH
from mcp_proxy.policy.signature import SignatureError, b64url_encode, decode_unverified
from tests._support.policy_docs import make_doc

pytestmark = pytest.mark.anyio

DEEP = b"[" * 10_000 + b"]" * 10_000
OPEN_BRACKETS = b"[" * (2 * 1024 * 1024)  # 2 MB of [[[[...: never closed
DEEP_IN_A_FIELD = json.dumps(make_doc()).encode()[:-1] + b', "comment": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"MCP_ACCESS_PROXY_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "mcp_proxy", *argv], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("body", [DEEP, OPEN_BRACKETS, DEEP_IN_A_FIELD], ids=["10000 deep", "2 MB of [", "a field"])
def test_parse_json_refuses_deep_nesting_with_one_problem(body):
    with pytest.raises(DocumentError) as caught:
        parse_json(body)
    (problem,) = caught.value.problems
    assert f"nested more than {MAX_DEPTH} levels" in problem and "\n" not in problem


def test_nesting_up_to_the_bound_is_fine_and_brackets_in_strings_do_not_count():
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    text = json.dumps({"comment": "[" * 1000 + '\\"{' * 1000})
    assert parse_json(text.encode()) == json.loads(text)
    with pytest.raises(DocumentError):
        parse_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_a_jws_header_nested_deep_is_a_signature_error():
    token = f"{b64url_encode(b'[' * 10_000)}.{b64url_encode(b'{}')}.{b64url_encode(b'x')}".encode()
    with pytest.raises(SignatureError):
        decode_unverified(token)


@pytest.mark.parametrize("body", [DEEP, OPEN_BRACKETS], ids=["10000 deep", "2 MB of ["])
def test_policy_validate_refuses_it_in_one_line(tmp_path, body):
    path = tmp_path / "deep.json"
    path.write_bytes(body)
    proc = _run(tmp_path / "home", "policy", "validate", str(path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: INVALID") and f"nested more than {MAX_DEPTH} levels" in lines[0]


def test_policy_validate_refuses_a_deep_jws_payload_in_one_line(tmp_path, keys):
    path = tmp_path / "deep.jws"
    path.write_bytes(keys.sign(DEEP))
    proc = _run(tmp_path / "home", "policy", "validate", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"nested more than {MAX_DEPTH} levels" in proc.stdout


def _config(tmp_path: Path, source: Path, public_key: str | None = None) -> Path:
    config = tmp_path / "config.toml"
    keys = f"public_keys = ['''{public_key}''']\n" if public_key else ""
    config.write_text(f'[user]\nemail = "alice@example.com"\n[policy]\nsource = "{source}"\n{keys}')
    return config


@pytest.mark.parametrize("signed", [False, True], ids=["json", "jws"])
def test_a_sync_refuses_a_deep_document_and_keeps_the_active_one(tmp_path, keys, signed):
    source = tmp_path / "policy.doc"
    config = _config(tmp_path, source, keys.ed_public if signed else None)
    home = tmp_path / "home"
    good = make_doc("good-1", issued=1_700_000_000, expires=4_000_000_000)
    source.write_bytes(keys.sign(good) if signed else json.dumps(good).encode())
    assert _run(home, "--config", str(config), "policy", "sync").returncode == 0
    source.write_bytes(keys.sign(DEEP) if signed else DEEP)
    proc = _run(home, "--config", str(config), "policy", "sync")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stdout.startswith("rejected:") and f"nested more than {MAX_DEPTH} levels" in proc.stdout
    status = _run(home, "--config", str(config), "policy", "status", "--json")
    assert json.loads(status.stdout)["revision"] == "good-1"


async def test_the_engine_rejects_a_deep_document_and_keeps_the_active_one(harness, write_policy):
    source = write_policy(make_doc("r1"))
    engine = harness.engine(source)
    assert (await engine.sync()).result == "activated"
    write_policy(OPEN_BRACKETS)
    report = await engine.sync()
    assert report.result == "rejected" and f"nested more than {MAX_DEPTH} levels" in report.message
    assert engine.revision == "r1"
    (rejected,) = harness.named("policy.rejected")
    assert "nested" in rejected["reason"]


def test_a_deep_cache_file_is_reported_as_damaged(paths):
    from mcp_proxy.policy import store

    store.cache_path(paths.policy_dir).parent.mkdir(parents=True, exist_ok=True)
    store.cache_path(paths.policy_dir).write_bytes(DEEP)
    with pytest.raises(store.CacheError, match="damaged"):
        store.load(paths.policy_dir)
