"""Edit one entry of a JSON (or JSONC) config file without reformatting the rest.

Clients' config files are hand-edited and hold other servers: re-serialising
the whole document would reindent them, reorder nothing but still change
bytes, and drop VS Code's comments. So we parse with positions, splice only
the text of our entry, and check that the result parses to exactly the
document we meant. Everything outside our entry stays byte-for-byte.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from mcp_proxy.errors import ProxyError


class JsonSyntaxError(ProxyError, ValueError):
    """The text is not valid JSON (or JSONC); `line`/`column` are 1-based."""

    def __init__(self, text: str, pos: int, problem: str) -> None:
        self.pos = pos
        self.line = text.count("\n", 0, pos) + 1
        self.column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        self.problem = problem
        super().__init__(f"line {self.line}, column {self.column}: {problem}")


class JsonShapeError(ProxyError, ValueError):
    """Valid JSON whose structure we cannot safely edit (wrong types, duplicate keys)."""

    def __init__(self, text: str, pos: int, problem: str) -> None:
        self.line = text.count("\n", 0, pos) + 1
        self.column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        self.problem = problem
        super().__init__(f"line {self.line}, column {self.column}: {problem}")


@dataclass
class Node:
    kind: str  # "object" | "array" | "string" | "number" | "literal"
    start: int
    end: int  # exclusive
    value: Any
    members: list[Member] = field(default_factory=list)  # objects only, in text order


@dataclass
class Member:
    key: str
    key_start: int
    value: Node


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_WS = " \t\r\n"


class _Parser:
    def __init__(self, text: str, allow_comments: bool) -> None:
        self.text = text
        self.i = 0
        self.jsonc = allow_comments

    def fail(self, problem: str, pos: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(self.text, self.i if pos is None else pos, problem)

    def ws(self) -> None:
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if c in _WS:
                self.i += 1
            elif c == "/" and t.startswith(("//", "/*"), self.i):
                if not self.jsonc:
                    raise self.fail("a comment; this client reads strict JSON, so remove the comment")
                if t.startswith("//", self.i):
                    nl = t.find("\n", self.i)
                    self.i = len(t) if nl < 0 else nl + 1
                else:
                    close = t.find("*/", self.i + 2)
                    if close < 0:
                        raise self.fail("a /* comment that is never closed; add */")
                    self.i = close + 2
            else:
                return

    def eof_check(self, closer: str) -> None:
        if self.i >= len(self.text):
            raise self.fail(f"the file ends before a {closer} that closes an earlier bracket; the JSON is cut short")

    def separator(self, closer: str, problem: str) -> bool:
        """After a member or item: True past a comma (another may follow), False at `closer` (left for the
        caller); anything else is the syntax error `problem`."""
        self.ws()
        if self.text.startswith(",", self.i):
            self.i += 1
            return True
        if self.text.startswith(closer, self.i):
            return False
        self.eof_check(closer)
        raise self.fail(problem)

    def document(self) -> Node:
        self.ws()
        node = self.value()
        self.ws()
        if self.i != len(self.text):
            raise self.fail("unexpected text after the end of the JSON document; remove it")
        return node

    def value(self) -> Node:
        t = self.text
        if self.i >= len(t):
            raise self.fail("the file ends where a value was expected; the JSON is cut short")
        c = t[self.i]
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c == '"':
            start = self.i
            s = self.string()
            return Node("string", start, self.i, s)
        m = _NUMBER.match(t, self.i)
        if m and m.end() > self.i:
            self.i = m.end()
            return Node("number", m.start(), m.end(), json.loads(m.group()))
        for word, val in _LITERALS.items():
            if t.startswith(word, self.i):
                self.i += len(word)
                return Node("literal", self.i - len(word), self.i, val)
        if c == "'":
            raise self.fail("a single-quoted string; JSON needs double quotes")
        raise self.fail(f"unexpected character {c!r} where a value was expected")

    def string(self) -> str:
        t, start = self.text, self.i
        j = start + 1
        while j < len(t):
            c = t[j]
            if c == "\\":
                j += 2
                continue
            if c == '"':
                break
            if c == "\n":
                raise self.fail("a string that runs past the end of the line; close it with \"", start)
            j += 1
        else:
            raise self.fail("a string that is never closed; add the closing \"", start)
        self.i = j + 1
        try:
            return json.loads(t[start:self.i])
        except json.JSONDecodeError:
            raise self.fail("an invalid escape sequence in a string (write a backslash as \\\\)", start) from None

    def obj(self) -> Node:
        start = self.i
        self.i += 1
        node = Node("object", start, start, {})
        self.ws()
        if self.text.startswith("}", self.i):
            self.i += 1
            node.end = self.i
            return node
        while True:
            self.ws()
            if self.jsonc and node.members and self.text.startswith("}", self.i):
                break  # trailing comma, tolerated by JSONC readers
            self.eof_check("}")
            if node.members and self.text.startswith("}", self.i):
                raise self.fail("a trailing comma before '}', which strict JSON does not allow; remove that comma")
            if not self.text.startswith('"', self.i):
                raise self.fail("expected a double-quoted key here (is there a trailing comma before it or a "
                                "missing one after the previous value?)")
            key_start = self.i
            key = self.string()
            self.ws()
            if not self.text.startswith(":", self.i):
                raise self.fail(f"expected ':' after the key \"{key}\"")
            self.i += 1
            self.ws()
            val = self.value()
            node.members.append(Member(key, key_start, val))
            node.value[key] = val.value
            if not self.separator("}", "expected ',' or '}' after a value (a comma is missing between two entries?)"):
                break
        self.i += 1
        node.end = self.i
        return node

    def arr(self) -> Node:
        start = self.i
        self.i += 1
        items: list[Any] = []
        self.ws()
        if self.text.startswith("]", self.i):
            self.i += 1
            return Node("array", start, self.i, items)
        while True:
            self.ws()
            if items and self.text.startswith("]", self.i):
                if self.jsonc:
                    break
                raise self.fail("a trailing comma before ']', which strict JSON does not allow; remove that comma")
            items.append(self.value().value)
            if not self.separator("]", "expected ',' or ']' after an array item"):
                break
        self.i += 1
        return Node("array", start, self.i, items)


def parse(text: str, allow_comments: bool = False) -> Node:
    """Parse `text` keeping positions; raises JsonSyntaxError with line and column."""
    return _Parser(text, allow_comments).document()


def _unique_member(text: str, obj: Node, key: str) -> Member | None:
    found = [m for m in obj.members if m.key == key]
    if len(found) > 1:
        raise JsonShapeError(text, found[1].key_start,
                             f"the key \"{key}\" appears {len(found)} times; remove the duplicates so that one remains")
    return found[0] if found else None


def _line_indent(text: str, pos: int) -> str | None:
    """The whitespace before `pos` on its line, or None when something else precedes it."""
    line_start = text.rfind("\n", 0, pos) + 1
    prefix = text[line_start:pos]
    return prefix if prefix.strip() == "" else None


def _leading_ws(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    line = text[line_start:pos]
    return line[: len(line) - len(line.lstrip(" \t"))]


def _indent_unit(text: str, root: Node) -> str:
    for m in root.members:
        ind = _line_indent(text, m.key_start)
        if ind:
            return ind
    return "  "


def _render(value: Any, indent: str, unit: str, newline: str) -> str:
    dumped = json.dumps(value, indent=unit, ensure_ascii=False)
    return dumped.replace("\n", newline + indent)


class _Editor:
    def __init__(self, text: str, allow_comments: bool) -> None:
        self.text = text
        self.jsonc = allow_comments
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.root = parse(text, allow_comments) if text.strip() else None
        if self.root is not None and self.root.kind != "object":
            raise JsonShapeError(text, self.root.start, "the top level must be a JSON object ({ ... }); "
                                 "wrap the content in braces or move the file aside")
        self.unit = _indent_unit(text, self.root) if self.root else "  "

    def set_member(self, obj: Node, key: str, value: Any) -> str:
        t, nl, unit = self.text, self.newline, self.unit
        existing = _unique_member(t, obj, key)
        if existing is not None:
            indent = _leading_ws(t, existing.key_start)
            v = existing.value
            return t[:v.start] + _render(value, indent, unit, nl) + t[v.end:]
        if not obj.members:
            outer = _leading_ws(t, obj.start)
            inner = outer + unit
            body = f"{{{nl}{inner}{json.dumps(key)}: {_render(value, inner, unit, nl)}{nl}{outer}}}"
            return t[:obj.start] + body + t[obj.end:]
        last = obj.members[-1]
        last_indent = _line_indent(t, last.key_start)
        if last_indent is None:  # members written on one line: stay compact
            piece = f", {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}"
        else:
            piece = f",{nl}{last_indent}{json.dumps(key)}: {_render(value, last_indent, unit, nl)}"
        return t[:last.value.end] + piece + t[last.value.end:]

    def remove_member(self, obj: Node, key: str) -> str:
        t = self.text
        m = _unique_member(t, obj, key)
        if m is None:
            return t
        i = obj.members.index(m)
        if len(obj.members) == 1:
            return t[:obj.start] + "{}" + t[obj.end:]
        if i > 0:
            return t[:obj.members[i - 1].value.end] + t[m.value.end:]
        return t[:m.key_start] + t[obj.members[1].key_start:]


def read_entries(text: str, container: str, allow_comments: bool = False) -> dict[str, Any]:
    """The `container` object of the document (e.g. mcpServers), {} when absent or the file is empty."""
    ed = _Editor(text, allow_comments)
    if ed.root is None:
        return {}
    member = _unique_member(text, ed.root, container)
    if member is None:
        return {}
    if member.value.kind != "object":
        raise JsonShapeError(text, member.value.start, f"\"{container}\" must be an object {{ ... }} of server entries")
    return dict(member.value.value)


def set_entry(text: str, container: str, name: str, entry: dict[str, Any], allow_comments: bool = False) -> str:
    """`text` with `container[name] = entry`; nothing else in the text changes."""
    ed = _Editor(text, allow_comments)
    if ed.root is None:
        new = json.dumps({container: {name: entry}}, indent=2, ensure_ascii=False) + "\n"
        expected: dict[str, Any] = {container: {name: entry}}
    else:
        expected = copy.deepcopy(ed.root.value)
        expected.setdefault(container, {})
        holder = _unique_member(text, ed.root, container)
        if holder is None:
            new = ed.set_member(ed.root, container, {name: entry})
        else:
            if holder.value.kind != "object":
                raise JsonShapeError(text, holder.value.start,
                                     f"\"{container}\" must be an object {{ ... }} of server entries")
            new = ed.set_member(holder.value, name, entry)
        expected[container][name] = entry
    _verify(new, expected, allow_comments)
    return new


def remove_entry(text: str, container: str, name: str, allow_comments: bool = False) -> str:
    """`text` without `container[name]`; unchanged when there is no such entry."""
    ed = _Editor(text, allow_comments)
    if ed.root is None:
        return text
    holder = _unique_member(text, ed.root, container)
    if holder is None or holder.value.kind != "object" or name not in holder.value.value:
        return text
    expected = copy.deepcopy(ed.root.value)
    del expected[container][name]
    new = ed.remove_member(holder.value, name)
    _verify(new, expected, allow_comments)
    return new


def _verify(new: str, expected: Any, allow_comments: bool) -> None:
    """The spliced text must mean exactly the intended document, or we refuse to write it."""
    try:
        got = parse(new, allow_comments).value
    except JsonSyntaxError as exc:  # pragma: no cover - a bug in the splicing, never the user's input
        raise RuntimeError(f"internal error: the edited config would not parse ({exc}); nothing was written") from exc
    if got != expected:  # pragma: no cover - same
        raise RuntimeError("internal error: the edited config would not match the intended change; nothing was written")
