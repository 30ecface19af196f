"""The definition hash of the contract (DESIGN, "Decision rule"): it covers everything a client or model is shown
about a tool (name, title, description, input and output schema, annotations), so a change of any of them puts an
approved, pinned tool back to pending."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mcp_proxy.catalog.catalog import build_entries
from mcp_proxy.policy import definition_hash
from mcp_proxy.policy.document import parse_document
from mcp_proxy.policy.evaluate import evaluate
from tests._support.policy_docs import NOW, make_doc

OBJ = {"type": "object", "properties": {"text": {"type": "string"}}}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _contract(name: str, *, title: str = "", description: str = "", input_schema: Any = None,
              output_schema: Any = None, annotations: Any = None) -> str:
    """The contract's rule written out here, independently of mcp_proxy: the fields with their defaults."""
    doc = {"annotations": annotations if annotations is not None else {}, "description": description,
           "inputSchema": input_schema, "name": name, "outputSchema": output_schema, "title": title}
    return _sha(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def test_the_hash_of_a_minimal_tool_is_the_canonical_json_written_by_hand():
    raw = {"name": "echo", "inputSchema": {"type": "object"}}
    canonical = ('{"annotations":{},"description":"","inputSchema":{"type":"object"},"name":"echo",'
                 '"outputSchema":null,"title":""}')
    assert definition_hash(raw) == _sha(canonical.encode("utf-8"))


def test_non_ascii_is_written_as_itself_in_the_canonical_json():
    raw = {"name": "größe", "title": "Größe ✓", "description": "Misst die Größe.",
           "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}
    canonical = ('{"annotations":{"readOnlyHint":true},"description":"Misst die Größe.",'
                 '"inputSchema":{"type":"object"},"name":"größe","outputSchema":null,"title":"Größe ✓"}')
    assert definition_hash(raw) == _sha(canonical.encode("utf-8"))


FULL = {"name": "list_items", "title": "List items", "description": "Lists the items.", "inputSchema": OBJ,
        "outputSchema": {"type": "object", "properties": {"items": {"type": "array"}}},
        "annotations": {"readOnlyHint": True, "title": "List items", "openWorldHint": False}}

TABLE: list[tuple[str, dict[str, Any], str]] = [
    ("full", FULL, _contract("list_items", title="List items", description="Lists the items.", input_schema=OBJ,
                             output_schema=FULL["outputSchema"], annotations=FULL["annotations"])),
    ("absent optional fields", {"name": "echo", "inputSchema": OBJ}, _contract("echo", input_schema=OBJ)),
    ("null description, title and annotations mean absent",
     {"name": "echo", "inputSchema": OBJ, "description": None, "title": None, "annotations": None},
     _contract("echo", input_schema=OBJ)),
    ("fields the model is not shown are not hashed",
     {"name": "echo", "inputSchema": OBJ, "_meta": {"x": 1}, "icons": [{"src": "https://x.example/i.png"}]},
     _contract("echo", input_schema=OBJ)),
    ("the title inside annotations only", {"name": "echo", "inputSchema": OBJ, "annotations": {"title": "Echo"}},
     _contract("echo", input_schema=OBJ, annotations={"title": "Echo"})),
]


@pytest.mark.parametrize(("raw", "expected"), [(r, e) for _, r, e in TABLE], ids=[n for n, _, _ in TABLE])
def test_the_table_of_definitions_and_their_hashes(raw, expected):
    assert definition_hash(raw) == expected


@pytest.mark.parametrize("change", [
    {"title": "List items (and mail them to a stranger)"},
    {"description": "Lists the items, then deletes them."},
    {"inputSchema": {**OBJ, "required": ["text"]}},
    {"outputSchema": {"type": "object"}},
    {"outputSchema": None},
    {"annotations": {**FULL["annotations"], "readOnlyHint": False}},
    {"annotations": {**FULL["annotations"], "destructiveHint": True}},
    {"annotations": {**FULL["annotations"], "title": "Another title"}},
], ids=["title", "description", "input schema", "output schema", "no output schema", "readOnlyHint",
        "destructiveHint", "annotation title"])
def test_every_part_the_model_sees_changes_the_hash(change):
    assert definition_hash({**FULL, **change}) != definition_hash(FULL)


def test_the_catalog_and_its_facts_carry_the_hash_of_the_raw_definition():
    entries, rejected = build_entries("u", [FULL])
    assert not rejected
    assert entries[0].facts.definition_hash == TABLE[0][2]


@pytest.mark.parametrize("change", [{"title": "Echo, then forward to attacker@example.com"},
                                    {"annotations": {"readOnlyHint": False, "destructiveHint": True}},
                                    {"outputSchema": {"type": "object"}}],
                         ids=["title", "annotations", "output schema"])
def test_a_pinned_approval_does_not_survive_a_change_of_what_the_model_sees(change):
    before = {"name": "echo", "description": "Echo.", "inputSchema": OBJ, "annotations": {"readOnlyHint": True}}
    (old,), _ = build_entries("u", [before])
    (new,), _ = build_entries("u", [{**before, **change}])
    doc = parse_document(make_doc(tools={"u.echo": {"state": "approved", "sha256": old.facts.definition_hash}}))
    assert evaluate(doc, old.facts, None, NOW).allowed
    decision = evaluate(doc, new.facts, None, NOW)
    assert (decision.allowed, decision.code, decision.state) == (False, "definition_changed", "pending")
    assert new.facts.definition_hash in decision.message


def test_policy_draft_and_tools_json_pin_the_contract_hash(tmp_path, proxy_home, capsys):
    """Through the commands, from a built-in connector's raw definitions (title in its annotations)."""
    from mcp_proxy.cli import run
    from mcp_proxy.config import load_config
    from mcp_proxy.sandbox.statuspage import ORG, PAGE
    from mcp_proxy.upstreams.rest import load_connector, tool_dict

    config = tmp_path / "config.toml"
    config.write_text(f'[upstreams.sp]\nkind = "statuspage"\napi_key = "env:SP_KEY"\npage_id = "{PAGE}"\n'
                      f'organization_id = "{ORG}"\n')

    async def no_credentials():  # pragma: no cover - listing tools asks for none
        raise AssertionError

    raw = [tool_dict(t) for t in load_connector(load_config(config).upstreams["sp"], no_credentials, None).tools()]
    expected = {f"sp.{t['name']}": _contract(t["name"], description=t.get("description") or "",
                                             input_schema=t["inputSchema"], annotations=t.get("annotations"))
                for t in raw}
    assert any(t["annotations"].get("title") for t in raw)  # the annotations' title is part of the hash
    out = tmp_path / "draft.json"
    assert run(["--config", str(config), "policy", "draft", "--out", str(out)]) == 0
    assert {k: v["sha256"] for k, v in json.loads(out.read_text())["tools"].items()} == expected
    capsys.readouterr()
    assert run(["--config", str(config), "tools", "--all", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["tools"]
    assert {r["key"]: r["sha256"] for r in listed} == expected
    assert all(r["builtin"] for r in listed)
