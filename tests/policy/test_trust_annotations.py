"""`defaults.trust_annotations`: an MCP upstream's own readOnlyHint auto-approves its tool only when the policy
trusts that upstream's annotations; a built-in connector's read tools are the proxy's own code and stay
auto-approvable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mcp_proxy.catalog.catalog import build_entries
from mcp_proxy.policy.document import DocumentError, parse_document
from mcp_proxy.policy.evaluate import Step, evaluate
from tests._support.policy_docs import NOW, make_doc, tool

UPSTREAM_READ = tool("fs.read_file", read_only=True)  # an MCP server's claim about itself
BUILTIN_READ = replace(tool("pd.list_incidents", read_only=True), builtin=True)
BUILTIN_WRITE = replace(tool("pd.create_incident"), builtin=True)


def decide(defaults: dict, facts, tools: dict | None = None, trace: list[Step] | None = None):
    return evaluate(parse_document(make_doc(defaults=defaults, tools=tools or {})), facts, None, NOW, trace=trace)


def test_an_upstreams_read_only_claim_is_not_evidence_by_itself():
    d = decide({"auto_approve": "read_only"}, UPSTREAM_READ)
    assert (d.allowed, d.code) == (False, "pending")


def test_a_trusted_upstreams_read_only_tool_is_auto_approved():
    assert decide({"auto_approve": "read_only", "trust_annotations": ["fs"]}, UPSTREAM_READ).allowed
    # trust is per upstream key: another upstream's trust does not reach this one
    assert not decide({"auto_approve": "read_only", "trust_annotations": ["other"]}, UPSTREAM_READ).allowed
    # trust alone approves nothing: auto_approve must be read_only
    assert not decide({"auto_approve": "none", "trust_annotations": ["fs"]}, UPSTREAM_READ).allowed


def test_a_built_in_connectors_read_tools_stay_auto_approvable():
    assert decide({"auto_approve": "read_only"}, BUILTIN_READ).allowed
    assert not decide({"auto_approve": "read_only"}, BUILTIN_WRITE).allowed
    # the administrator's class still overrides
    assert not decide({"auto_approve": "read_only"}, BUILTIN_READ,
                      {BUILTIN_READ.key: {"state": "pending", "class": "write"}}).allowed


def test_an_explicit_approval_needs_no_trust():
    assert decide({"auto_approve": "none"}, UPSTREAM_READ, {UPSTREAM_READ.key: {"state": "approved"}}).allowed


def test_explain_says_why_a_read_only_annotated_tool_was_not_auto_approved():
    trace: list[Step] = []
    decide({"auto_approve": "read_only", "trust_annotations": ["other"]}, UPSTREAM_READ, trace=trace)
    (state,) = [s for s in trace if s.rule == "state"]
    assert state.passed is False
    assert "its upstream 'fs' is not in defaults.trust_annotations" in state.detail
    trace = []
    decide({"auto_approve": "read_only", "trust_annotations": ["fs"]}, UPSTREAM_READ, trace=trace)
    assert "trust_annotations" in next(s for s in trace if s.rule == "state").detail


def test_the_catalog_marks_only_built_in_kinds_as_built_in():
    raw = {"name": "list_incidents", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}
    for kind, builtin in (("pagerduty", True), ("opsgenie", True), ("statuspage", True), ("mcp", False),
                          ("uptimeobserver", False)):
        (entry,), _ = build_entries("x", [raw], kind=kind)
        assert (entry.facts.read_only, entry.facts.builtin) == (True, builtin), kind
    (entry,), _ = build_entries("x", [raw])  # no kind given: not built-in (fail closed)
    assert entry.facts.builtin is False


@pytest.mark.parametrize(("value", "where"), [
    ("fs", "$.defaults.trust_annotations"),
    (["fs", 3], "$.defaults.trust_annotations"),
    ([""], "$.defaults.trust_annotations"),
    ({"fs": True}, "$.defaults.trust_annotations"),
])
def test_trust_annotations_must_be_a_list_of_upstream_keys(value, where):
    with pytest.raises(DocumentError) as caught:
        parse_document(make_doc(defaults={"auto_approve": "read_only", "trust_annotations": value}))
    assert any(p.startswith(where + ":") and "list of upstream keys" in p for p in caught.value.problems)


def test_trust_annotations_is_parsed():
    doc = parse_document(make_doc(defaults={"auto_approve": "read_only", "trust_annotations": ["fs", "uo"]}))
    assert doc.trust_annotations == ("fs", "uo")
    assert parse_document(make_doc()).trust_annotations == ()


def test_a_draft_can_name_the_trusted_upstreams(tmp_path, proxy_home, monkeypatch):
    import json

    import mcp_proxy.catalog.offline as offline
    from mcp_proxy.cli import run

    monkeypatch.setattr(offline, "load_catalog_facts", lambda config, paths: [UPSTREAM_READ, BUILTIN_READ])
    config = tmp_path / "config.toml"
    config.write_text('[user]\nemail = "alice@example.com"\n')
    out = tmp_path / "draft.json"
    assert run(["--config", str(config), "policy", "draft", "--auto-approve", "read_only",
                "--trust-annotations", "fs", "--out", str(out)]) == 0
    draft = json.loads(out.read_text())
    assert draft["defaults"] == {"auto_approve": "read_only", "trust_annotations": ["fs"]}
    assert evaluate(parse_document(draft), UPSTREAM_READ, None, parse_document(draft).issued_at.timestamp()).allowed
    assert run(["--config", str(config), "policy", "draft", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["defaults"] == {"auto_approve": "none"}
