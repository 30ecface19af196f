"""Exposed names: deterministic, within limits, collision-free."""

from __future__ import annotations

import re

import pytest

from mcp_proxy.catalog.catalog import build_entries
from mcp_proxy.catalog.names import MAX_NAME_LENGTH, exposed_name

VALID = re.compile(r"^[a-z0-9_-]+$")


def test_plain_names_are_kept():
    assert exposed_name("pd", "list_incidents") == "pd_list_incidents"


def test_changed_names_get_a_stable_hash_suffix():
    a = exposed_name("og", "Alert.Create")
    assert a == exposed_name("og", "Alert.Create")  # deterministic
    assert VALID.match(a) and a.startswith("og_alert_create-")
    # Names that sanitise alike stay distinct.
    assert len({exposed_name("x", n) for n in ("a.b", "a_b", "A_b", "a-b", "a b")}) == 5


def test_long_names_fit_cursor_and_claude_limits():
    long = "get_the_very_long_named_tool_that_some_vendor_invented_" * 3
    name = exposed_name("monitoring", long)
    assert len(name) <= MAX_NAME_LENGTH and VALID.match(name)
    assert len("mcp-access-proxy") + len(name) <= 60
    assert len("mcp__mcp-access-proxy__") + len(name) <= 64
    assert name != exposed_name("monitoring", long + "2")


def test_prefixes_cannot_collide_because_keys_have_no_underscore():
    names = {exposed_name(p, t) for p, t in (("a", "b_c"), ("a-b", "c"), ("ab", "c"))}
    assert len(names) == 3


def test_catalog_rejects_duplicates_and_off_spec_tools():
    good = {"name": "ok", "inputSchema": {"type": "object"}}
    entries, rejected = build_entries("u", [good, dict(good), {"name": "bad", "inputSchema": {}}, {"name": "x"}])
    assert [e.exposed for e in entries] == ["u_ok"]
    assert len(rejected) == 3


def test_a_tool_named_like_anothers_shortened_form_gets_a_name_of_its_own():
    shortened = exposed_name("up", "Foo")  # changed (case folded): up_foo-<hash of "Foo">
    literal = shortened.split("_", 1)[1]  # an upstream tool literally named like that form
    entries, rejected = build_entries("up", [
        {"name": "Foo", "inputSchema": {"type": "object"}},
        {"name": literal, "inputSchema": {"type": "object"}},
    ])
    names = [e.exposed for e in entries]
    assert rejected == [] and len(names) == 2 and len(set(names)) == 2, names
    assert names[0] == shortened and names[1] != shortened


@pytest.mark.parametrize("names", [
    ["a", "A", "a-0123abcd", "A-0123ABCD", "a_", "a-", "x" * 80, "x" * 81],
    [f"t{i}" for i in range(50)] + [f"T{i}" for i in range(50)],
])
def test_exposed_names_are_unique_within_a_list_whatever_the_upstream_sends(names):
    raw = [{"name": n, "inputSchema": {"type": "object"}} for n in names]
    raw += [{"name": exposed_name("up", n).split("_", 1)[1], "inputSchema": {"type": "object"}} for n in names]
    entries, _rejected = build_entries("up", raw)
    exposed = [e.exposed for e in entries]
    assert len(exposed) == len(set(exposed))
