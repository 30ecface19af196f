"""Through the real proxy process: a change of an approved, pinned tool's title or readOnlyHint puts it back to
pending (hidden, calls denied, `tool.definition_changed` recorded)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests._support.audit import home_paths, spool_records
from tests._support.policy_process import ACCESS_TOOLS, ECHO_HASH, ListChanged, policy_config, policy_doc
from tests._support.proxy import PY, text_of
from tests.gateway.fake_upstream import ECHO

pytestmark = pytest.mark.anyio

CHANGING = str(Path(__file__).parents[1] / "_support" / "changing_upstream.py")
ECHO_DEFINITION = {"name": "echo", "description": "Echo the text back.", "inputSchema": ECHO,
                   "annotations": {"readOnlyHint": True}}


def _contract_hash(tool: dict[str, Any]) -> str:
    """The contract's definition hash, written out here rather than imported."""
    doc = {"annotations": tool.get("annotations") or {}, "description": tool.get("description") or "",
           "inputSchema": tool["inputSchema"], "name": tool["name"], "outputSchema": tool.get("outputSchema"),
           "title": tool.get("title") or ""}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode("utf-8")).hexdigest()


async def _names(client: Any) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def _until(client: Any, holds: Callable[[set[str]], bool], what: str, timeout: float = 30.0) -> None:
    """Poll tools/list until `holds`: on a loaded machine the upstream may answer after the first list."""
    deadline = time.monotonic() + timeout
    while not holds(await _names(client)):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await anyio.sleep(0.1)


def test_the_pinned_hash_of_the_fake_echo_follows_the_contract():
    assert _contract_hash(ECHO_DEFINITION) == ECHO_HASH


@pytest.mark.parametrize("override", [
    {"title": "Echo (and mail the text to a stranger)"},
    {"annotations": {"readOnlyHint": False, "destructiveHint": True}},
], ids=["title", "readOnlyHint"])
async def test_an_approved_pinned_tool_whose_title_or_hint_changes_is_pending_again(proxy, tmp_path, override):
    override_file = tmp_path / "echo-override.json"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(policy_doc("r1", {
        "f.echo": {"state": "approved", "class": "read", "sha256": ECHO_HASH},
        "f.grow": {"state": "approved", "class": "write"},  # not pinned: it makes the upstream re-announce
    })))
    # The handshake era: the fake announces its new list with list_changed, which 2026-07-28 does not have.
    upstream = {"kind": "mcp", "command": PY, "args": [CHANGING], "env": {"FAKE_ECHO_OVERRIDE": str(override_file)},
                "protocol": "legacy"}
    proxy.write({"f": upstream}, extra=policy_config(policy))
    changes = ListChanged()
    async with proxy.client(message_handler=changes) as client:
        await _until(client, lambda names: "f_echo" in names, "the approved echo is listed")
        assert await _names(client) == ACCESS_TOOLS | {"f_echo", "f_grow"}
        assert not (await client.call_tool("f_echo", {"text": "before"})).is_error
        override_file.write_text(json.dumps(override))
        assert not (await client.call_tool("f_grow", {})).is_error  # the upstream lists its tools again
        await _until(client, lambda names: "f_echo" not in names, "the changed echo is no longer listed")
        assert await _names(client) == ACCESS_TOOLS | {"f_grow"}
        denied = await client.call_tool("f_echo", {"text": "after"})
        assert denied.is_error and "changed upstream since it was approved" in text_of(denied)
    changed = {**ECHO_DEFINITION, **override,
               "annotations": {**ECHO_DEFINITION["annotations"], **override.get("annotations", {})}}
    new_hash = _contract_hash(changed)
    assert new_hash in text_of(denied)
    events = [r for r in spool_records(home_paths(proxy.home)) if r["event_name"] == "tool.definition_changed"]
    assert [(e["tool.key"], e["approved_sha256"], e["current_sha256"]) for e in events] == [
        ("f.echo", ECHO_HASH, new_hash)]
