"""What a session event changes in counted service (``counted_change``, the
fold both hour-counting projections share), in memory, from the events the
domain triggers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ledger.domain.volunteers import SessionStatus
from ledger.projections.service_sessions import (
    COUNTED_SESSION_TOPICS,
    CountedChange,
    MalformedEventError,
    counted_change,
)
from tests.factories import T0
from tests.unit.domain_builders import (
    LATER,
    MINUTE,
    activity,
    makeup_in,
    recorded,
    session_in,
    volunteer,
    volunteer_at,
)


def approved_session(minutes: int = 60) -> CountedChange:
    """The change of a verified session of ``minutes`` at A1, approved."""
    return CountedChange(
        session_id="S1",
        volunteer_id="V1",
        kind="verified",
        venue_id="station-1",
        category="culture",
        service_date="2024-03-01",
        minutes=minutes,
        sessions=1,
    )


def test_an_approval_counts_the_session_and_its_minutes() -> None:
    who, at_activity = volunteer_at()
    who.check_in("S1", at_activity, T0)
    who.check_out("S1", at_activity, T0 + 60 * MINUTE)
    who.approve_session("S1", T0 + 61 * MINUTE)

    changes = [counted_change(event) for event in recorded(who)]

    assert changes == [None, None, approved_session()]


def test_a_correction_changes_the_minutes_by_the_difference_only() -> None:
    who = session_in(SessionStatus.APPROVED, *volunteer_at(), minutes=60)
    who.correct_session("S1", activity(), 90, "checked out late", LATER)

    (correction,) = recorded(who)

    assert counted_change(correction) == replace(
        approved_session(), minutes=30, sessions=0
    )


def test_a_void_takes_the_session_and_its_current_minutes_out() -> None:
    who = session_in(SessionStatus.APPROVED, *volunteer_at(), minutes=60)
    who.correct_session("S1", activity(), 90, "checked out late", LATER)
    who.void_session("S1", "entered twice", False, LATER + MINUTE)

    changes = [counted_change(event) for event in recorded(who)]

    assert changes[-1] == replace(approved_session(), minutes=-90, sessions=-1)
    # the approval's 60 minutes and the correction's 30 are all taken out
    assert [c.minutes for c in changes if c] == [30, -90]


def test_make_up_hours_count_on_the_day_the_activity_started_not_when_approved() -> (
    None
):
    who = makeup_in(SessionStatus.PENDING, *volunteer_at(), minutes=45)
    who.approve_session("M1", LATER)

    (approval,) = recorded(who)

    assert counted_change(approval) == replace(
        approved_session(45), session_id="M1", kind="makeup"
    )


def test_service_dates_are_china_standard_time_dates() -> None:
    # 17:30 UTC on 1 March is half past one at night on 2 March in China.
    late = datetime(2024, 3, 1, 17, 30, tzinfo=UTC)
    who = session_in(
        SessionStatus.PENDING, volunteer(), activity(starts_at=late, signed_up=("V1",))
    )
    who.approve_session("S1", LATER)

    (approval,) = recorded(who)

    change = counted_change(approval)
    assert change is not None
    assert (change.service_date, change.month, change.year) == (
        "2024-03-02",
        "2024-03",
        "2024",
    )


def test_only_approvals_corrections_and_voids_change_what_counts() -> None:
    who = session_in(SessionStatus.PENDING, *volunteer_at())
    who.reject_session("S1", "no sign-in sheet", LATER)

    assert [e.topic for e in recorded(who, topics=COUNTED_SESSION_TOPICS)] == []


def test_an_event_without_the_session_facts_is_malformed() -> None:
    who = session_in(SessionStatus.PENDING, *volunteer_at())
    who.approve_session("S1", LATER)
    (approval,) = recorded(who)
    del approval.payload["session"]

    with pytest.raises(MalformedEventError, match=r"SessionApproved at position 1"):
        counted_change(approval)
