"""The example policy's pins match the built-in connectors' definitions as they are now.

A description or schema edit of a connector changes its tools' definition hashes (policy/definition.py), which
puts every pinned policy entry for them back to pending; the example must be re-pinned with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from mcp_proxy.config.load import parse_config
from mcp_proxy.connectors.base import Credential
from mcp_proxy.policy.definition import definition_hash
from mcp_proxy.upstreams.rest import load_connector, tool_dict

EXAMPLE = Path(__file__).resolve().parents[2] / "client-configs" / "policy.example.json"


async def _no_credentials() -> Credential:
    raise AssertionError("listing tools calls nothing")


def test_every_pin_is_the_current_definition_hash() -> None:
    tools = json.loads(EXAMPLE.read_text(encoding="utf-8"))["tools"]
    config = parse_config({"user": {"email": "a@example.com"}, "secrets": {"store": "file"},
                           "upstreams": {"og": {"kind": "opsgenie", "api_key": "keyring:og"}}})
    connector = load_connector(config.upstreams["og"], _no_credentials, "a@example.com")
    current = {f"og.{t.name}": definition_hash(tool_dict(t)) for t in connector.tools()}
    pinned = {key: entry["sha256"] for key, entry in tools.items() if "sha256" in entry}
    assert pinned, "the example pins some tools"
    assert {key: current.get(key) for key in pinned} == pinned
