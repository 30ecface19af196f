"""Time the proxy can trust more than the laptop's clock: a lower bound on the real time.

Anyone who can set the laptop's clock back a week would otherwise revive a policy that expired. So the
proxy also counts what it has been told by parties whose clocks it does not control: the `Date` header of
the policy server's and the collector's answers, and the `issued_at` of the newest policy it activated
(signed by the administrator). "Now", for expiry, is the latest of the local clock and those.

Each observation is kept as an offset from this process's monotonic clock, so it ages as time passes
here (the monotonic clock is not set by the user and never runs ahead of real time), and is persisted in
the data dir, so that a restart remembers it: `TrustedTime(data_dir, locks_dir)`, written atomically
under a file lock (several proxy processes share it), at most once per `PERSIST_STEP` per source.

A source that lies can only make time later, never earlier: a policy server or collector whose `Date`
is in the future makes policies expire early (fail closed), never revives one.

`observe_http_date(source, header)` is the one call the HTTP clients make where an answer arrives
(`audit/transport.py` for the collector); it records into this process's memory only, and a
`TrustedTime` merges that in and persists it with its own observations.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from pathlib import Path

from mcp_proxy.errors import LockTimeout
from mcp_proxy.fsutil import FileLock, atomic_write

log = logging.getLogger(__name__)

STATE_FILE = "trusted-time.json"
LOCK_FILE = "trusted-time.lock"
STATE_FORMAT = 1
PERSIST_STEP = 60.0  # write again only when a source moved on by this much: the file is a lower bound anyway

_lock = threading.Lock()
_process: dict[str, float] = {}  # source -> (observed time - monotonic at observation), for this process


def parse_http_date(value: str | None) -> float | None:
    """The POSIX time of an HTTP `Date` header (RFC 9110 IMF-fixdate or the obsolete forms), or None."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.timestamp()


def _merge(into: dict[str, float], source: str, offset: float) -> bool:
    if offset > into.get(source, float("-inf")):
        into[source] = offset
        return True
    return False


def observe_http_date(source: str, header: str | None) -> None:
    """Record the `Date` header of an answer from `source` ("collector", "policy_server") in this process.
    Never raises: a missing or malformed header is ignored."""
    when = parse_http_date(header)
    if when is not None:
        with _lock:
            _merge(_process, source, when - time.monotonic())


def process_floor() -> float | None:
    """The latest time this process's observations prove, or None when it has none."""
    with _lock:
        best = max(_process.values(), default=None)
    return None if best is None else best + time.monotonic()


def forget() -> None:
    """Drop this process's observations (for tests that feed it a made-up `Date`)."""
    with _lock:
        _process.clear()


class TrustedTime:
    """The observations persisted under `data_dir` merged with this process's: `floor()` is a time the real
    time is known not to be before."""

    def __init__(self, data_dir: Path, locks_dir: Path) -> None:
        self.path = data_dir / STATE_FILE
        self.lock_path = locks_dir / LOCK_FILE
        self._mine: dict[str, float] = {}  # source -> offset from time.monotonic(), like _process
        self._written: dict[str, float] = {}  # source -> the time last persisted
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for source, when in self._read().items():
            _merge(self._mine, source, when - time.monotonic())
            self._written[source] = when

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("the trusted time in %s is unreadable (%s); it is written again", self.path,
                        type(exc).__name__)
            return {}
        seen = data.get("seen") if isinstance(data, dict) and data.get("format") == STATE_FORMAT else None
        if not isinstance(seen, dict):
            return {}
        return {str(k): float(v) for k, v in seen.items() if isinstance(v, (int, float)) and v == v}

    def observe(self, source: str, when: float) -> None:
        """Record that the real time is at least `when` (seconds since the epoch) now."""
        self._load()
        _merge(self._mine, source, when - time.monotonic())

    def observe_http_date(self, source: str, header: str | None) -> None:
        when = parse_http_date(header)
        if when is not None:
            self.observe(source, when)

    def floor(self) -> float | None:
        """The latest time the observations prove (persisted, this engine's and this process's), or None."""
        self._load()
        with _lock:
            best = max([*self._mine.values(), *_process.values()], default=None)
        return None if best is None else best + time.monotonic()

    def now(self, local: float) -> float:
        """The latest of the local clock reading `local` and what the observations prove."""
        floor = self.floor()
        return local if floor is None else max(local, floor)

    def persist(self) -> None:
        """Write the observations that moved on by PERSIST_STEP, merged with the file (another process may have
        written since), atomically and under the lock. Never raises: time stays trusted in memory."""
        self._load()
        mono = time.monotonic()
        with _lock:
            current = {s: o + mono for s, o in {**_process, **self._mine}.items()}
            for s, o in _process.items():
                current[s] = max(current[s], o + mono)
        due = {s: t for s, t in current.items() if t >= self._written.get(s, float("-inf")) + PERSIST_STEP}
        if not due:
            return
        try:
            with FileLock(self.lock_path, timeout=2.0):
                merged = self._read()
                for source, when in due.items():
                    merged[source] = max(merged.get(source, when), when)
                atomic_write(self.path, json.dumps({"format": STATE_FORMAT, "seen": merged}, sort_keys=True)
                             .encode("utf-8"))
        except (OSError, LockTimeout) as exc:
            log.warning("could not save the trusted time in %s (%s)", self.path, type(exc).__name__)
            return
        self._written.update(due)
