"""`policy approve|disable|classify|toolset|profile` through the real command line: every other field kept,
the result validated, revision and issued_at bumped, globs, pins from the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mcp_proxy.policy.definition import definition_hash
from tests._support.admin import discovered, policy_dict, tool_def, write_otlp_file

NOTE = tool_def("add_note", "Add a note.")
LIST = tool_def("list_incidents", "List incidents.", annotations={"readOnlyHint": True})
LIST2 = tool_def("list_services", "List services.", annotations={"readOnlyHint": True})


def proxy(tmp_path, *argv):
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(tmp_path / "home")}
    env.pop("MCP_ACCESS_PROXY_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "mcp_proxy", *argv], capture_output=True, text=True, env=env,
                          timeout=60)


def doc_file(tmp_path, tools=None, **extra):
    path = tmp_path / "policy.json"
    doc = policy_dict(tools or {}, revision="2020-01-01.7", comment="kept", groups={"sre": ["a@example.com"]},
                      **extra)
    path.write_text(json.dumps(doc))
    return path, doc


def inventory(tmp_path):
    return write_otlp_file(tmp_path / "otlp.json", [[
        discovered("pd", [NOTE, LIST, LIST2], "alice@example.com", "2026-11-20T10:00:00Z")]])


def test_approve_from_inventory_with_a_glob_pins_hashes_and_derives_the_class(tmp_path):
    path, before = doc_file(tmp_path, {"og.close": {"state": "disabled", "comment": "no"}})
    out = proxy(tmp_path, "policy", "approve", "pd.list_*", "--from-inventory", str(inventory(tmp_path)),
                "--file", str(path), "--expires-in", "14")
    assert out.returncode == 0, out.stderr
    doc = json.loads(path.read_text())
    assert doc["tools"]["pd.list_incidents"] == {"state": "approved", "sha256": definition_hash(LIST), "class": "read"}
    assert doc["tools"]["pd.list_services"]["sha256"] == definition_hash(LIST2)
    assert "pd.add_note" not in doc["tools"]
    assert doc["tools"]["og.close"] == {"state": "disabled", "comment": "no"}
    assert doc["comment"] == "kept" and doc["groups"] == before["groups"]
    assert doc["revision"] != before["revision"] and doc["issued_at"] > before["issued_at"]
    assert doc["expires_at"] > before["expires_at"]
    assert proxy(tmp_path, "policy", "validate", str(path)).returncode == 0


def test_approve_one_key_with_sha256_and_class_then_disable_and_classify(tmp_path):
    path, _ = doc_file(tmp_path)
    sha = definition_hash(NOTE)
    assert proxy(tmp_path, "policy", "approve", "pd.add_note", "--sha256", sha, "--class", "write",
                 "--file", str(path)).returncode == 0
    first = json.loads(path.read_text())
    assert first["tools"]["pd.add_note"] == {"state": "approved", "sha256": sha, "class": "write"}
    assert proxy(tmp_path, "policy", "classify", "pd.add_note", "destructive", "--file", str(path)).returncode == 0
    assert proxy(tmp_path, "policy", "disable", "pd.*", "--file", str(path)).returncode == 0
    last = json.loads(path.read_text())
    assert last["tools"]["pd.add_note"] == {"state": "disabled", "sha256": sha, "class": "destructive"}
    # Three edits on one day: three new revisions, each distinct.
    assert last["revision"] != first["revision"] and last["revision"].endswith(".3")


def test_toolset_and_profile_and_an_invalid_result_leaves_the_file_alone(tmp_path):
    path, _ = doc_file(tmp_path)
    assert proxy(tmp_path, "policy", "toolset", "read", "add", "pd.list_*", "og.list_*",
                 "--file", str(path)).returncode == 0
    assert proxy(tmp_path, "policy", "profile", "sre", "--members", "group:sre", "b@example.com",
                 "--toolsets", "read", "--file", str(path)).returncode == 0
    doc = json.loads(path.read_text())
    assert doc["toolsets"] == {"read": ["pd.list_*", "og.list_*"]}
    assert doc["profiles"] == [{"name": "sre", "members": ["group:sre", "b@example.com"], "toolsets": ["read"]}]
    before = path.read_text()
    bad = proxy(tmp_path, "policy", "profile", "ops", "--members", "group:nobody", "--toolsets", "read",
                "--file", str(path))
    assert bad.returncode == 1 and "no group" in bad.stderr and "was not changed" in bad.stderr
    assert path.read_text() == before
    assert proxy(tmp_path, "policy", "toolset", "read", "remove", "og.list_*", "--file", str(path)).returncode == 0
    assert json.loads(path.read_text())["toolsets"] == {"read": ["pd.list_*"]}


def test_refusals_say_what_to_do(tmp_path):
    path, _ = doc_file(tmp_path)
    glob = proxy(tmp_path, "policy", "approve", "zz.*", "--file", str(path))
    assert glob.returncode == 1 and "matches no tool key" in glob.stderr
    many = proxy(tmp_path, "policy", "approve", "a.x", "b.y", "--sha256", "0" * 64, "--file", str(path))
    assert many.returncode == 1 and "--from-inventory" in many.stderr
    expired = tmp_path / "expired.json"
    expired.write_text(json.dumps({**json.loads(path.read_text()), "expires_at": "2021-01-01T00:00:00Z"}))
    stale = proxy(tmp_path, "policy", "disable", "a.x", "--file", str(expired))
    assert stale.returncode == 1 and "--expires-in" in stale.stderr
    jws = tmp_path / "p.jws"
    jws.write_text("eyJhbGciOiJFZERTQSJ9.eyJ9.c2ln\n")
    assert proxy(tmp_path, "policy", "disable", "a.x", "--file", str(jws)).returncode == 64
