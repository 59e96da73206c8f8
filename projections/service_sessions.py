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
from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.projection import RecordedEvent, load_state_rows, replace_state_rows
from ledger.store import metadata

SESSION_TOPICS = (
    "Volunteer.CheckedIn",
    "Volunteer.CheckedOut",
    "Volunteer.MakeupHoursRecorded",
    "Volunteer.SessionApproved",
    "Volunteer.SessionRejected",
    "Volunteer.SessionCorrected",
    "Volunteer.SessionVoided",
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
    return (
        datetime.fromisoformat(moment)
        .astimezone(CHINA_STANDARD_TIME)
        .date()
        .isoformat()
    )


@dataclass
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
        return handler(dict(event.payload)) if handler else None

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
        self._session(payload, PENDING).status = REJECTED

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


def session_ids(events: Iterable[RecordedEvent]) -> list[str]:
    return sorted(
        {str(e.payload["session_id"]) for e in events if "session_id" in e.payload}
    )


def load_sessions(
    conn: Connection, table: sa.Table, version: int, wanted: Sequence[str]
) -> dict[str, SessionRecord]:
    rows = load_state_rows(conn, table, version, "session_id", wanted)
    return {row["session_id"]: SessionRecord(**row) for row in rows}


def save_sessions(
    conn: Connection, table: sa.Table, version: int, counter: SessionCounter
) -> None:
    changed = [asdict(counter.sessions[s]) for s in sorted(counter.changed)]
    replace_state_rows(conn, table, version, "session_id", changed)
    counter.changed.clear()
