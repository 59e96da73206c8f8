"""Service sessions as the hour-counting projections see them.

What counts (CONTRACT §1.1, §2): a session — verified (check-in/check-out)
or make-up — counts only once approved, with its current minutes, and stops
counting when voided; a correction replaces its minutes. A verified session
belongs to the period (China Standard Time) of its check-in, make-up hours
to the period of the activity's start.

``SessionCounter`` follows the session events and says, for each, how the
counted minutes and sessions change. Both ``volunteer_hours`` and
``venue_activity`` use it, each with its own state table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.projection import RecordedEvent, load_state_rows
from ledger.store import metadata, upsert_rows

SESSION_TOPICS = frozenset(
    {
        "Volunteer.CheckedIn",
        "Volunteer.CheckedOut",
        "Volunteer.MakeupHoursRecorded",
        "Volunteer.SessionApproved",
        "Volunteer.SessionRejected",
        "Volunteer.SessionCorrected",
        "Volunteer.SessionVoided",
    }
)

OPEN, PENDING, APPROVED, REJECTED, VOIDED = (
    "open",
    "pending",
    "approved",
    "rejected",
    "voided",
)


class SessionEventError(Exception):
    """A session event that does not fit what the projection knows."""


def china_date(moment: str) -> str:
    """The calendar date (YYYY-MM-DD) in China Standard Time of an ISO time."""
    if moment.endswith("+08:00"):  # already China Standard Time: the fast path
        return moment[:10]
    return (
        datetime.fromisoformat(moment)
        .astimezone(CHINA_STANDARD_TIME)
        .date()
        .isoformat()
    )


@dataclass(slots=True)
class SessionRecord:
    session_id: str
    volunteer_id: str
    kind: str
    venue_id: str
    category: str
    service_date: str  # YYYY-MM-DD in China Standard Time
    minutes: int
    status: str

    @property
    def year(self) -> str:
        return self.service_date[:4]

    @property
    def month(self) -> str:
        return self.service_date[:7]


@dataclass(frozen=True)
class CountedChange:
    """How one event changes what a session counts for."""

    session: SessionRecord
    minutes: int
    sessions: int


def session_state_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("volunteer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("service_date", sa.String(10), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
    )


class SessionCounter:
    """Follows sessions through their events (the pure part)."""

    def __init__(self, sessions: dict[str, SessionRecord] | None = None) -> None:
        self.sessions = sessions if sessions is not None else {}
        self.changed: set[str] = set()
        self._handlers: dict[
            str, Callable[[dict[str, object]], CountedChange | None]
        ] = {
            "Volunteer.CheckedIn": self._checked_in,
            "Volunteer.CheckedOut": self._checked_out,
            "Volunteer.MakeupHoursRecorded": self._makeup_recorded,
            "Volunteer.SessionApproved": self._approved,
            "Volunteer.SessionRejected": self._rejected,
            "Volunteer.SessionCorrected": self._corrected,
            "Volunteer.SessionVoided": self._voided,
        }

    def evolve(self, event: RecordedEvent) -> CountedChange | None:
        handler = self._handlers.get(event.topic)
        return handler(event.payload) if handler else None

    def _session(self, payload: dict[str, object], *expected: str) -> SessionRecord:
        session_id = str(payload["session_id"])
        record = self.sessions.get(session_id)
        if record is None:
            raise SessionEventError(f"session '{session_id}' was never opened")
        if record.status not in expected:
            wanted = " or ".join(expected)
            raise SessionEventError(
                f"session '{session_id}' is {record.status}, expected {wanted}"
            )
        self.changed.add(session_id)
        return record

    def _open(
        self,
        payload: dict[str, object],
        kind: str,
        moment: str,
        status: str,
        minutes: int,
    ) -> None:
        session_id = str(payload["session_id"])
        if session_id in self.sessions:
            raise SessionEventError(f"session '{session_id}' was opened twice")
        self.sessions[session_id] = SessionRecord(
            session_id=session_id,
            volunteer_id=str(payload["volunteer_id"]),
            kind=kind,
            venue_id=str(payload["venue_id"]),
            category=str(payload["category"]),
            service_date=china_date(moment),
            minutes=minutes,
            status=status,
        )
        self.changed.add(session_id)

    def _checked_in(self, payload: dict[str, object]) -> None:
        self._open(payload, "verified", str(payload["at"]), OPEN, 0)

    def _checked_out(self, payload: dict[str, object]) -> None:
        record = self._session(payload, OPEN)
        record.minutes = int(str(payload["minutes"]))
        record.status = PENDING

    def _makeup_recorded(self, payload: dict[str, object]) -> None:
        self._open(
            payload,
            "makeup",
            str(payload["activity_starts_at"]),
            PENDING,
            int(str(payload["minutes"])),
        )

    def _approved(self, payload: dict[str, object]) -> CountedChange:
        record = self._session(payload, PENDING)
        record.status = APPROVED
        return CountedChange(record, record.minutes, 1)

    def _rejected(self, payload: dict[str, object]) -> None:
        self._session(payload, OPEN, PENDING).status = REJECTED

    def _corrected(self, payload: dict[str, object]) -> CountedChange:
        record = self._session(payload, APPROVED)
        minutes = int(str(payload["minutes"]))
        change = CountedChange(record, minutes - record.minutes, 0)
        record.minutes = minutes
        return change

    def _voided(self, payload: dict[str, object]) -> CountedChange:
        record = self._session(payload, APPROVED)
        record.status = VOIDED
        return CountedChange(record, -record.minutes, -1)


OPENING_TOPICS = frozenset({"Volunteer.CheckedIn", "Volunteer.MakeupHoursRecorded"})


def unknown_sessions(
    counter: SessionCounter, events: Iterable[RecordedEvent]
) -> list[str]:
    """Sessions the events touch that the counter does not hold yet, leaving
    out those the events themselves open (they cannot be stored already)."""
    opened: set[str] = set()
    wanted: set[str] = set()
    for event in events:
        session_id = event.payload.get("session_id")
        if not isinstance(session_id, str):
            continue
        if event.topic in OPENING_TOPICS:
            opened.add(session_id)
        elif session_id not in opened and session_id not in counter.sessions:
            wanted.add(session_id)
    return sorted(wanted)


def load_sessions(
    conn: Connection,
    table: sa.Table,
    version: int,
    counter: SessionCounter,
    events: Sequence[RecordedEvent],
) -> None:
    rows = load_state_rows(
        conn, table, version, "session_id", unknown_sessions(counter, events)
    )
    counter.sessions.update({row[0]: SessionRecord(*row) for row in rows})


def save_sessions(
    conn: Connection, table: sa.Table, version: int, counter: SessionCounter
) -> None:
    upsert_rows(
        conn,
        table,
        [
            (version, *astuple_session(counter.sessions[s]))
            for s in sorted(counter.changed)
        ],
    )
    counter.changed.clear()


def astuple_session(record: SessionRecord) -> tuple[Any, ...]:
    """The record in the column order of a session state table."""
    return (
        record.session_id,
        record.volunteer_id,
        record.kind,
        record.venue_id,
        record.category,
        record.service_date,
        record.minutes,
        record.status,
    )
