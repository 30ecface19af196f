"""A bound on how deeply a JSON text nests, checked before `json.loads` sees it.

Python's json parser recurses once per level, so a document of 10,000 nested
brackets (a few kilobytes) raises RecursionError from deep inside the parser.
A policy document is a few levels deep; anything past MAX_DEPTH is refused
with a plain message before parsing. The scan visits only brackets, quotes
and backslashes, and stops at the first level too deep.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64  # a policy document needs 4; headroom for comments and future fields
_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')


def too_deep(text: str, limit: int = MAX_DEPTH) -> int | None:
    """The character offset where `text` first nests deeper than `limit`, or None when it never does.

    Brackets inside strings do not count. Malformed JSON is not reported here: json.loads says where it
    breaks."""
    depth = 0
    in_string = False
    escaped = -1  # the offset of the character a backslash escapes
    for match in _SIGNIFICANT.finditer(text):
        at = match.start()
        if at == escaped:
            continue
        char = text[at]
        if in_string:
            if char == "\\":
                escaped = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return at
        elif char in "]}":
            depth -= 1
    return None
