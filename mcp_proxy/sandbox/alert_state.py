"""What the JSM Operations and Opsgenie emulators keep alike: alerts with notes and logs, writes that are
accepted at once and show their outcome only when polled, AND-joined alert queries, and on-call rotations.

JSM Operations is Opsgenie moved into Jira Service Management and kept its alert model, so this logic is
the same for both. Where the vendors differ (paths, field names, query fields, error bodies, paging, what
a request's status says) stays in `jsm/state.py` and `opsgenie/state.py`."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

Row = dict[str, Any]
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC with milliseconds, as both vendors write times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def read_time(value: object) -> datetime | None:
    """An ISO 8601 date-time (read as UTC when it names no zone), or None when `value` is not one; each
    vendor answers None with its own error."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def overlong(body: Row, limits: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    """(field, limit) of each field of `body` that is present but not a string of at most its limit."""
    for field, limit in limits:
        if field in body and (not isinstance(body[field], str) or len(body[field]) > limit):
            yield field, limit


def text_size(mapping: Row) -> int:
    """The characters of keys and values together, as both vendors bound `details`/`extraProperties`."""
    return sum(len(str(k)) + len(str(v)) for k, v in mapping.items())


class AlertState:
    """Alerts, their notes and logs, teams, schedules and the asynchronous requests, held as both vendors
    hold them. A vendor's emulator adds its rules: `matches` (its query language), validation, and what
    `accept`'s outcome and a poll's failures look like."""

    def __init__(self, *, processing_polls: int) -> None:
        self.processing_polls = processing_polls  # < 0: requests are never processed
        self.never_complete = processing_polls < 0
        self.log: list[Row] = []  # one entry per HTTP exchange, for the tests' spec checks
        self.alerts: dict[str, Row] = {}
        self.notes: dict[str, list[Row]] = {}  # alert id -> rows
        self.logs: dict[str, list[Row]] = {}
        self.requests: dict[str, Row] = {}  # request id -> {"polls", "data"}
        self.teams: list[Row] = []
        self.schedules: list[Row] = []
        self._seq = 0  # orders note and log rows
        self._tiny = 104  # the last tinyId given out

    def load(self, alerts: Iterable[Row], notes: Mapping[str, list[Row]], logs: Mapping[str, list[Row]],
             teams: list[Row], schedules: list[Row]) -> None:
        """Take a seed: its alerts, their notes and their logs (filed in the seed's order), and copies of its
        teams and schedules (so that one test's changes stay in its own emulator)."""
        self.alerts.update((alert["id"], alert) for alert in alerts)
        self.teams, self.schedules = copy.deepcopy(teams), copy.deepcopy(schedules)
        for aid, rows in notes.items():
            for row in rows:
                self.add_note(aid, row["note"], row["owner"], row["createdAt"])
        for aid, rows in logs.items():
            for row in rows:
                self.file_log(aid, row)

    def add_note(self, aid: str, text: str, owner: str, created: str | None = None) -> Row:
        """File a note on alert `aid`: the vendor's row, with the cursor its paging reads."""
        raise NotImplementedError

    def file_log(self, aid: str, row: Row) -> None:
        """File a log row on alert `aid`, with the cursor the vendor's paging reads."""
        raise NotImplementedError

    def next_tiny_id(self) -> str:
        self._tiny += 1
        return str(self._tiny)

    def accept(self, outcome: Callable[[], Row]) -> str:
        """Accept a write and return its request id. Its effect (`outcome`) happens at once, unless requests
        never complete; what it returned is the request's status once that has been polled enough."""
        rid = str(uuid.uuid4())
        self.requests[rid] = {"polls": 0, "data": None if self.never_complete else outcome()}
        return rid

    def poll(self, rid: str) -> Row | None:
        """The status of request `rid` once it has been polled more than `processing_polls` times; None
        before that, and for an id never given out (`rid in self.requests` tells the two apart)."""
        record = self.requests.get(rid)
        if record is None:
            return None
        record["polls"] += 1
        if record["data"] is None or record["polls"] <= self.processing_polls:
            return None
        data: Row = record["data"]
        return data

    def query_alerts(self, query: str | None) -> list[Row]:
        """The alerts that match every term of `query` (terms joined by AND, in either case)."""
        alerts = list(self.alerts.values())
        for term in [t.strip() for t in (query or "").replace(" and ", " AND ").split(" AND ") if t.strip()]:
            alerts = [a for a in alerts if self.matches(a, term)]
        return alerts

    def matches(self, alert: Row, term: str) -> bool:
        """Whether `alert` fits one query term: the vendor's query language."""
        raise NotImplementedError


# -- on-call rotations ------------------------------------------------------------------------------
class Turn(NamedTuple):
    """One participant's turn in a rotation."""

    start: datetime
    end: datetime
    person: Row


def _period(rotation: Row) -> timedelta:
    unit = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
    return unit[rotation["type"]] * rotation.get("length", 1)


def _start(rotation: Row) -> datetime:
    start = read_time(rotation["startDate"])
    if start is None:  # the schedules are the seed's: no request can set a bad date
        raise ValueError(f"rotation {rotation.get('id')} has no ISO 8601 startDate")
    return start


def turns_passed(rotation: Row, moment: datetime) -> int | None:
    """How many turns of `rotation` have ended by `moment` (0 during the first), or None before it starts."""
    start = _start(rotation)
    return None if moment < start else int((moment - start) / _period(rotation))


def turns(rotation: Row, start: datetime, end: datetime) -> Iterator[Turn]:
    """The turns of `rotation` that overlap [start, end), whole (not cut to the window)."""
    period, first, people = _period(rotation), _start(rotation), rotation["participants"]
    if not people or end <= first:
        return
    index = max(0, int((max(start, first) - first) / period))
    while first + period * index < end:
        turn_start = first + period * index
        yield Turn(turn_start, turn_start + period, people[index % len(people)])
        index += 1


def schedule_timeline(schedule: Row, start: datetime, end: datetime, period: Callable[[Turn], Row],
             **rotation_fields: Any) -> Row:
    """A schedule's timeline over [start, end): per rotation, its periods cut to the window; `period` gives
    the vendor's fields of one period after its dates, `rotation_fields` the vendor's extra rotation fields."""
    rotations = []
    for order, rotation in enumerate(schedule.get("rotations") or [], 1):
        periods = [{"startDate": iso(max(turn.start, start)), "endDate": iso(min(turn.end, end)), **period(turn)}
                   for turn in turns(rotation, start, end)]
        rotations.append({"id": rotation["id"], "name": rotation["name"], "order": float(order), **rotation_fields,
                          "periods": periods})
    return {"rotations": rotations}
