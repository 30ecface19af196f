"""The console's HTTP API with a plain HTTP client: the one-time token and the session cookie, CSRF, Host
(DNS rebinding) and Origin checks, loopback only, and approve + sign + write giving a document that
`policy validate` accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from mcp_proxy.admin.inventory import read_inventory
from mcp_proxy.admin.review import Review
from mcp_proxy.admin.server import Console, NotLoopback, Publisher
from mcp_proxy.policy.definition import definition_hash
from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws
from tests._support.admin import discovered, policy_dict, tool_def, write_otlp_file

COMPOSITE = tool_def("manage_incidents", "Manage incidents.", {
    "type": "object", "properties": {"request": {"type": "object", "properties": {
        "action": {"type": "string", "enum": ["create", "update", "add_note", "resolve"]}}}}})
NOTE = tool_def("add_note", "Add a note.")
NOTE_V2 = tool_def("add_note", "Add a note and page everyone.")


@pytest.fixture
def console(tmp_path):
    inv_file = write_otlp_file(tmp_path / "otlp.json", [[
        discovered("pd", [COMPOSITE, NOTE], "alice@example.com", "2026-11-20T10:00:00Z", full=True)], [
        discovered("pd", [COMPOSITE, NOTE_V2], "bob@example.com", "2026-11-21T10:00:00Z", full=True)]])
    doc = policy_dict({"pd.add_note": {"state": "approved", "sha256": definition_hash(NOTE)}})
    private, public, _ = generate_key_pair()
    key = load_private_key(private)
    (tmp_path / "pub.pem").write_bytes(public)
    publisher = Publisher(sign=lambda payload: sign_jws(payload, key), json_path=tmp_path / "policy.json",
                          out_path=tmp_path / "policy.jws")
    c = Console(Review(doc, read_inventory([inv_file])), publisher).start()
    yield c
    c.close()


def session(c: Console) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{c.port}", timeout=10)
    reply = client.get(c.url.split(str(c.port), 1)[1])
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return client


def post(client: httpx.Client, c: Console, path: str, body: dict, **headers: str) -> httpx.Response:
    return client.post(path, json=body, headers={"X-CSRF-Token": c.csrf, **headers})


def test_the_token_is_one_time_and_the_session_cookie_is_needed(console):
    base = f"http://127.0.0.1:{console.port}"
    assert httpx.get(base + "/").status_code == 401
    assert httpx.get(base + "/api/state").status_code == 401
    assert httpx.get(base + "/?token=wrong").status_code == 403
    client = session(console)
    page = client.get("/")
    assert page.status_code == 200 and console.csrf in page.text and "default-src 'none'" in \
        page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    # The token is spent: a second exchange (someone who saw the URL later) gets nothing.
    assert httpx.get(console.url.replace("127.0.0.1", "127.0.0.1")).status_code == 403


def test_state_lists_pending_then_changed_with_a_readable_diff_and_schema_choices(console):
    client = session(console)
    rows = client.get("/api/state").json()["rows"]
    assert [(r["key"], r["state"]) for r in rows] == [("pd.manage_incidents", "pending"), ("pd.add_note", "changed")]
    assert rows[0]["who"] == ["bob@example.com", "alice@example.com"]
    detail = client.get("/api/tool", params={"key": "pd.add_note"}).json()
    description = next(d for d in detail["diff"] if d["field"] == "description")
    assert ["-", "Add a note."] in description["lines"]
    assert ["+", "Add a note and page everyone."] in description["lines"]
    choices = client.get("/api/tool", params={"key": "pd.manage_incidents"}).json()["choices"]
    assert choices == [{"path": "request.action", "values": ["create", "update", "add_note", "resolve"]}]


def test_csrf_host_and_origin_are_checked_on_every_state_change(console):
    client = session(console)
    body = {"op": "approve", "keys": ["pd.manage_incidents"]}
    assert client.post("/api/ops", json=body).status_code == 403  # no CSRF token
    assert post(client, console, "/api/ops", body, **{"X-CSRF-Token": "guess"}).status_code == 403
    assert post(client, console, "/api/ops", body, Origin="http://evil.example").status_code == 403
    # DNS rebinding: evil.example resolves to 127.0.0.1; the browser sends Host: evil.example:PORT.
    rebound = post(client, console, "/api/ops", body, Host=f"evil.example:{console.port}")
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
    assert client.get("/api/state", headers={"Host": "evil.example"}).status_code == 403
    no_json = client.post("/api/ops", content=b"op=approve", headers={
        "X-CSRF-Token": console.csrf, "Content-Type": "application/x-www-form-urlencoded"})
    assert no_json.status_code == 415
    assert client.put("/api/ops").status_code == 405
    rows = client.get("/api/state").json()["rows"]
    assert all(r["state"] != "approved" or r["key"] == "pd.add_note" for r in rows)
    assert post(client, console, "/api/ops", body, Host=f"localhost:{console.port}").status_code == 200


def test_the_console_refuses_any_address_but_loopback(tmp_path):
    review = Review(policy_dict({}), read_inventory([]))
    for host in ("0.0.0.0", "192.168.1.10", "example.com", "::"):
        with pytest.raises(NotLoopback):
            Console(review, Publisher(), host=host)
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "mcp_proxy", "admin", "--host", "0.0.0.0", "--no-browser"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 64 and "127.0.0.1 only" in out.stderr


def test_approve_with_a_constraint_sign_and_write_gives_a_valid_signed_document(console, tmp_path):
    client = session(console)
    assert post(client, console, "/api/ops", {"op": "approve", "keys": ["pd.manage_incidents"]}).status_code == 200
    assert post(client, console, "/api/ops", {"op": "constrain", "keys": ["pd.manage_incidents"],
                                              "path": "request.action", "values": ["add_note"]}).status_code == 200
    bad = post(client, console, "/api/ops", {"op": "profile", "profile": "p", "members": ["group:none"],
                                             "toolsets": ["x"]})
    assert bad.status_code == 422 and bad.json()["problems"]
    published = post(client, console, "/api/publish", {"expires_in_days": 10}).json()
    assert published["signed"] and published["to"] == [str(tmp_path / "policy.json"), str(tmp_path / "policy.jws")]
    doc = json.loads((tmp_path / "policy.json").read_text())
    assert doc["tools"]["pd.manage_incidents"] == {"state": "approved", "sha256": definition_hash(COMPOSITE),
                                                   "class": "write", "constraints": {"request.action": ["add_note"]}}
    assert doc["revision"] == published["revision"]
    env = {**os.environ, "MCP_ACCESS_PROXY_HOME": str(tmp_path / "home")}
    check = subprocess.run([sys.executable, "-m", "mcp_proxy", "policy", "validate", str(tmp_path / "policy.jws"),
                            "--public-key", str(tmp_path / "pub.pem")], capture_output=True, text=True, env=env,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "verified by" in check.stdout and published["revision"] in check.stdout
    # The private key never reaches the page.
    page = client.get("/").text + client.get("/api/state").text + client.get("/static/app.js").text
    assert "PRIVATE KEY" not in page


def test_explain_for_a_user_uses_the_policys_decision_rule(console):
    client = session(console)
    post(client, console, "/api/ops", {"op": "approve", "keys": ["pd.manage_incidents"]})
    post(client, console, "/api/ops", {"op": "toolset", "toolset": "notes", "action": "add",
                                       "patterns": ["pd.manage_*"]})
    post(client, console, "/api/ops", {"op": "profile", "profile": "sre", "members": ["bob@example.com"],
                                       "toolsets": ["notes"]})
    bob = post(client, console, "/api/explain", {"user": "bob@example.com"}).json()
    assert [a["key"] for a in bob["available"]] == ["pd.manage_incidents"] and bob["profiles"] == ["sre"]
    assert bob["unavailableCounts"] == {"definition_changed": 1}
    carol = post(client, console, "/api/explain", {"user": "carol@example.com"}).json()
    assert carol["available"] == [] and carol["unavailableCounts"]["not_in_profile"] == 1
