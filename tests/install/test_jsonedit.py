"""Splicing one entry into a config file: everything else stays byte-for-byte."""

from __future__ import annotations

import json

import pytest

from mcp_proxy.clients.jsonedit import JsonShapeError, JsonSyntaxError, parse, read_entries, remove_entry, set_entry

OURS = {"command": "/opt/bin/mcp-access-proxy", "args": ["--config", "/etc/p.toml"]}

FOUR_SPACES = """{
    "globalShortcut": "Ctrl+Space",
    "mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "git":   { "command" : "uvx", "args" : [ "mcp-server-git" ] }
    }
}
"""


def test_add_keeps_other_entries_and_their_odd_formatting_byte_for_byte():
    new = set_entry(FOUR_SPACES, "mcpServers", "mcp-access-proxy", OURS)
    # Everything before the insertion point is untouched, including the inline `files` entry.
    cut = FOUR_SPACES.index('[ "mcp-server-git" ] }') + len('[ "mcp-server-git" ] }')
    assert new.startswith(FOUR_SPACES[:cut])
    assert new.endswith("\n    }\n}\n")
    doc = json.loads(new)
    assert doc["mcpServers"]["mcp-access-proxy"] == OURS
    assert list(doc["mcpServers"]) == ["files", "git", "mcp-access-proxy"]
    assert doc["globalShortcut"] == "Ctrl+Space"
    # Our entry follows the file's own indentation (4 spaces per level here).
    assert '\n        "mcp-access-proxy": {\n            "command"' in new


def test_update_replaces_only_our_value():
    text = set_entry(FOUR_SPACES, "mcpServers", "mcp-access-proxy", OURS)
    changed = set_entry(text, "mcpServers", "mcp-access-proxy", {**OURS, "args": []})
    start = text.index('"mcp-access-proxy"')
    assert changed[:start] == text[:start]
    assert json.loads(changed)["mcpServers"]["mcp-access-proxy"]["args"] == []


def test_missing_container_is_added_at_the_end_of_the_top_level():
    text = '{\n  "theme": "dark"\n}\n'
    new = set_entry(text, "servers", "p", {"type": "stdio", "command": "/x"})
    assert new.startswith('{\n  "theme": "dark",\n  "servers": {\n    "p": {\n      "type": "stdio"')
    assert json.loads(new) == {"theme": "dark", "servers": {"p": {"type": "stdio", "command": "/x"}}}


@pytest.mark.parametrize("text", ["", "   \n", "{}", "{ }\n"])
def test_empty_file_or_object_gets_a_fresh_document(text):
    new = set_entry(text, "mcpServers", "p", {"command": "/x"})
    assert json.loads(new) == {"mcpServers": {"p": {"command": "/x"}}}
    assert new.endswith("\n") == text.endswith("\n") or not text.strip()  # the file's own last byte is kept


def test_jsonc_comments_trailing_commas_and_crlf_survive():
    text = (
        "{\r\n"
        "  // servers for this profile\r\n"
        "  \"servers\": {\r\n"
        "    /* keep me */\r\n"
        "    \"gh\": {\"type\": \"http\", \"url\": \"https://api.githubcopilot.com/mcp/\"}, // trailing comment\r\n"
        "  },\r\n"
        "  \"inputs\": [],\r\n"
        "}\r\n"
    )
    new = set_entry(text, "servers", "p", {"type": "stdio", "command": "/x", "args": []}, allow_comments=True)
    assert "// servers for this profile" in new and "/* keep me */" in new and "// trailing comment" in new
    assert "\n" not in new.replace("\r\n", "")  # every line ending is still CRLF
    assert parse(new, allow_comments=True).value["servers"]["p"]["command"] == "/x"
    back = remove_entry(new, "servers", "p", allow_comments=True)
    assert back == text


@pytest.mark.parametrize("position", [0, 1, 2])
def test_remove_first_middle_last_leaves_the_others_intact(position):
    names = ["a", "b", "c"]
    doc = {"mcpServers": {n: {"command": f"/{n}"} for n in names}}
    text = json.dumps(doc, indent=2) + "\n"
    new = remove_entry(text, "mcpServers", names[position])
    del doc["mcpServers"][names[position]]
    assert new == json.dumps(doc, indent=2) + "\n"


def test_remove_only_entry_leaves_an_empty_object_and_absent_name_is_a_no_op():
    text = '{\n  "mcpServers": {\n    "p": {"command": "/x"}\n  },\n  "other": 1\n}\n'
    assert remove_entry(text, "mcpServers", "p") == '{\n  "mcpServers": {},\n  "other": 1\n}\n'
    assert remove_entry(text, "mcpServers", "nope") == text
    assert remove_entry(text, "servers", "p") == text


def test_compact_one_line_file_stays_compact():
    text = '{"mcpServers":{"a":{"command":"/a"}}}'
    new = set_entry(text, "mcpServers", "p", {"command": "/x"})
    assert new == '{"mcpServers":{"a":{"command":"/a"}, "p": {"command": "/x"}}}'


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('{\n  "mcpServers": {\n    "a": {"command": "/a"},\n  }\n}\n', 4, 3, "trailing comma before '}'"),
        ('{"a": [1, 2, ]}', 1, 14, "trailing comma before ']'"),
        ('{\n  "mcpServers": {\n    "a": {"command": "/a"}\n    "b": {}\n  }\n}\n', 4, 5, "comma is missing"),
        ('{\n  // hi\n  "mcpServers": {}\n}\n', 2, 3, "comment"),
        ("{\n  'mcpServers': {}\n}\n", 2, 3, "double-quoted key"),
        ('{\n  "mcpServers": {\n', 3, 1, "cut short"),
        ('{"a": "unterminated}\n', 1, 7, "string"),
        ('{"a": 1} trailing', 1, 10, "after the end"),
    ],
)
def test_strict_syntax_errors_name_the_line_and_column(text, line, column, words):
    with pytest.raises(JsonSyntaxError) as info:
        set_entry(text, "mcpServers", "p", {"command": "/x"})
    assert (info.value.line, info.value.column) == (line, column)
    assert words in str(info.value)


def test_shape_errors():
    with pytest.raises(JsonShapeError, match="top level must be a JSON object"):
        set_entry("[1, 2]", "mcpServers", "p", {})
    with pytest.raises(JsonShapeError, match="must be an object"):
        set_entry('{"mcpServers": []}', "mcpServers", "p", {})
    with pytest.raises(JsonShapeError, match="appears 2 times") as info:
        set_entry('{"mcpServers": {"p": {}},\n "mcpServers": {}}', "mcpServers", "p", {})
    assert info.value.line == 2
    with pytest.raises(JsonShapeError, match="must be an object"):
        read_entries('{"servers": "x"}', "servers")


def test_values_are_decoded_like_json():
    text = '{"a": [1, -2.5e3, true, false, null, "\\u00e9\\n"], "b": {"c": {}}}'
    assert parse(text).value == json.loads(text)
