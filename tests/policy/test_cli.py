"""The `policy` commands through `mcp_proxy.cli.run`, with an isolated home and a config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_proxy.cli import run
from tests._support.policy_docs import approved, make_doc, tool

LIST = tool("pd.list_incidents", read_only=True)
CREATE = tool("pd.create_incident")
CLOSE = tool("og.close_alert", destructive=True)
CATALOG = [LIST, CREATE, CLOSE]


@pytest.fixture
def catalog(monkeypatch):
    import mcp_proxy.catalog.offline as offline

    facts = list(CATALOG)
    monkeypatch.setattr(offline, "load_catalog_facts", lambda config, paths: list(facts))
    return facts


@pytest.fixture
def setup(proxy_home: Path, tmp_path: Path):
    """Writes a config whose policy is a file; returns a function (doc, public_keys) -> config path."""

    def write(doc: dict | bytes | None = None, public_keys: list[str] | None = None) -> Path:
        policy = tmp_path / "policy.doc"
        if doc is not None:
            policy.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        keys = "" if not public_keys else "public_keys = [" + ", ".join(f"'''{k}'''" for k in public_keys) + "]\n"
        config = tmp_path / "config.toml"
        config.write_text(f'[user]\nemail = "alice@example.com"\n\n[policy]\nsource = "{policy}"\n{keys}')
        return config

    return write


def cli(config: Path | None, *argv: str) -> int:
    return run((["--config", str(config)] if config else []) + list(argv))


def test_sync_reports_changes_and_status_shows_the_policy(setup, catalog, capsys, keys):
    config = setup(keys.sign(make_doc(tools={LIST.key: approved(LIST)})), [keys.ed_public])
    assert cli(config, "policy", "status") == 1  # nothing synced yet
    assert "no valid policy" in capsys.readouterr().out
    assert cli(config, "policy", "sync") == 0
    out = capsys.readouterr().out
    assert "activated" in out and "+ pd_list_incidents is now available to alice@example.com" in out
    assert cli(config, "policy", "sync") == 0
    assert "not_modified" in capsys.readouterr().out
    assert cli(config, "policy", "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["revision"] == "r1" and status["verified_by"].startswith("sha256:") and status["problem"] is None


def test_sync_refuses_an_unsigned_document(setup, catalog, capsys, keys):
    config = setup(make_doc(tools={LIST.key: approved(LIST)}), [keys.ed_public])
    assert cli(config, "policy", "sync") == 1
    out = capsys.readouterr().out
    assert "rejected" in out and "not signed" in out


def test_explain_walks_through_each_rule(setup, catalog, capsys):
    config = setup(make_doc(tools={LIST.key: approved(LIST), CLOSE.key: {"state": "disabled"}},
                            toolsets={"read": ["pd.list_*"]},
                            profiles=[{"name": "sre", "members": ["alice@example.com"], "toolsets": ["read"]}]))
    cli(config, "policy", "sync")
    capsys.readouterr()
    assert cli(config, "policy", "explain", "pd_list_incidents") == 0
    out = capsys.readouterr().out
    assert LIST.definition_hash in out and "AVAILABLE (approved)" in out
    assert "[pass] profiles" in out
    assert cli(config, "policy", "explain", "og.close_alert") == 0
    out = capsys.readouterr().out
    assert "NOT AVAILABLE (disabled)" in out and "proxy_request_access" in out
    assert cli(config, "policy", "explain", "pd_list_incidents", "--user", "bob@example.com") == 0
    assert "not_in_profile" in capsys.readouterr().out
    assert cli(config, "policy", "explain", "nope") == 1


def test_draft_lists_every_tool_pending_and_keeps_reviews(setup, catalog, capsys, tmp_path):
    config = setup()
    out = tmp_path / "draft.json"
    assert cli(config, "policy", "draft", "--out", str(out)) == 0
    draft = json.loads(out.read_text())
    assert set(draft["tools"]) == {f.key for f in CATALOG}
    assert draft["tools"][LIST.key] == {"state": "pending", "class": "read", "sha256": LIST.definition_hash}
    assert draft["tools"][CLOSE.key]["class"] == "destructive"
    assert cli(None, "policy", "validate", str(out)) == 0
    # review: approve two; then one changes upstream and the draft is refreshed from the reviewed file
    draft["tools"][LIST.key]["state"] = "approved"
    draft["tools"][CREATE.key]["state"] = "approved"
    out.write_text(json.dumps(draft))
    catalog[1] = tool("pd.create_incident", description="creates and pages everyone")
    refreshed = tmp_path / "refreshed.json"
    assert cli(config, "policy", "draft", "--from", str(out), "--out", str(refreshed)) == 0
    tools = json.loads(refreshed.read_text())["tools"]
    assert tools[LIST.key]["state"] == "approved"
    assert tools[CREATE.key]["state"] == "pending" and tools[CREATE.key]["sha256"] == catalog[1].definition_hash
    assert CREATE.definition_hash in tools[CREATE.key]["note"]


def test_validate_says_what_is_wrong(tmp_path, capsys, proxy_home):
    bad = make_doc(tools={"pd.x": {"state": "aproved"}})
    bad.pop("expires_at")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert cli(None, "policy", "validate", str(path)) == 1
    out = capsys.readouterr().out
    assert '$.tools["pd.x"].state: "aproved" is not a state; use one of pending, approved, disabled' in out
    assert "$.expires_at: required" in out


def test_keygen_sign_validate_round_trip(tmp_path, capsys, proxy_home, setup, catalog):
    prefix = tmp_path / "signing-key"
    assert cli(None, "policy", "keygen", "--out", str(prefix), "--alg", "ES256") == 0
    assert (prefix.with_name("signing-key.pem").stat().st_mode & 0o777) == 0o600
    assert "public_keys = ['''" in capsys.readouterr().out
    assert cli(None, "policy", "keygen", "--out", str(prefix)) == 1  # no silent overwrite
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps(make_doc(tools={LIST.key: approved(LIST)})))
    jws = tmp_path / "policy.jws"
    assert cli(None, "policy", "sign", str(doc), "--key", str(prefix) + ".pem", "--out", str(jws)) == 0
    public = prefix.with_name("signing-key.pub.pem")
    capsys.readouterr()
    assert cli(None, "policy", "validate", str(jws), "--public-key", str(public)) == 0
    assert "ES256, verified by sha256:" in capsys.readouterr().out
    # the keygen output pasted into a config verifies the signed policy in sync
    config = setup(jws.read_bytes(), [public.read_text()])
    assert cli(config, "policy", "sync") == 0
    # tampering is caught by validate
    header, payload, sig = jws.read_text().strip().split(".")
    jws.write_text(f"{header}.{payload[:-4]}AAAA.{sig}")
    assert cli(None, "policy", "validate", str(jws), "--public-key", str(public)) == 1
    assert "INVALID signature" in capsys.readouterr().out


def test_sign_refuses_invalid_documents_and_bad_keys(tmp_path, capsys, proxy_home, keys):
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps({"schema": 1}))
    key = tmp_path / "k.pem"
    key.write_bytes(keys.ed_private)
    assert cli(None, "policy", "sign", str(doc), "--key", str(key)) == 1
    assert "not signed" in capsys.readouterr().err
    doc.write_text(json.dumps(make_doc()))
    key.write_text(keys.ed_public)
    assert cli(None, "policy", "sign", str(doc), "--key", str(key)) == 1
    assert "cannot be read" in capsys.readouterr().err


def test_ungoverned_config(tmp_path, capsys, proxy_home):
    config = tmp_path / "config.toml"
    config.write_text('[user]\nemail = "alice@example.com"\n')
    assert cli(config, "policy", "status") == 0
    assert "ungoverned" in capsys.readouterr().out
    assert cli(config, "policy", "sync") == 0


def test_the_installed_command_runs_policy_sync(tmp_path, keys):
    """The real launcher in a subprocess: exit codes and output as a user sees them."""
    import os
    import subprocess
    import sys

    launcher = Path(sys.executable).with_name("mcp-access-proxy")
    home = tmp_path / "home"
    policy = tmp_path / "policy.jws"
    policy.write_bytes(keys.sign(make_doc()))
    config = tmp_path / "config.toml"
    config.write_text(f"[policy]\nsource = \"{policy}\"\npublic_keys = ['''{keys.ed_public}''']\n")
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(home)}
    done = subprocess.run([str(launcher), "--config", str(config), "policy", "sync"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "activated" in done.stdout
    assert (home / "data" / "policy" / "last-known-good.json").exists()
    policy.write_text("garbage")
    done = subprocess.run([str(launcher), "--config", str(config), "policy", "sync"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "rejected" in done.stdout and "revision r1" in done.stdout
