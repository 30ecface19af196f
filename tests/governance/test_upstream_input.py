"""An upstream's InputRequiredResult (the 2026-07-28 era's form of elicitation, sampling and roots requests)
is relayed under the governance rules, through the real process: only inside a call the policy allowed,
labelled with the upstream and the tool, every input request recorded as `mcp.upstream.request`; to a
handshake-era client through the session (the proxy retries the upstream), to a stateless-era client as an
InputRequiredResult of the proxy's own (the client retries, with the proxy's state)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mcp_types as types
import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import text_of

pytestmark = pytest.mark.anyio

ERA = str(Path(__file__).parents[1] / "gateway" / "era_upstream.py")


def _write(proxy, tmp_path, approved=("ask", "sample", "roots"), **env: str) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {f"f.{t}": {"state": "approved", "class": "read"}
                                                   for t in approved})))
    proxy.write({"f": {"kind": "mcp", "command": sys.executable, "args": [ERA],
                       "env": {"ERA_UPSTREAM_MODE": "dual", **env}}}, extra=policy_config(policy))


def _requests(proxy) -> list[dict]:
    return [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "mcp.upstream.request"]


def _calls(proxy) -> list[dict]:
    return [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "mcp.tool.call"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_an_input_request_of_an_approved_call_is_relayed_labelled_and_recorded(proxy, tmp_path, mode):
    _write(proxy, tmp_path)
    asked: list[str] = []

    async def user(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "green"})

    async with proxy.client(elicitation_callback=user, mode=mode) as client:
        result = await client.call_tool("f_ask", {"question": "favourite colour?"})
        assert not result.is_error and text_of(result) == "accept:green"
    assert asked == ["[f, while running f_ask] favourite colour?"]
    records = _requests(proxy)
    assert records and all((r["mcp.request.kind"], r["decision"], r["upstream"], r["upstream.tool"])
                           == ("elicitation", "allow", "f", "ask") for r in records)
    assert records[-1]["elicitation.action"] == "accept"
    assert {r["gen_ai.tool.call.id"] for r in records} <= {c["gen_ai.tool.call.id"] for c in _calls(proxy)}
    assert _calls(proxy)[-1]["outcome"] == "ok"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_several_rounds_are_relayed_and_endless_asking_is_stopped(proxy, tmp_path, mode):
    _write(proxy, tmp_path, ERA_UPSTREAM_ROUNDS="3")

    async def user(context, params):
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async with proxy.client(elicitation_callback=user, mode=mode) as client:
        result = await client.call_tool("f_ask", {"question": "?"})
        assert text_of(result) == "accept:blue"
    _write(proxy, tmp_path, ERA_UPSTREAM_ROUNDS="50")
    async with proxy.client(elicitation_callback=user, mode=mode) as client:
        result = await client.call_tool("f_ask", {"question": "?"})
        assert result.is_error and "kept asking" in text_of(result)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_kind_the_client_cannot_serve_is_refused_and_recorded(proxy, tmp_path, mode):
    _write(proxy, tmp_path)
    async with proxy.client(mode=mode) as client:  # no sampling callback: no sampling capability
        result = await client.call_tool("f_sample", {})
        assert result.is_error and "sampling" in text_of(result)
    [record] = _requests(proxy)
    assert (record["mcp.request.kind"], record["decision"], record["upstream.tool"]) == ("sampling", "deny", "sample")


async def test_an_unapproved_tool_never_asks(proxy, tmp_path):
    _write(proxy, tmp_path, approved=("sample",))
    asked: list[str] = []

    async def user(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "x"})

    async with proxy.client(elicitation_callback=user, mode="auto") as client:
        result = await client.call_tool("f_ask", {"question": "password?"})
        assert result.is_error
    assert asked == [] and _requests(proxy) == []
