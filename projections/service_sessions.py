"""Service sessions as the hour-counting projections see them.

What counts (CONTRACT §1.1, §2): a session — verified (check-in/check-out)
or make-up — counts only once approved, with its current minutes, and stops
counting when voided; a correction replaces its minutes. A verified session
belongs to the period (China Standard Time) of its check-in, make-up hours
to the period of the activity's start.

Only three events change what a session counts for, and each carries the
session's facts (volunteer, kind, venue, category, the moment it counts
from), so ``counted_change`` reads the change off the event alone. Both
``volunteer_hours`` and ``venue_activity`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.engine import RecordedEvent

APPROVED = "Volunteer.SessionApproved"
CORRECTED = "Volunteer.SessionCorrected"
VOIDED = "Volunteer.SessionVoided"
COUNTED_SESSION_TOPICS = frozenset({APPROVED, CORRECTED, VOIDED})


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


@dataclass(frozen=True, slots=True)
class CountedChange:
    """How one event changes what a session counts for."""

    session_id: str
    volunteer_id: str
    kind: str
    venue_id: str
    category: str
    service_date: str  # YYYY-MM-DD in China Standard Time
    minutes: int
    sessions: int

    @property
    def year(self) -> str:
        return self.service_date[:4]

    @property
    def month(self) -> str:
        return self.service_date[:7]


class MalformedEventError(Exception):
    """An event lacks a field its projection needs."""


def counted_change(event: RecordedEvent) -> CountedChange | None:
    """The change an event makes to counted minutes and sessions, if any."""
    try:
        return _counted_change(event.topic, event.payload)
    except KeyError as missing:
        raise MalformedEventError(
            f"{event.topic} at position {event.position} has no field {missing}"
        ) from None


def _counted_change(topic: str, payload: dict[str, Any]) -> CountedChange | None:
    if topic == APPROVED:
        minutes, sessions = payload["minutes"], 1
    elif topic == CORRECTED:
        minutes, sessions = payload["minutes"] - payload["previous_minutes"], 0
    elif topic == VOIDED:
        minutes, sessions = -payload["minutes"], -1
    else:
        return None
    facts = payload["session"]
    return CountedChange(
        session_id=payload["session_id"],
        volunteer_id=facts["volunteer_id"],
        kind=facts["kind"],
        venue_id=facts["venue_id"],
        category=facts["category"],
        service_date=china_date(facts["counted_from"]),
        minutes=int(minutes),
        sessions=sessions,
    )
