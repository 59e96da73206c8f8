"""The ``volunteer_hours`` fold, in memory: a volunteer's counted service
follows from the session events the domain triggers, one entry each."""

from __future__ import annotations

from ledger.domain.volunteers import SessionStatus
from ledger.engine import Entry
from ledger.projections.registry import VOLUNTEER_HOURS
from tests.factories import T0
from tests.unit.domain_builders import (
    HOUR,
    LATER,
    MINUTE,
    activity,
    recorded,
    session_in,
    volunteer_at,
)

SESSION_S1 = ("V1", "S1", "verified", "2024", "culture", "2024-03-01")


def test_a_session_counts_once_approved_with_its_minutes() -> None:
    who, at_activity = volunteer_at()
    who.check_in("S1", at_activity, T0)
    who.check_out("S1", at_activity, T0 + 60 * MINUTE)
    who.approve_session("S1", T0 + 61 * MINUTE)

    events = recorded(who, topics=VOLUNTEER_HOURS.topics)

    assert VOLUNTEER_HOURS.fold(events).entries == [Entry(3, SESSION_S1, (60, 1))]


def test_corrections_replace_the_minutes_and_a_void_takes_the_session_out() -> None:
    who = session_in(SessionStatus.APPROVED, *volunteer_at(), minutes=60)
    who.correct_session("S1", activity(), 90, "checked out late", LATER)
    who.void_session("S1", "entered twice", True, LATER + MINUTE)

    folded = VOLUNTEER_HOURS.fold(recorded(who, topics=VOLUNTEER_HOURS.topics))

    assert folded.entries == [
        Entry(1, SESSION_S1, (30, 0)),
        Entry(2, SESSION_S1, (-90, -1)),
    ]


def test_make_up_hours_are_kept_apart_from_verified_minutes() -> None:
    who, morning = volunteer_at()
    who.check_in("S1", morning, T0)
    who.check_out("S1", morning, T0 + 60 * MINUTE)
    who.approve_session("S1", T0 + 61 * MINUTE)
    afternoon = activity("A2", starts_at=T0 + 5 * HOUR, signed_up=("V1",))
    who.record_makeup_hours("M1", afternoon, 45, "forgot to check in", LATER)
    who.approve_session("M1", LATER + MINUTE)

    figures = VOLUNTEER_HOURS.replay(recorded(who, topics=VOLUNTEER_HOURS.topics))

    assert figures == {
        SESSION_S1: (60, 1),
        ("V1", "M1", "makeup", "2024", "culture", "2024-03-01"): (45, 1),
    }


def test_a_rejected_session_never_counts() -> None:
    who = session_in(SessionStatus.PENDING, *volunteer_at())
    who.reject_session("S1", "no sign-in sheet", LATER)

    assert (
        VOLUNTEER_HOURS.fold(recorded(who, topics=VOLUNTEER_HOURS.topics)).entries == []
    )
