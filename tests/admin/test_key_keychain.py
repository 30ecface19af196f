"""`admin --key-keychain NAME` against a real Secret Service (gnome-keyring on a private D-Bus session,
tests/_support/keychain.py): the key stored with the real `secret set`, the console signing with it in the
real `admin` process, the published document verified with the public key, and the key reaching neither the
page nor the policy server. Without gnome-keyring and dbus-daemon this skips and says what to install; CI sets
MCP_PROXY_TEST_REQUIRE_KEYCHAIN=1, so there it cannot skip."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from mcp_proxy.sandbox.asgi_thread import serve_in_thread
from mcp_proxy.sandbox.policy_server import create_app
from tests._support.admin import (
    AdminProcess,
    admin_process,
    discovered,
    policy_dict,
    run_cli,
    tool_def,
    write_otlp_file,
)
from tests._support.keychain import running_secret_service

NOTE = tool_def("add_note", "Add a note.")
PUBLISH_TOKEN = "kc-publish-token-41d9"


@pytest.fixture
def keychain_env(tmp_path) -> Iterator[dict[str, str]]:
    """The environment of processes that use a throwaway Secret Service (and their own proxy home)."""
    with running_secret_service() as service:
        yield service.env({**os.environ, "MCP_ACCESS_PROXY_HOME": str(tmp_path / "home")})


def key_pair(tmp_path, env: dict[str, str]) -> tuple[bytes, str]:
    made = run_cli(["policy", "keygen", "--out", str(tmp_path / "signing")], env)
    assert made.returncode == 0, made.stderr
    return (tmp_path / "signing.pem").read_bytes(), str(tmp_path / "signing.pub.pem")


def secret_lines(pem: bytes) -> list[str]:
    """The private key's base64 lines: what would show if any part of the key leaked."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def test_the_key_from_the_keychain_signs_and_never_reaches_the_page(keychain_env, tmp_path):
    private_pem, public_path = key_pair(tmp_path, keychain_env)
    stored = run_cli(["secret", "set", "policy-signing"], keychain_env, stdin=private_pem)
    assert stored.returncode == 0, stored.stderr
    assert run_cli(["secret", "set", "policy-publish"], keychain_env, stdin=PUBLISH_TOKEN.encode()).returncode == 0
    (tmp_path / "signing.pem").unlink()  # from now on the key is only in the keychain
    inventory = write_otlp_file(tmp_path / "otlp.json", [[discovered("pd", [NOTE], "alice@example.com",
                                                                     "2026-11-20T10:00:00Z")]])
    (tmp_path / "policy.json").write_text(json.dumps(policy_dict({})))
    app = create_app(document=b"{}", publish_token=PUBLISH_TOKEN)
    server = serve_in_thread(app)
    args = ["--key-keychain", "policy-signing", "--policy", str(tmp_path / "policy.json"), "--inventory",
            str(inventory), "--publish-url", server.url + "/policy.jws", "--publish-token", "keyring:policy-publish"]
    try:
        with admin_process(args, keychain_env, tmp_path) as admin:
            client = admin.client()
            assert admin.post(client, "/api/ops", {"op": "approve", "keys": ["pd.add_note"]}).status_code == 200
            published = admin.post(client, "/api/publish", {"expires_in_days": 3})
            assert published.status_code == 200, published.text
            assert published.json()["signed"] is True
            seen = "".join(client.get(path).text for path in (
                "/", "/static/app.js", "/api/state", "/api/tool?key=pd.add_note")) + published.text
            stderr = admin.stderr()
    finally:
        server.stop()
    for leaked in ("PRIVATE KEY", *secret_lines(private_pem), PUBLISH_TOKEN):
        assert leaked not in seen and leaked not in stderr
    # What was published is a JWS the public key verifies: the file next to the policy, and the PUT's body.
    [put] = app.state.puts
    assert all(line.encode() not in put for line in secret_lines(private_pem))
    (tmp_path / "put.jws").write_bytes(put)
    for jws in (tmp_path / "policy.jws", tmp_path / "put.jws"):
        check = run_cli(["policy", "validate", str(jws), "--public-key", public_path], keychain_env)
        assert check.returncode == 0 and "verified by" in check.stdout, check.stdout + check.stderr
        assert published.json()["revision"] in check.stdout


def test_a_missing_keychain_entry_says_how_to_store_the_key(keychain_env, tmp_path):
    with pytest.raises(RuntimeError) as failed:
        AdminProcess(["--key-keychain", "no-such-key"], keychain_env, tmp_path)
    assert "no keychain entry 'no-such-key'" in str(failed.value)
    assert "mcp-access-proxy secret set no-such-key < key.pem" in str(failed.value)


def test_a_keychain_entry_that_is_not_a_key_names_the_entry(keychain_env, tmp_path):
    assert run_cli(["secret", "set", "not-a-key"], keychain_env, stdin=b"hunter2-not-a-pem").returncode == 0
    with pytest.raises(RuntimeError) as failed:
        AdminProcess(["--key-keychain", "not-a-key"], keychain_env, tmp_path)
    message = str(failed.value)
    assert "keychain entry 'not-a-key'" in message and "policy keygen" in message
    assert "hunter2" not in message
