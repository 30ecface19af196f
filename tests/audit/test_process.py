"""Records of each event kind, and redaction with the config's real secrets, through the real proxy process."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from mcp_proxy.audit.layout import Layout
from mcp_proxy.audit.redact import value_hash
from mcp_proxy.audit.verify import verify
from tests._support.audit import audit_toml, fake_upstream, home_paths, spool_bytes, spool_records, wait_for
from tests._support.proxy import PY, text_of

pytestmark = pytest.mark.anyio


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _policy(tmp_path, **tools) -> str:
    now = datetime.now(UTC)
    doc = {"schema": 1, "revision": "rev-42", "issued_at": _iso(now - timedelta(hours=1)),
           "expires_at": _iso(now + timedelta(days=1)),
           "defaults": {"auto_approve": "read_only", "trust_annotations": ["fake"]}, "tools": tools}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    return str(path)


async def test_every_call_outcome_leaves_one_record_ungoverned(proxy):
    proxy.write({"fake": fake_upstream()})
    async with proxy.client() as client:
        await client.list_tools()
        assert not (await client.call_tool("fake_echo", {"text": "hello"})).is_error
        assert (await client.call_tool("fake_fail", {"text": "x"})).is_error
        assert (await client.call_tool("fake_echo", {"text": 5})).is_error  # invalid arguments
        assert (await client.call_tool("fake_nope", {})).is_error  # no such tool
    records = spool_records(home_paths(proxy.home))
    by_event: dict[str, list[dict]] = {}
    for r in records:
        by_event.setdefault(r["event_name"], []).append(r)
    (discovered,) = by_event["tools.discovered"]
    assert discovered["upstream"] == "fake" and discovered["tool_count"] == 3
    ok, tool_error, error = by_event["mcp.tool.call"]
    assert (ok["outcome"], ok["gen_ai.tool.name"], ok["upstream.tool"]) == ("ok", "fake_echo", "echo")
    assert ok["gen_ai.tool.call.arguments"] == {"text": "hello"} and ok["decision"] == "allow"
    assert ok["mcp.method.name"] == "tools/call" and ok["jsonrpc.request.id"] and ok["duration_ms"] >= 0
    assert (tool_error["outcome"], tool_error["error.type"]) == ("tool_error", "tool_error")
    assert (error["outcome"], error["error.type"]) == ("error", "invalid_arguments")
    (denied,) = by_event["mcp.tool.denied"]
    assert denied["policy.decision.code"] == "unknown_tool" and denied["decision"] == "deny"
    assert "fake_nope" in denied["reason"]
    for r in records:  # ungoverned mode is visible on every record, with who and which client
        assert r["policy.governed"] is False and r["user.email"] == "alice@example.com"
        assert r["host.name"] and r["service.version"] and r["service.instance.id"]
    assert all(r["mcp.client.name"] == "pytest-client" and r["mcp.client.version"] == "1.0"
               for r in by_event["mcp.tool.call"])
    assert verify(Layout(home_paths(proxy.home))).ok


async def test_policy_events_denials_and_access_requests_under_a_policy(proxy, tmp_path):
    source = _policy(tmp_path, **{"fake.echo": {"state": "approved", "hash": ["customer"], "redact": ["note"]}})
    proxy.write({"fake": fake_upstream()}, extra=f'[policy]\nsource = "{source}"\npoll_interval = 0.2\n')
    async with proxy.client() as client:
        async def listed() -> set[str]:
            return {t.name for t in (await client.list_tools()).tools}

        deadline = time.monotonic() + 20
        while "fake_echo" not in await listed() and time.monotonic() < deadline:
            await anyio.sleep(0.1)
        assert {"fake_echo", "fake_read"} <= await listed() and "fake_fail" not in await listed()
        echo = await client.call_tool("fake_echo", {"text": "t", "customer": "acme", "note": "private"})
        assert not echo.is_error
        assert (await client.call_tool("fake_fail", {})).is_error
        request = await client.call_tool("proxy_request_access", {"tool": "fake_fail", "reason": "on call tonight"})
        assert "recorded" in text_of(request)
    records = spool_records(home_paths(proxy.home))
    activated = [r for r in records if r["event_name"] == "policy.activated"]
    assert activated and activated[0]["policy.revision"] == "rev-42"
    later = records[records.index(activated[0]) + 1:]
    assert all(r["policy.governed"] is True for r in records)
    (call,) = [r for r in later if r["event_name"] == "mcp.tool.call" and r["upstream.tool"] == "echo"]
    assert call["policy.revision"] == "rev-42"
    assert call["gen_ai.tool.call.arguments"] == {"text": "t", "customer": value_hash("acme"), "note": "[REDACTED]"}
    assert "arguments.note:configured" in call["audit.redactions"]
    (denied,) = [r for r in later if r["event_name"] == "mcp.tool.denied"]
    assert denied["gen_ai.tool.name"] == "fake_fail" and denied["policy.decision.code"] == "pending"
    (asked,) = [r for r in later if r["event_name"] == "access.requested"]
    assert asked["tool.key"] == "fake.fail" and asked["reason"] == "on call tonight"
    assert asked["policy.revision"] == "rev-42" and asked["user.email"] == "alice@example.com"


async def test_the_configs_real_secrets_never_reach_the_spool_or_the_collector(proxy, collector):
    c, url = collector
    token = "tok_" + secrets.token_hex(12)
    audit = audit_toml(collector=url, push_interval=0.2, redact_fields=["note"], hash_fields=["customer"])
    proxy.write({"fake": fake_upstream(env={"UPSTREAM_TOKEN": "env:AUDIT_UPSTREAM_TOKEN"})}, extra=audit)
    env = proxy.env(AUDIT_UPSTREAM_TOKEN=token)
    async with proxy.client(env=env) as client:
        await client.list_tools()
        result = await client.call_tool("fake_echo", {"text": "show me", "show_token": True})
        assert token in text_of(result)  # the upstream really has it, and the model may now repeat it
        await client.call_tool("fake_echo", {"text": f"the key is {token}!", "note": "n", "customer": "acme",
                                             "password": "hunter2", "nested": {"Authorization": f"Bearer {token}"}})
        await client.call_tool("fake_nope", {"text": token})
        await wait_for(lambda: len(c.by_event("mcp.tool.call")) >= 2, 30)
    raw = spool_bytes(home_paths(proxy.home))
    assert token.encode() not in raw and b"hunter2" not in raw
    assert token not in json.dumps(c.records)
    second = [r for r in spool_records(home_paths(proxy.home))
              if r.get("gen_ai.tool.call.arguments", {}).get("note")]
    assert [r["event_name"] for r in second] == ["mcp.tool.started", "mcp.tool.call"]
    for record in second:  # both records of the call carry the arguments, redacted alike
        args = record["gen_ai.tool.call.arguments"]
        assert args["text"] == "the key is [REDACTED]!" and args["password"] == "[REDACTED]"
        assert args["note"] == "[REDACTED]" and args["customer"] == value_hash("acme")
        assert args["nested"] == {"Authorization": "[REDACTED]"}


async def test_stdin_eof_flushes_and_the_next_process_ships_the_rest(proxy, collector):
    c, url = collector
    proxy.write({"fake": fake_upstream()})  # no collector: local only
    async with proxy.client() as client:
        await client.list_tools()
        for i in range(5):
            await client.call_tool("fake_echo", {"text": f"offline {i}"})
    ids = {r["id"] for r in spool_records(home_paths(proxy.home))}
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, push_interval=0.2))
    out = subprocess.run([PY, *proxy.argv(), "audit", "push"], env=proxy.env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert ids <= c.ids


async def test_collector_down_for_a_while_then_up(proxy, collector):
    c, url = collector
    c.fault = "down"
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, push_interval=0.2, max_retry_interval=0.6))
    async with proxy.client() as client:
        await client.list_tools()
        for i in range(6):
            assert not (await client.call_tool("fake_echo", {"text": f"during outage {i}"})).is_error
        await wait_for(lambda: len(c.requests) >= 3, 30)  # it keeps trying, backing off
        assert c.records == []
        c.fault = None
        await wait_for(lambda: len(c.by_event("mcp.tool.call")) == 6, 30)
        texts = sorted(r["gen_ai.tool.call.arguments"]["text"] for r in c.by_event("mcp.tool.call"))
        assert texts == [f"during outage {i}" for i in range(6)]
    assert c.duplicates == 0
    assert any(q["status"] == 503 for q in c.requests) and all(q["encoding"] == "gzip" for q in c.requests)


async def test_429_with_retry_after_is_honoured_by_serve(proxy, collector):
    c, url = collector
    c.fault, c.retry_after, c.fault_times = "429", "2", 1
    proxy.write({"fake": fake_upstream()}, extra=audit_toml(collector=url, push_interval=0.1, max_retry_interval=5))
    async with proxy.client() as client:
        await client.list_tools()
        await client.call_tool("fake_echo", {"text": "x"})
        await wait_for(lambda: c.by_event("mcp.tool.call"), 30)
    refused = next(i for i, q in enumerate(c.requests) if q["status"] == 429)
    assert c.requests[refused + 1]["at"] - c.requests[refused]["at"] >= 1.9  # waited as told, not push_interval
