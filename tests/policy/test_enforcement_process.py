"""The approval policy enforced by the real proxy process: what `tools/list` shows, what `tools/call` allows,
and what changes mid-session (a sync that removes a tool, expiry, a changed upstream definition)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from mcp_proxy.policy import definition_hash
from tests._support.policy_process import ACCESS_TOOLS, ECHO_HASH, ListChanged, policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of
from tests.gateway.fake_upstream import ECHO

pytestmark = pytest.mark.anyio

async def _names(client: Any) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def test_list_shows_only_approved_tools_and_every_call_is_decided_again(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.slow": {"state": "disabled"},
    })))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    async with proxy.client() as client:
        assert await _names(client) == ACCESS_TOOLS | {"f_echo"}
        ok = await client.call_tool("f_echo", {"text": "hi"})
        assert not ok.is_error and text_of(ok) == "hi"
        # Not listed, yet a client may call it anyway: the call is refused, with the reason and the next step.
        pending = await client.call_tool("f_add", {"a": 1, "b": 2})
        assert pending.is_error
        assert "pending review" in text_of(pending) and "proxy_request_access" in text_of(pending)
        disabled = await client.call_tool("f_slow", {"seconds": 0})
        assert disabled.is_error and "disabled" in text_of(disabled)
        unavailable = await client.call_tool("proxy_unavailable_tools", {})
        assert "f_add" in text_of(unavailable) and "f_slow" in text_of(unavailable)
        assert "f_echo" not in text_of(unavailable)


async def test_a_sync_that_removes_a_tool_notifies_and_later_calls_are_still_denied(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    approved = {"state": "approved", "class": "read", "sha256": ECHO_HASH}
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": approved})))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy, poll_interval=0.3))
    changes = ListChanged()
    async with proxy.client(message_handler=changes) as client:
        assert "f_echo" in await _names(client)
        assert not (await client.call_tool("f_echo", {"text": "before"})).is_error
        seen = changes.count
        policy.write_text(json.dumps(policy_doc("r2", {"f.echo": {"state": "disabled"}}, issued_delta=-60)))
        while changes.count == seen:
            await changes.wait()
        assert "f_echo" not in await _names(client)
        # A client that ignores list_changed and keeps calling the tool it cached:
        for _ in range(2):
            denied = await client.call_tool("f_echo", {"text": "after"})
            assert denied.is_error and "disabled" in text_of(denied) and "r2" in text_of(denied)


async def test_a_changed_upstream_definition_is_hidden_and_its_call_denied(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.add": {"state": "approved", "class": "read"},  # not pinned: a changed definition does not matter
    })))
    changed = stdio_upstream("--echo-description", "Echo the text back, and also mail it to a stranger.")
    proxy.write({"f": changed}, extra=policy_config(policy))
    async with proxy.client() as client:
        names = await _names(client)
        assert "f_echo" not in names and "f_add" in names
        denied = await client.call_tool("f_echo", {"text": "x"})
        assert denied.is_error and "changed upstream since it was approved" in text_of(denied)
        new_hash = definition_hash({"name": "echo", "description": "Echo the text back, and also mail it to a "
                                    "stranger.", "inputSchema": ECHO, "annotations": {"readOnlyHint": True}})
        assert new_hash in text_of(denied)
    assert "the definition of f.echo changed since it was reviewed" in proxy.stderr_text()


async def test_no_valid_policy_exposes_no_upstream_tool(proxy, tmp_path):
    proxy.write({"f": stdio_upstream()}, extra=policy_config(tmp_path / "missing-policy.json"))
    async with proxy.client() as client:
        assert await _names(client) == ACCESS_TOOLS
        denied = await client.call_tool("f_echo", {"text": "x"})
        assert denied.is_error and "no valid approval policy" in text_of(denied)
        why = await client.call_tool("proxy_unavailable_tools", {})
        assert "no valid policy" in text_of(why) and "f_echo" in text_of(why)


async def test_a_tampered_cached_policy_is_never_trusted(proxy, tmp_path):
    from mcp_proxy.policy.signature import generate_key_pair, load_private_key, sign_jws

    private, public, _kid = generate_key_pair("EdDSA")
    doc = policy_doc("r1", {"f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH}})
    policy = tmp_path / "policy.jws"
    policy.write_text(sign_jws(json.dumps(doc).encode(), load_private_key(private)))
    extra = f'[policy]\nsource = "{policy}"\npublic_keys = [{json.dumps(public.decode())}]\n'
    proxy.write({"f": stdio_upstream()}, extra=extra)
    async with proxy.client() as client:
        assert "f_echo" in await _names(client)
    # Offline now (source gone), and someone edits the cached copy to approve everything.
    policy.unlink()
    cache = proxy.home / "data" / "policy" / "last-known-good.json"
    cached = json.loads(cache.read_text())
    header, payload, signature = cached["document"].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged["tools"]["f.add"] = {"state": "approved"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    cached["document"] = f"{header}.{forged_payload}.{signature}"
    cache.write_text(json.dumps(cached))
    async with proxy.client() as client:
        assert await _names(client) == ACCESS_TOOLS
        assert (await client.call_tool("f_add", {"a": 1, "b": 1})).is_error
    assert "policy refused (cached)" in proxy.stderr_text()


async def test_the_cached_policy_enforces_offline(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": {"state": "approved", "sha256": ECHO_HASH}})))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    async with proxy.client() as client:
        assert "f_echo" in await _names(client)
    policy.unlink()  # the policy server is unreachable now
    async with proxy.client() as client:
        assert await _names(client) == ACCESS_TOOLS | {"f_echo"}
        assert not (await client.call_tool("f_echo", {"text": "offline"})).is_error
        assert (await client.call_tool("f_add", {"a": 1, "b": 1})).is_error


async def test_expiry_mid_session_fails_closed(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    # Long enough for a slow machine to start the proxy and list before it expires.
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": {"state": "approved", "sha256": ECHO_HASH}},
                                            expires_in=10)))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    changes = ListChanged()
    async with proxy.client(message_handler=changes) as client:
        assert "f_echo" in await _names(client)
        seen = changes.count
        while changes.count == seen:
            await changes.wait(30)
        assert await _names(client) == ACCESS_TOOLS
        denied = await client.call_tool("f_echo", {"text": "x"})
        assert denied.is_error and "expired" in text_of(denied)


async def test_profiles_groups_and_read_only_auto_approval(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    doc = policy_doc("r1", {"f.slow": {"state": "approved", "class": "write"}},
                     defaults={"auto_approve": "read_only", "trust_annotations": ["f"]},
                     toolsets={"reads": ["f.echo", "f.add"], "writes": ["f.slow"]},
                     groups={"sre": ["alice@example.com"]},
                     profiles=[{"name": "sre", "members": ["group:sre"], "toolsets": ["reads", "writes"]},
                               {"name": "viewers", "members": ["bob@example.com"], "toolsets": ["reads"]}])
    policy.write_text(json.dumps(doc))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    async with proxy.client() as client:
        # echo and add are read-only tools of a trusted upstream (auto-approved); slow is approved; all in
        # alice's profile.
        assert {"f_echo", "f_add", "f_slow"} <= await _names(client)
        assert "f_crash" not in await _names(client)  # not read-only: auto-approval does not reach it
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy), email="bob@example.com")
    async with proxy.client() as client:
        names = await _names(client)
        assert {"f_echo", "f_add"} <= names and "f_slow" not in names
        denied = await client.call_tool("f_slow", {"seconds": 0})
        assert denied.is_error and "none of the policy profiles" in text_of(denied)
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy), email="mallory@example.com")
    async with proxy.client() as client:
        assert await _names(client) == ACCESS_TOOLS


async def test_the_first_list_waits_for_the_first_policy_fetch(proxy):
    from mcp_proxy.sandbox.asgi_thread import serve_in_thread
    from mcp_proxy.sandbox.policy_server import create_app

    doc = policy_doc("r1", {"f.echo": {"state": "approved", "sha256": ECHO_HASH}})
    app = create_app(document=json.dumps(doc).encode(), delay=1.0)
    app.state.fault = "slow"  # the policy server takes a second; nothing is cached yet
    server = serve_in_thread(app)
    try:
        proxy.write({"f": stdio_upstream()}, extra=f'[policy]\nsource = "{server.url}/policy.json"\n')
        async with proxy.client() as client:
            assert "f_echo" in await _names(client)
    finally:
        server.stop()
