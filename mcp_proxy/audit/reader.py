"""Reading segments: complete lines from an offset, and what is left after the last newline.

A segment's bytes after its last newline are a record still being written (a
live writer: "not yet written", left alone) or a torn record (a writer that was
killed mid-append or hit a full disk: counted, reported, never shipped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Line:
    segment: str
    start: int
    end: int  # offset just after the newline
    raw: bytes  # without the newline

    def record(self) -> dict[str, Any] | None:
        """The record, or None when the line is not one our writer could have written (corrupt): a JSON
        object with a non-empty string `id` and `event_name`, and a string `time` if any."""
        try:
            value = json.loads(self.raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        rid, event, when = value.get("id"), value.get("event_name"), value.get("time")
        if not (isinstance(rid, str) and rid and isinstance(event, str) and event):
            return None
        if when is not None and not isinstance(when, str):
            return None
        return value


@dataclass
class Chunk:
    lines: list[Line]
    end: int  # offset after the last complete line read
    tail: bytes = b""  # bytes after the last newline, when the end of the file was reached
    at_eof: bool = False


def read_chunk(path: Path, start: int, *, max_records: int | None = None, max_bytes: int | None = None) -> Chunk:
    """Complete lines from `start`, stopping after `max_records` lines or once `max_bytes` are read
    (always at least one line, however long)."""
    lines: list[Line] = []
    offset = start
    total = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        while True:
            if max_records is not None and len(lines) >= max_records:
                return Chunk(lines, offset)
            if max_bytes is not None and lines and total >= max_bytes:
                return Chunk(lines, offset)
            raw = fh.readline()
            if not raw:
                return Chunk(lines, offset, b"", True)
            if not raw.endswith(b"\n"):
                return Chunk(lines, offset, raw, True)
            lines.append(Line(path.name, offset, offset + len(raw), raw[:-1]))
            offset += len(raw)
            total += len(raw)


def iter_lines(path: Path, start: int = 0, block: int = 2000) -> Iterator[Line]:
    """Every complete line from `start` (the tail after the last newline is not yielded)."""
    while True:
        chunk = read_chunk(path, start, max_records=block)
        yield from chunk.lines
        if chunk.at_eof or not chunk.lines:
            return
        start = chunk.end


def iter_raw(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    """Every complete line's bytes (without the newline), read in large blocks: for scans of whole segments,
    where iter_lines' offsets are not needed and its per-line objects are most of the cost. The tail after
    the last newline is not yielded."""
    with open(path, "rb") as fh:
        tail = b""
        while True:
            data = fh.read(block)
            if not data:
                return
            lines = (tail + data).split(b"\n")
            tail = lines.pop()
            yield from lines


def count_from(path: Path, start: int) -> tuple[int, int, int]:
    """(complete lines, their bytes, bytes after the last newline) from `start` to the end."""
    records = size = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        tail = b""
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            data = tail + block
            cut = data.rfind(b"\n")
            if cut < 0:
                tail = data
                continue
            records += data.count(b"\n", 0, cut + 1)
            size += cut + 1
            tail = data[cut + 1:]
    return records, size, len(tail)
