"""Publishing to a policy server that requires a token: the real `admin` process, `--publish-token` as a secret
reference (env:NAME here; keyring:NAME in test_key_keychain.py), the sandbox policy server told to require
`Authorization: Bearer`, over real HTTP on 127.0.0.1. The token reaches that server and nothing else: not the
page, not a message, not stderr, not another origin a redirect points to."""

from __future__ import annotations

import json
import os

import pytest

from mcp_proxy.admin.ops import OpError
from mcp_proxy.admin.server import Publisher
from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.policy_server import create_app
from tests._support.admin import AdminProcess, admin_process, discovered, policy_dict, tool_def, write_otlp_file
from tests._support.redirects import origins

TOKEN = "pub-tok-7f3a9c1e5d2b"  # the value whose leaks the tests look for
NOTE = tool_def("add_note", "Add a note.")


@pytest.fixture
def server():
    app = create_app(document=b"{}", publish_token=TOKEN)
    running = serve_in_thread(app)
    yield app, running.url
    running.stop()


def env_for(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLICY_PUBLISH_TOKEN"}
    return {**env, "MCP_ACCESS_PROXY_HOME": str(tmp_path / "home"), **extra}


def console_args(tmp_path, url: str, *more: str) -> list[str]:
    inventory = write_otlp_file(tmp_path / "otlp.json", [[discovered("pd", [NOTE], "alice@example.com",
                                                                     "2026-11-20T10:00:00Z")]])
    (tmp_path / "policy.json").write_text(json.dumps(policy_dict({})))
    return ["--policy", str(tmp_path / "policy.json"), "--inventory", str(inventory), "--publish-url",
            url + "/policy.json", *more]


def publish(admin) -> tuple[int, dict]:
    client = admin.client()
    assert admin.post(client, "/api/ops", {"op": "approve", "keys": ["pd.add_note"]}).status_code == 200
    reply = admin.post(client, "/api/publish", {"expires_in_days": 5})
    page = client.get("/").text + client.get("/api/state").text + reply.text
    assert TOKEN not in page
    return reply.status_code, reply.json()


def test_without_a_token_the_server_says_401_and_the_console_says_what_to_give(server, tmp_path):
    app, url = server
    with admin_process(console_args(tmp_path, url), env_for(tmp_path), tmp_path) as admin:
        status, body = publish(admin)
    assert status == 400 and "HTTP 401" in body["error"] and "--publish-token keyring:NAME" in body["error"]
    assert app.state.puts == [] and app.state.requests[-1]["authorization"] is False


def test_a_wrong_token_is_refused_and_named_by_its_reference_never_by_its_value(server, tmp_path):
    app, url = server
    env = env_for(tmp_path, POLICY_PUBLISH_TOKEN="not-the-token")
    with admin_process(console_args(tmp_path, url, "--publish-token", "env:POLICY_PUBLISH_TOKEN"), env,
                       tmp_path) as admin:
        status, body = publish(admin)
    assert status == 400 and "HTTP 401" in body["error"] and "env:POLICY_PUBLISH_TOKEN" in body["error"]
    assert "not-the-token" not in body["error"] and "not-the-token" not in admin.stderr()
    assert app.state.puts == [] and app.state.requests[-1]["authorization"] is True


def test_the_right_token_publishes_and_appears_nowhere_but_in_the_request(server, tmp_path):
    app, url = server
    env = env_for(tmp_path, POLICY_PUBLISH_TOKEN=TOKEN)
    with admin_process(console_args(tmp_path, url, "--publish-token", "env:POLICY_PUBLISH_TOKEN", "--log-level",
                                            "debug"), env,
                       tmp_path) as admin:
        status, body = publish(admin)
    assert status == 200, body
    assert body["to"][-1] == url + "/policy.json" and len(app.state.puts) == 1
    assert b'"pd.add_note"' in app.state.puts[0]
    assert "published policy revision" in admin.stderr() and TOKEN not in admin.stderr()  # debug logs too
    logs = [p for p in (tmp_path / "home").rglob("*") if p.is_file() and p.suffix in (".log", ".txt")]
    assert all(TOKEN not in p.read_text(errors="replace") for p in logs)


def test_a_token_on_the_command_line_or_a_missing_one_is_refused_at_start(server, tmp_path):
    _, url = server
    for given, expected in ((TOKEN, "keyring:NAME or env:NAME, not the token itself"),
                            ("env:POLICY_PUBLISH_TOKEN", "environment variable POLICY_PUBLISH_TOKEN is not set")):
        with pytest.raises(RuntimeError) as failed:
            AdminProcess(console_args(tmp_path, url, "--publish-token", given), env_for(tmp_path), tmp_path)
        assert expected in str(failed.value) and TOKEN not in str(failed.value)


def test_a_redirect_of_the_put_is_not_followed_and_the_token_goes_nowhere_else(tmp_path):
    with origins(2) as (first, other):
        first.redirect("/policy.json", other.url + "/policy.json", status=307)
        publisher = Publisher(put_url=first.url + "/policy.json", put_token=TOKEN, token_ref="env:X")
        with pytest.raises(OpError) as refused:
            publisher.publish(policy_dict({}))
        message = str(refused.value)
        assert "redirect" in message and other.url in message and TOKEN not in message
        assert other.requests() == []  # the other origin got nothing, least of all the token
        assert [s.headers.get("authorization") for s in first.requests()] == [f"Bearer {TOKEN}"]
