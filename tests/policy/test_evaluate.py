"""The decision rule, tool by tool: states, auto-approval, pinning, profiles and groups, expiry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mcp_proxy.policy.document import parse_document
from mcp_proxy.policy.evaluate import evaluate, toolset_rank
from tests._support.policy_docs import NOW, approved, make_doc
from tests._support.policy_docs import tool as upstream_tool


def tool(key: str, **kw):
    """A built-in connector's tool (pd, og): its read-only flag is evidence for auto-approval."""
    return replace(upstream_tool(key, **kw), builtin=True)


LIST = tool("pd.list_incidents", read_only=True)
CREATE = tool("pd.create_incident")
CLOSE = tool("og.close_alert", destructive=True)
OG_LIST = tool("og.list_alerts", read_only=True)


def decide(doc: dict, facts, user="alice@example.com", now=NOW):
    return evaluate(parse_document(doc), facts, user, now)


def test_explicit_approval_and_unlisted_tools_are_pending():
    doc = make_doc(tools={LIST.key: approved(LIST)})
    assert decide(doc, LIST).allowed and decide(doc, LIST).code == "approved"
    pending = decide(doc, CREATE)
    assert (pending.allowed, pending.code, pending.state) == (False, "pending", "pending")
    assert "proxy_request_access" in pending.message and "pd_create_incident" in pending.message


def test_disabled_and_listed_pending():
    doc = make_doc(tools={CLOSE.key: {"state": "disabled", "class": "destructive"},
                          CREATE.key: {"state": "pending", "sha256": CREATE.definition_hash}})
    assert decide(doc, CLOSE).code == "disabled"
    assert decide(doc, CREATE).code == "pending"


def test_auto_approve_read_only_covers_read_tools_only():
    doc = make_doc(defaults={"auto_approve": "read_only"},
                   tools={OG_LIST.key: {"state": "disabled"}, "pd.get_x": {"state": "pending", "class": "write"}})
    assert decide(doc, LIST).code == "approved"  # read-only, not listed
    assert decide(doc, CREATE).code == "pending"  # not read-only
    assert decide(doc, OG_LIST).code == "disabled"  # disabled beats auto-approval
    # the admin's class "write" overrides a tool that claims to be read-only
    assert decide(doc, tool("pd.get_x", read_only=True)).code == "pending"
    assert decide(make_doc(), LIST).code == "pending"  # auto_approve "none"


def test_pinned_hash_must_match_the_current_definition():
    doc = make_doc(tools={LIST.key: approved(LIST)})
    changed = tool("pd.list_incidents", read_only=True, description="now also deletes everything")
    d = decide(doc, changed)
    assert (d.allowed, d.code, d.state) == (False, "definition_changed", "pending")
    assert changed.definition_hash in d.message
    # auto-approval does not bypass a pin either
    doc = make_doc(defaults={"auto_approve": "read_only"},
                   tools={LIST.key: {"state": "pending", "sha256": LIST.definition_hash}})
    assert decide(doc, LIST).allowed and decide(doc, changed).code == "definition_changed"
    # an unpinned approval stays approved
    assert decide(make_doc(tools={LIST.key: {"state": "approved"}}), changed).allowed


def test_profiles_groups_and_toolsets():
    doc = make_doc(
        tools={LIST.key: approved(LIST), OG_LIST.key: approved(OG_LIST), CREATE.key: approved(CREATE, "write")},
        toolsets={"read": ["*.list_*"], "write": ["pd.create_*"], "nothing-approved": ["og.close_*"]},
        groups={"sre": ["Alice@Example.com", "bob@example.com"]},
        profiles=[{"name": "sre", "members": ["group:sre"], "toolsets": ["read"]},
                  {"name": "lead", "members": ["carol@example.com"],
                   "toolsets": ["read", "write", "nothing-approved"]}])
    assert decide(doc, LIST, "alice@example.com").allowed  # via the group, email case-insensitive
    assert decide(doc, OG_LIST, "bob@example.com").allowed
    d = decide(doc, CREATE, "alice@example.com")
    assert (d.allowed, d.code) == (False, "not_in_profile")
    assert decide(doc, CREATE, "carol@example.com").allowed
    assert decide(doc, LIST, "mallory@example.com").code == "not_in_profile"
    assert decide(doc, LIST, None).code == "not_in_profile"
    # toolsets never approve by themselves
    assert decide(doc, CLOSE, "carol@example.com").code == "pending"


def test_expired_and_missing_policy_fail_closed():
    doc = make_doc(tools={LIST.key: approved(LIST)}, expires=NOW + 10)
    assert decide(doc, LIST, now=NOW).allowed
    d = decide(doc, LIST, now=NOW + 10)
    assert (d.allowed, d.code) == (False, "expired")
    assert "policy sync" in d.message
    none = evaluate(None, LIST, "a@example.com", NOW, no_policy_reason="never synced")
    assert (none.allowed, none.code) == (False, "no_policy") and "never synced" in none.message


def test_trace_names_every_rule():
    doc = make_doc(tools={LIST.key: approved(LIST)}, toolsets={"r": ["pd.*"]},
                   profiles=[{"name": "all", "members": ["alice@example.com"], "toolsets": ["r"]}])
    trace: list = []
    decision = evaluate(parse_document(doc), LIST, "alice@example.com", NOW, trace=trace)
    assert decision.allowed
    assert [s.rule for s in trace] == ["policy", "state", "definition", "profiles"]
    assert all(s.passed for s in trace)


@pytest.mark.parametrize("user,expected", [("alice@example.com", 0), ("bob@example.com", 1 << 20)])
def test_toolset_rank(user, expected):
    doc = parse_document(make_doc(toolsets={"a": ["pd.*"]},
                                  profiles=[{"name": "p", "members": ["alice@example.com"], "toolsets": ["a"]}]))
    assert toolset_rank(doc, LIST, user) == expected


def test_the_example_policy_is_valid_and_means_what_it_says():
    import json
    from pathlib import Path

    raw = json.loads((Path(__file__).resolve().parents[2] / "client-configs" / "policy.example.json").read_text())
    doc = parse_document(raw)
    pinned = {k: e.sha256 for k, e in doc.tools.items()}

    def og(name: str, read_only: bool = False):
        base = tool(f"og.{name}", read_only=read_only)
        return replace(base, definition_hash=pinned.get(base.key) or base.definition_hash)

    now = doc.issued_at.timestamp() + 60
    decide_ = lambda f, u: evaluate(doc, f, u, now)  # noqa: E731
    assert decide_(og("list_alerts", True), "alice@example.com").allowed
    assert decide_(og("acknowledge_alert"), "bob@example.com").allowed
    assert decide_(og("acknowledge_alert"), "carol@example.com").allowed  # leads: every approved tool
    assert decide_(og("close_alert"), "carol@example.com").code == "disabled"
    assert decide_(og("create_alert"), "dave@example.com").code == "pending"
    assert decide_(og("list_users", True), "alice@example.com").code == "disabled"
    assert decide_(og("list_schedules", True), "alice@example.com").allowed  # auto-approved read
    assert decide_(og("list_alerts", True), "eve@example.com").code == "not_in_profile"
    assert doc.tools["og.acknowledge_alert"].redact == ("note",)
