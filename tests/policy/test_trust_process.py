"""Through the real proxy process: auto-approval trusts an MCP upstream's readOnlyHint only when the policy names
the upstream in defaults.trust_annotations; a built-in connector's read tools are approved without that."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import anyio
import pytest

from mcp_proxy.sandbox.statuspage import ORG, PAGE
from tests._support.policy_process import policy_config, policy_doc
from tests._support.proxy import PY, stdio_upstream, text_of

pytestmark = pytest.mark.anyio


def _statuspage() -> dict[str, Any]:
    # Listing a built-in connector's tools needs neither its vendor nor a credential: nothing is called here.
    return {"kind": "statuspage", "base_url": "http://127.0.0.1:9", "api_key": "env:SP_KEY", "page_id": PAGE,
            "organization_id": ORG}


async def test_auto_approval_trusts_only_named_upstreams_and_built_in_read_tools(proxy, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {}, defaults={"auto_approve": "read_only",
                                                                "trust_annotations": ["trusted"]})))
    proxy.write({"claims": stdio_upstream(), "trusted": stdio_upstream("--name", "trusted"), "sp": _statuspage()},
                extra=policy_config(policy))
    async with proxy.client() as client:
        deadline = time.monotonic() + 30
        while True:  # three upstreams start at once: on a loaded machine one may answer after the first list
            tools = {t.name: t for t in (await client.list_tools()).tools}
            if "trusted_echo" in tools or time.monotonic() > deadline:
                break
            await anyio.sleep(0.2)
        # The trusted upstream's read-only tools are auto-approved; its others are not.
        assert {"trusted_echo", "trusted_add"} <= set(tools) and "trusted_slow" not in tools
        # The same claims from an upstream the policy does not trust approve nothing.
        assert not [name for name in tools if name.startswith("claims_")]
        denied = await client.call_tool("claims_echo", {"text": "x"})
        assert denied.is_error and "pending review" in text_of(denied)
        assert not (await client.call_tool("trusted_echo", {"text": "x"})).is_error
        # A built-in connector's read tools stay auto-approved, and only those.
        builtin = [t for name, t in tools.items() if name.startswith("sp_")]
        assert builtin and all(t.annotations and t.annotations.read_only_hint is True for t in builtin)
    explain = subprocess.run([PY, "-m", "mcp_proxy", "--config", str(proxy.config), "policy", "explain",
                              "claims_echo"], capture_output=True, text=True, env=proxy.env(), timeout=120)
    assert "its upstream 'claims' is not in defaults.trust_annotations" in explain.stdout
    assert "NOT AVAILABLE (pending)" in explain.stdout
