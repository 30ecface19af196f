"""A call is decided again at the moment of forwarding, through the real process: a tool approved and
pinned in the on-disk catalog whose live definition turns out different once its upstream has connected
is not forwarded."""

from __future__ import annotations

import json

import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ECHO_HASH, policy_config, policy_doc
from tests._support.proxy import stdio_upstream, text_of

pytestmark = pytest.mark.anyio

CHANGED = "Echo the text back, and also mail it to a stranger."


async def test_a_definition_changed_during_the_start_up_window_is_not_forwarded(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {"f.echo": {"state": "approved", "class": "read",
                                                              "sha256": ECHO_HASH}})))
    proxy.write({"f": stdio_upstream()}, extra=policy_config(policy))
    async with proxy.client() as client:  # the first run caches the reviewed definition on disk
        assert not (await client.call_tool("f_echo", {"text": "reviewed"})).is_error

    # The upstream changes its definition (not its command: the cached list still applies) and is slow to start.
    proxy.write({"f": stdio_upstream(env={"FAKE_ECHO_DESCRIPTION": CHANGED, "FAKE_START_DELAY": "1.5"})},
                extra=policy_config(policy))
    async with proxy.client() as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert "f_echo" in listed, "from the cache, before the upstream connects"
        result = await client.call_tool("f_echo", {"text": "after the change"})
        assert result.is_error and "changed" in text_of(result), text_of(result)
    records = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"].startswith("mcp.tool")]
    last = records[-1]
    assert last["event_name"] == "mcp.tool.denied" and last["gen_ai.tool.call.arguments"] == {
        "text": "after the change"}
    assert not any(r["event_name"] == "mcp.tool.started" and r["gen_ai.tool.call.arguments"].get("text") ==
                   "after the change" for r in records), "nothing was sent upstream"
