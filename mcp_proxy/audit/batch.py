"""Reading the next batch to ship from the spool (in the shipper's worker thread, never on the event loop).

A batch is the oldest unacknowledged complete lines, across every process's segments, oldest first,
each parsed and encoded on its own (encode.py), up to `batch_max_records` / `batch_max_bytes`. A line
that needs handling here rather than at the collector comes back alone, after the lines before it:

* `corrupt`: not a record our writer could have written (edited or damaged);
* `unencodable`: a record the configured protocol cannot carry (the encoder refused it);
* `torn`: the bytes after the last newline of a segment whose writer is gone (killed mid-append).

Whether a segment's writer is gone is asked *before* its bytes are read: a writer that completes its
line and exits between our read and our question would otherwise make a complete record look torn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_proxy.audit.layout import Layout, Liveness, Segment
from mcp_proxy.audit.reader import Line, read_chunk

if TYPE_CHECKING:
    from mcp_proxy.audit.checkpoint import Checkpoint
    from mcp_proxy.audit.encode import Encoder
    from mcp_proxy.config import AuditConfig

log = logging.getLogger(__name__)


@dataclass
class Batch:
    lines: list[Line] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    parts: list[Any] = field(default_factory=list)  # each record encoded (Encoder.part)
    corrupt: Line | None = None
    unencodable: tuple[Line, str] | None = None  # (the line, why)
    torn: tuple[Segment, int, int] | None = None  # (segment, offset of the torn bytes, how many)

    @property
    def local(self) -> bool:
        return self.corrupt is not None or self.unencodable is not None or self.torn is not None

    def ends(self, lines: list[Line] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines if lines is None else lines:
            out[line.segment] = max(out.get(line.segment, 0), line.end)
        return out


def _why(exc: Exception) -> str:
    from mcp_proxy.audit.encode import Unencodable

    if isinstance(exc, Unencodable):
        return str(exc)
    return f"the encoder refused it ({type(exc).__name__}: a field of an unexpected type or value)"


def next_batch(layout: Layout, cfg: AuditConfig, checkpoint: Checkpoint, encoder: Encoder,
               skip: Iterable[str] = ()) -> Batch | None:
    """The next batch, or None when everything is acknowledged. `skip`: segment names not to read."""
    segments = layout.segments()
    skipped = set(skip)
    liveness = Liveness(layout)
    batch = Batch()
    budget_records, budget_bytes = cfg.batch_max_records, cfg.batch_max_bytes
    for seg in segments:
        if seg.name in skipped:
            continue
        start = checkpoint.acked.get(seg.name, 0)
        if start > seg.size:
            log.warning("the audit segment %s is shorter than its checkpoint; shipping it again", seg.name)
            start = checkpoint.acked[seg.name] = 0
        if start == seg.size:
            continue
        final = liveness.sealed(seg, segments)  # before reading: see the module's docstring
        try:
            chunk = read_chunk(seg.path, start, max_records=budget_records, max_bytes=budget_bytes)
        except FileNotFoundError:
            continue
        for line in chunk.lines:
            record = line.record()
            if record is None:
                return batch if batch.lines else Batch(corrupt=line)  # what came before it goes first
            try:
                part = encoder.part(record, line.raw)
            except Exception as exc:  # noqa: BLE001 - one record must never stall the spool
                return batch if batch.lines else Batch(unencodable=(line, _why(exc)))
            batch.lines.append(line)
            batch.records.append(record)
            batch.parts.append(part)
            budget_records -= 1
            budget_bytes -= len(line.raw) + 1
        if budget_records <= 0 or budget_bytes <= 0:
            return batch
        if chunk.at_eof and chunk.tail and final:
            if batch.lines:
                return batch
            return Batch(torn=(seg, chunk.end, len(chunk.tail)))
    return batch if batch.lines else None
