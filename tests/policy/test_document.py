"""Schema validation: every problem is reported with its JSON path and a fix."""

from __future__ import annotations

import pytest

from mcp_proxy.policy.document import DocumentError, parse_document, parse_json
from tests._support.policy_docs import make_doc


def problems(doc) -> list[str]:
    with pytest.raises(DocumentError) as info:
        parse_document(doc)
    return info.value.problems


def test_valid_document_parses():
    doc = parse_document(make_doc(tools={"pd.list_incidents": {"state": "approved", "class": "read",
                                                               "sha256": "a" * 64, "redact": ["note"]}}))
    assert doc.revision == "r1" and doc.tools["pd.list_incidents"].redact == ("note",)


@pytest.mark.parametrize("mutate,path,fix", [
    (lambda d: d.update(schema=2), "$.schema", "must be 1"),
    (lambda d: d.pop("revision"), "$.revision", "non-empty string"),
    (lambda d: d.update(issued_at="yesterday"), "$.issued_at", "RFC 3339"),
    (lambda d: d.update(expires_at="2020-01-01T00:00:00"), "$.expires_at", "with a zone"),
    (lambda d: d.update(expires_at=d["issued_at"]), "$.expires_at", "later than issued_at"),
    (lambda d: d.update(defaults={"auto_approve": "all"}), "$.defaults.auto_approve", '"read_only"'),
    (lambda d: d.update(tool={}), "$.tool", "unknown field"),
    (lambda d: d["tools"].update({"pd.x": {"state": "aproved"}}), '$.tools["pd.x"].state', "use one of"),
    (lambda d: d["tools"].update({"pd.x": {"class": "delete"}}), '$.tools["pd.x"].class', "read, write, destructive"),
    (lambda d: d["tools"].update({"pd.x": {"sha256": "ABC"}}), '$.tools["pd.x"].sha256', "64 lowercase hex"),
    (lambda d: d["tools"].update({"nodot": {}}), '$.tools.nodot', "<upstream key>.<upstream tool name>"),
    (lambda d: d.update(toolsets={"r": "pd.*"}), "$.toolsets.r", "list of tool key globs"),
    (lambda d: d.update(groups={"sre": ["not-an-email"]}), "$.groups.sre[0]", "not an email"),
    (lambda d: d.update(profiles=[{"name": "p", "members": ["group:ops"], "toolsets": []}]),
     "$.profiles[0].members[0]", "no group"),
    (lambda d: d.update(profiles=[{"name": "p", "members": ["a@b.co"], "toolsets": ["missing"]}]),
     "$.profiles[0].toolsets[0]", "no toolset"),
    (lambda d: d.update(profiles={"name": "p"}), "$.profiles", "must be a list"),
])
def test_problems_name_path_and_fix(mutate, path, fix):
    doc = make_doc()
    mutate(doc)
    found = problems(doc)
    assert any(p.startswith(path + ":") and fix in p for p in found), found


def test_all_problems_are_reported_at_once():
    doc = make_doc(schema=3, tools={"pd.x": {"state": "maybe"}})
    doc.pop("revision")
    assert len(problems(doc)) == 3


def test_unpinned_approval_is_a_warning_not_an_error():
    doc = parse_document(make_doc(tools={"pd.x": {"state": "approved"}}))
    assert any("sha256" in w for w in doc.warnings)


@pytest.mark.parametrize("raw,fragment", [(b"{\"schema\": 1,", "not valid JSON"), (b"\xff\xfe", "not UTF-8"),
                                          (b"[1, 2]", None)])
def test_parse_json_errors(raw, fragment):
    if fragment is None:
        assert problems(parse_json(raw))[0].startswith("$: the policy must be a JSON object")
        return
    with pytest.raises(DocumentError) as info:
        parse_json(raw)
    assert fragment in str(info.value)
