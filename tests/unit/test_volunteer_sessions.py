"""Volunteers and their service sessions: check-in / check-out (签到/签退),
make-up hours (补录), approval, corrections and voids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from ledger.domain.errors import (
    CheckOutBeforeCheckInError,
    DomainError,
    DuplicateIdError,
    InvalidIdNumberError,
    InvalidMinutesError,
    InvalidTransitionError,
    MakeupExceedsScheduleError,
    MissingReasonError,
    NothingToChangeError,
    NotSignedUpError,
    OutOfOrderError,
    OutsideActivityWindowError,
    OverlappingSessionError,
    SessionTooLongError,
    UnknownReferenceError,
)
from ledger.domain.teams import Team
from ledger.domain.volunteers import (
    SessionKind,
    SessionStatus,
    Volunteer,
    validate_id_number,
)
from tests.factories import T0, id_number
from tests.unit.domain_builders import (
    BEFORE,
    HOUR,
    LATER,
    MINUTE,
    activity,
    event_names,
    makeup_in,
    session_in,
    settled,
    volunteer,
    volunteer_at,
)

ENDS = T0 + 3 * HOUR  # the builder's activities run 09:00 to 12:00 CST
BLANK_REASONS = ["", "   ", "\t\n"]
NOT_PENDING = [
    SessionStatus.OPEN,
    SessionStatus.APPROVED,
    SessionStatus.REJECTED,
    SessionStatus.VOIDED,
]
NOT_APPROVED = [
    SessionStatus.OPEN,
    SessionStatus.PENDING,
    SessionStatus.REJECTED,
    SessionStatus.VOIDED,
]


def register(id_number_text: str) -> Volunteer:
    return Volunteer.register(
        volunteer_id="V1", name="张三", id_number=id_number_text, phone=None, teams=[]
    )


def id_number_ending_in_x() -> str:
    return next(n for s in range(1000) if (n := id_number(s)).endswith("X"))


def with_wrong_check_character(valid: str) -> str:
    return valid[:17] + next(c for c in "0123456789X" if c != valid[17])


# --- registration and ID numbers ----------------------------------------------


def test_a_volunteer_is_registered_with_their_teams() -> None:
    corps = Team.register(team_id="T1", name="总队", level="corps", parent=None)

    registered = Volunteer.register(
        volunteer_id="V1",
        name="张三",
        id_number=id_number(),
        phone="13800000000",
        teams=[corps],
    )

    assert event_names(registered) == ["Registered"]
    assert registered.team_ids == ["T1"]
    assert registered.phone == "13800000000"
    assert registered.sessions == {}


def test_an_id_number_with_a_valid_check_digit_is_accepted() -> None:
    valid = id_number()

    assert register(valid).id_number == valid


def test_an_id_number_with_check_character_x_is_accepted() -> None:
    valid = id_number_ending_in_x()

    assert validate_id_number(valid) == valid


def test_an_id_number_is_stored_upper_case_without_surrounding_blanks() -> None:
    valid = id_number_ending_in_x()

    assert register(f"  {valid.lower()} ").id_number == valid


@pytest.mark.parametrize(
    "shape",
    [
        "",
        "32058319900101001",  # 17 characters
        "3205831990010100123",  # 19 characters
        "32058319900101A01X",  # a letter among the first 17
        "X20583199001010017",  # X anywhere but last
        "320583 19900101001",
    ],
)
def test_an_id_number_of_the_wrong_shape_is_refused(shape: str) -> None:
    with pytest.raises(InvalidIdNumberError):
        register(shape)


def to_full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def to_arabic_indic(text: str) -> str:
    return "".join(chr(ord(c) - ord("0") + 0x660) if c.isdigit() else c for c in text)


@pytest.mark.parametrize("spelling", [to_full_width, to_arabic_indic])
def test_an_id_number_in_digits_other_than_ascii_is_refused(
    spelling: Callable[[str], str],
) -> None:
    with pytest.raises(InvalidIdNumberError):
        register(spelling(id_number_ending_in_x()))


def test_an_id_number_with_a_wrong_check_digit_is_refused() -> None:
    with pytest.raises(InvalidIdNumberError):
        register(with_wrong_check_character(id_number()))


def test_an_id_number_with_two_digits_swapped_is_refused() -> None:
    valid = id_number(123)
    swapped = valid[:14] + valid[15] + valid[14] + valid[16:]
    assert swapped != valid

    with pytest.raises(InvalidIdNumberError):
        register(swapped)


# --- check-in -----------------------------------------------------------------


def test_a_check_in_opens_a_verified_session() -> None:
    who, where = volunteer_at()

    who.check_in("S1", where, T0)

    assert event_names(who) == ["CheckedIn"]
    session = who.session("S1")
    assert session.kind is SessionKind.VERIFIED
    assert session.status is SessionStatus.OPEN
    assert (session.activity_id, session.started_at, session.minutes) == ("A1", T0, 0)


def test_a_check_in_without_a_sign_up_is_refused() -> None:
    who, where = volunteer(), activity(signed_up=("V2",))

    with pytest.raises(NotSignedUpError):
        who.check_in("S1", where, T0)

    assert who.collect_events() == []
    assert who.sessions == {}


def test_a_check_in_after_cancelling_the_sign_up_is_refused() -> None:
    who, where = volunteer_at()
    where.cancel_sign_up("V1", BEFORE + HOUR)

    with pytest.raises(NotSignedUpError):
        who.check_in("S1", where, T0)

    assert who.collect_events() == []


def test_a_check_in_dated_before_the_sign_up_is_refused() -> None:
    # Given V1 signed up half an hour before the start
    who, where = volunteer(), activity()
    where.sign_up("V1", T0 - 30 * MINUTE)
    settled(where)

    # When V1 checks in a quarter of an hour before that (inside the tolerance)
    with pytest.raises(NotSignedUpError):
        who.check_in("S1", where, T0 - 45 * MINUTE)

    # Then nothing is recorded
    assert who.collect_events() == []
    assert who.sessions == {}


def test_a_check_in_at_the_moment_of_the_sign_up_is_accepted() -> None:
    who, where = volunteer(), activity()
    where.sign_up("V1", T0 - 30 * MINUTE)
    settled(where)

    who.check_in("S1", where, T0 - 30 * MINUTE)

    assert event_names(who) == ["CheckedIn"]


def test_a_check_in_dated_before_a_renewed_sign_up_is_refused() -> None:
    # Given V1 signed up a week early, cancelled, and signed up again at 08:50
    who, where = volunteer_at()
    where.cancel_sign_up("V1", BEFORE + HOUR)
    where.sign_up("V1", T0 - 10 * MINUTE)
    settled(where)

    # Then a check-in at 08:40, when V1 held no place, is refused
    with pytest.raises(NotSignedUpError):
        who.check_in("S1", where, T0 - 20 * MINUTE)

    assert who.collect_events() == []


@pytest.mark.parametrize(
    "at",
    [T0 - 60 * MINUTE, T0, ENDS - MINUTE],
    ids=["60 min early", "at the start", "a minute before the end"],
)
def test_a_check_in_inside_the_window_and_its_tolerance_is_accepted(
    at: datetime,
) -> None:
    who, where = volunteer_at()

    who.check_in("S1", where, at)

    assert who.session("S1").started_at == at


@pytest.mark.parametrize(
    "at",
    [T0 - 61 * MINUTE, ENDS, ENDS + 30 * MINUTE],
    ids=["61 min early", "at the end", "after the end"],
)
def test_a_check_in_outside_the_window_and_its_tolerance_is_refused(
    at: datetime,
) -> None:
    who, where = volunteer_at()

    with pytest.raises(OutsideActivityWindowError):
        who.check_in("S1", where, at)

    assert who.collect_events() == []
    assert who.sessions == {}


def test_a_check_in_reusing_a_session_id_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    with pytest.raises(DuplicateIdError):
        who.check_in("S1", where, T0 + 2 * HOUR)

    assert who.collect_events() == []


# --- check-out ----------------------------------------------------------------


def test_a_check_out_closes_the_session_for_approval() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    who.check_out("S1", where, T0 + 2 * HOUR)

    assert event_names(who) == ["CheckedOut"]
    session = who.session("S1")
    assert session.status is SessionStatus.PENDING
    assert (session.ended_at, session.minutes) == (T0 + 2 * HOUR, 120)


def test_a_sessions_minutes_are_whole_minutes_rounded_down() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    who.check_out("S1", where, T0 + timedelta(minutes=90, seconds=59))

    assert who.session("S1").minutes == 90


def test_a_check_out_at_the_moment_of_check_in_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    with pytest.raises(CheckOutBeforeCheckInError):
        who.check_out("S1", where, T0)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.OPEN


def test_a_check_out_before_check_in_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    with pytest.raises(DomainError):
        who.check_out("S1", where, T0 - MINUTE)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.OPEN


def test_a_check_out_before_check_in_is_refused_with_its_named_error() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    with pytest.raises(CheckOutBeforeCheckInError):
        who.check_out("S1", where, T0 - MINUTE)


def test_a_session_of_exactly_24_hours_is_accepted() -> None:
    who, where = volunteer_at(duration=30 * HOUR)
    session_in(SessionStatus.OPEN, who, where)

    who.check_out("S1", where, T0 + 24 * HOUR)

    assert who.session("S1").minutes == 24 * 60


def test_a_session_over_24_hours_is_refused() -> None:
    who, where = volunteer_at(duration=30 * HOUR)
    session_in(SessionStatus.OPEN, who, where)

    with pytest.raises(SessionTooLongError):
        who.check_out("S1", where, T0 + 24 * HOUR + MINUTE)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.OPEN


def test_a_check_out_up_to_60_minutes_after_the_end_is_accepted() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    who.check_out("S1", where, ENDS + 60 * MINUTE)

    assert who.session("S1").minutes == 4 * 60


def test_a_check_out_beyond_the_end_and_its_tolerance_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)

    with pytest.raises(OutsideActivityWindowError):
        who.check_out("S1", where, ENDS + 61 * MINUTE)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.OPEN


def test_checking_out_twice_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    with pytest.raises(InvalidTransitionError):
        who.check_out("S1", where, T0 + 2 * HOUR)

    assert who.collect_events() == []
    assert who.session("S1").minutes == 60


def test_checking_out_an_unknown_session_is_refused() -> None:
    who, where = volunteer_at()

    with pytest.raises(UnknownReferenceError):
        who.check_out("nope", where, T0 + HOUR)


# --- overlapping sessions -------------------------------------------------------


def test_an_open_session_blocks_a_new_check_in_anywhere() -> None:
    who, morning = volunteer_at("A1")
    elsewhere = activity("A2", starts_at=T0 + 5 * HOUR, signed_up=("V1",))
    session_in(SessionStatus.OPEN, who, morning)

    with pytest.raises(OverlappingSessionError):
        who.check_in("S2", elsewhere, T0 + 5 * HOUR)

    assert who.collect_events() == []
    assert set(who.sessions) == {"S1"}


@pytest.mark.parametrize("status", [SessionStatus.PENDING, SessionStatus.APPROVED])
def test_a_check_in_inside_another_live_session_is_refused(
    status: SessionStatus,
) -> None:
    who, where = volunteer_at()
    session_in(status, who, where, minutes=120)  # 09:00-11:00

    with pytest.raises(OverlappingSessionError):
        who.check_in("S2", where, T0 + HOUR)

    assert who.collect_events() == []


def test_a_session_starting_when_another_ends_does_not_overlap_it() -> None:
    # Given a session from 09:00 to 10:00
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    # When the volunteer checks in again at 10:00 sharp
    who.check_in("S2", where, T0 + HOUR)
    who.check_out("S2", where, T0 + 2 * HOUR)

    # Then the half-open intervals [09:00, 10:00) and [10:00, 11:00) both stand
    assert event_names(who) == ["CheckedIn", "CheckedOut"]
    assert who.session("S2").minutes == 60


def test_a_session_ending_when_another_starts_does_not_overlap_it() -> None:
    # Given a session from 11:00 to 12:00
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where, start=T0 + 2 * HOUR)

    # When a session that began at 10:00 is checked out at 11:00 sharp
    who.check_in("S2", where, T0 + HOUR)
    who.check_out("S2", where, T0 + 2 * HOUR)

    # Then both stand
    assert who.session("S2").status is SessionStatus.PENDING


def test_a_check_out_that_runs_into_a_later_session_is_refused() -> None:
    # Given a session from 11:00 to 12:00, and another checked in at 10:00
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, start=T0 + 2 * HOUR)
    who.check_in("S2", where, T0 + HOUR)
    who.collect_events()

    # When the 10:00 session is checked out at 11:30, it is refused
    with pytest.raises(OverlappingSessionError):
        who.check_out("S2", where, T0 + 2 * HOUR + 30 * MINUTE)

    assert who.collect_events() == []
    assert who.session("S2").status is SessionStatus.OPEN


@pytest.mark.parametrize("status", [SessionStatus.REJECTED, SessionStatus.VOIDED])
def test_rejected_and_voided_sessions_block_nothing(status: SessionStatus) -> None:
    who, where = volunteer_at()
    session_in(status, who, where, minutes=120)  # 09:00-11:00

    who.check_in("S2", where, T0 + 30 * MINUTE)
    who.check_out("S2", where, T0 + 90 * MINUTE)

    assert event_names(who) == ["CheckedIn", "CheckedOut"]


def test_make_up_hours_occupy_no_time() -> None:
    who, where = volunteer_at()
    other = activity("A2", signed_up=("V1",))
    makeup_in(SessionStatus.APPROVED, who, other, minutes=180)

    who.check_in("S1", where, T0)
    who.check_out("S1", where, ENDS)

    assert event_names(who) == ["CheckedIn", "CheckedOut"]


@pytest.mark.parametrize("status", [SessionStatus.PENDING, SessionStatus.APPROVED])
def test_a_check_in_beside_live_make_up_hours_at_the_activity_is_refused(
    status: SessionStatus,
) -> None:
    # Given V1 was credited make-up hours for A1
    who, where = volunteer_at()
    makeup_in(status, who, where)

    # When V1 checks in to A1, it is refused: the make-up is to be corrected
    with pytest.raises(OverlappingSessionError):
        who.check_in("S1", where, T0)

    assert who.collect_events() == []
    assert set(who.sessions) == {"M1"}


@pytest.mark.parametrize("status", [SessionStatus.REJECTED, SessionStatus.VOIDED])
def test_a_check_in_beside_rejected_or_voided_make_up_hours_is_accepted(
    status: SessionStatus,
) -> None:
    who, where = volunteer_at()
    makeup_in(status, who, where)

    who.check_in("S1", where, T0)

    assert event_names(who) == ["CheckedIn"]


# --- make-up hours --------------------------------------------------------------


def test_make_up_hours_are_recorded_pending_with_their_reason() -> None:
    who, where = volunteer(), activity()

    who.record_makeup_hours("M1", where, 90, "  签到机故障  ", LATER)

    events = who.collect_events()
    assert [type(e).__name__ for e in events] == ["MakeupHoursRecorded"]
    assert events[0].reason == "签到机故障"  # type: ignore[attr-defined]
    session = who.session("M1")
    assert (session.kind, session.status) == (SessionKind.MAKEUP, SessionStatus.PENDING)
    assert session.minutes == 90


def test_make_up_hours_dated_before_the_activity_starts_are_refused() -> None:
    who, where = volunteer(), activity()

    with pytest.raises(OutsideActivityWindowError):
        who.record_makeup_hours("M1", where, 60, "forgot to check in", T0 - MINUTE)

    assert who.collect_events() == []
    assert who.sessions == {}


@pytest.mark.parametrize(
    "at", [T0, T0 + HOUR, ENDS], ids=["at the start", "under way", "at the end"]
)
def test_make_up_hours_dated_from_the_activitys_start_are_accepted(
    at: datetime,
) -> None:
    who, where = volunteer(), activity()

    who.record_makeup_hours("M1", where, 60, "forgot to check in", at)

    assert event_names(who) == ["MakeupHoursRecorded"]
    assert who.session("M1").last_changed_at == at


def test_make_up_hours_equal_to_the_scheduled_duration_are_accepted() -> None:
    who, where = volunteer(), activity()

    who.record_makeup_hours("M1", where, 180, "forgot to check in", LATER)

    assert who.session("M1").minutes == 180


def test_make_up_hours_above_the_scheduled_duration_are_refused() -> None:
    who, where = volunteer(), activity()

    with pytest.raises(MakeupExceedsScheduleError):
        who.record_makeup_hours("M1", where, 181, "forgot to check in", LATER)

    assert who.collect_events() == []
    assert who.sessions == {}


@pytest.mark.parametrize("minutes", [0, -30])
def test_make_up_hours_of_no_time_are_refused(minutes: int) -> None:
    who, where = volunteer(), activity()

    with pytest.raises(InvalidMinutesError):
        who.record_makeup_hours("M1", where, minutes, "forgot to check in", LATER)

    assert who.collect_events() == []


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_make_up_hours_with_a_blank_reason_are_refused(reason: str) -> None:
    who, where = volunteer(), activity()

    with pytest.raises(MissingReasonError):
        who.record_makeup_hours("M1", where, 60, reason, LATER)

    assert who.collect_events() == []
    assert who.sessions == {}


@pytest.mark.parametrize(
    "status", [SessionStatus.OPEN, SessionStatus.PENDING, SessionStatus.APPROVED]
)
def test_make_up_hours_beside_a_live_session_at_the_activity_are_refused(
    status: SessionStatus,
) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    with pytest.raises(NothingToChangeError):
        who.record_makeup_hours("M1", where, 60, "forgot to check in", LATER)

    assert who.collect_events() == []
    assert set(who.sessions) == {"S1"}


def test_make_up_hours_beside_live_make_up_hours_at_the_activity_are_refused() -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.PENDING, who, where)

    with pytest.raises(NothingToChangeError):
        who.record_makeup_hours("M2", where, 30, "and a bit more", LATER)

    assert who.collect_events() == []


@pytest.mark.parametrize("status", [SessionStatus.REJECTED, SessionStatus.VOIDED])
def test_make_up_hours_beside_a_rejected_or_voided_session_are_accepted(
    status: SessionStatus,
) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    who.record_makeup_hours("M1", where, 60, "the check-in was lost", LATER)

    assert event_names(who) == ["MakeupHoursRecorded"]


def test_make_up_hours_beside_a_session_at_another_activity_are_accepted() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    who.record_makeup_hours("M1", activity("A2"), 60, "forgot to check in", LATER)

    assert event_names(who) == ["MakeupHoursRecorded"]


def test_make_up_hours_reusing_a_session_id_are_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(DuplicateIdError):
        who.record_makeup_hours("S1", activity("A2"), 60, "forgot", LATER)

    assert who.collect_events() == []


# --- approval and rejection -----------------------------------------------------


def test_a_pending_verified_session_is_approved() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    who.approve_session("S1", LATER)

    assert event_names(who) == ["SessionApproved"]
    assert who.session("S1").status is SessionStatus.APPROVED


def test_pending_make_up_hours_are_approved() -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.PENDING, who, where)

    who.approve_session("M1", LATER)

    assert who.session("M1").status is SessionStatus.APPROVED


def test_a_pending_session_is_rejected_with_a_reason() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    who.reject_session("S1", "不在名单上", LATER)

    assert event_names(who) == ["SessionRejected"]
    assert who.session("S1").status is SessionStatus.REJECTED


@pytest.mark.parametrize("status", NOT_PENDING)
def test_only_a_pending_session_can_be_approved(status: SessionStatus) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    with pytest.raises(InvalidTransitionError):
        who.approve_session("S1", LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is status


@pytest.mark.parametrize(
    "status", [s for s in NOT_PENDING if s is not SessionStatus.OPEN]
)
def test_only_a_pending_or_open_session_can_be_rejected(status: SessionStatus) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    with pytest.raises(InvalidTransitionError):
        who.reject_session("S1", "not on the roster", LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is status


def test_a_session_never_checked_out_is_closed_by_rejecting_it() -> None:
    # Given a volunteer who forgot to check out
    who, where = volunteer_at()
    session_in(SessionStatus.OPEN, who, where)
    # When the organiser rejects the open session
    who.reject_session("S1", "forgot to check out", LATER)
    # Then it counts for nothing and blocks nothing: make-up hours may follow
    assert who.session("S1").status is SessionStatus.REJECTED
    who.record_makeup_hours("M1", where, 60, "served, forgot to check out", LATER)
    assert event_names(who) == ["SessionRejected", "MakeupHoursRecorded"]


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_rejecting_a_session_with_a_blank_reason_is_refused(reason: str) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)

    with pytest.raises(MissingReasonError):
        who.reject_session("S1", reason, LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.PENDING


def test_an_approval_dated_before_the_check_out_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.PENDING, who, where)  # checked out at 10:00

    with pytest.raises(OutOfOrderError):
        who.approve_session("S1", T0 + 59 * MINUTE)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.PENDING


def test_approving_an_unknown_session_is_refused() -> None:
    with pytest.raises(UnknownReferenceError):
        volunteer().approve_session("nope", LATER)


# --- corrections and voids ------------------------------------------------------


def test_a_correction_replaces_the_minutes_and_keeps_the_session_approved() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)

    who.correct_session("S1", where, 45, "left early", LATER)

    events = who.collect_events()
    assert [type(e).__name__ for e in events] == ["SessionCorrected"]
    assert events[0].previous_minutes == 60  # type: ignore[attr-defined]
    session = who.session("S1")
    assert (session.minutes, session.status) == (45, SessionStatus.APPROVED)
    assert session.kind is SessionKind.VERIFIED


def test_a_correction_of_make_up_hours_keeps_them_make_up_hours() -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.APPROVED, who, where, minutes=60)

    who.correct_session("M1", where, 120, "stayed to tidy up", LATER)

    session = who.session("M1")
    assert (session.kind, session.minutes) == (SessionKind.MAKEUP, 120)
    assert session.status is SessionStatus.APPROVED


def test_a_correction_is_not_a_delta() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)

    who.correct_session("S1", where, 90, "stayed late", LATER)
    who.correct_session("S1", where, 80, "stayed less late", LATER + HOUR)

    assert who.session("S1").minutes == 80


def test_a_correction_to_the_same_minutes_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)

    with pytest.raises(NothingToChangeError):
        who.correct_session("S1", where, 60, "double-checked", LATER)

    assert who.collect_events() == []


@pytest.mark.parametrize("status", NOT_APPROVED)
def test_only_an_approved_session_can_be_corrected(status: SessionStatus) -> None:
    who, where = volunteer_at()
    session_in(status, who, where, minutes=60)

    with pytest.raises(InvalidTransitionError):
        who.correct_session("S1", where, 45, "left early", LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is status


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_a_verified_session_corrected_outside_1_to_1440_minutes_is_refused(
    minutes: int,
) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(InvalidMinutesError):
        who.correct_session("S1", where, minutes, "typo", LATER)

    assert who.collect_events() == []
    assert who.session("S1").minutes == 60


def test_make_up_hours_corrected_above_the_scheduled_duration_are_refused() -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(MakeupExceedsScheduleError):
        who.correct_session("M1", where, 181, "stayed very late", LATER)

    assert who.collect_events() == []
    assert who.session("M1").minutes == 60


def test_make_up_hours_corrected_to_nothing_are_refused() -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(InvalidMinutesError):
        who.correct_session("M1", where, 0, "did not come", LATER)

    assert who.collect_events() == []


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_a_correction_with_a_blank_reason_is_refused(reason: str) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(MissingReasonError):
        who.correct_session("S1", where, 45, reason, LATER)

    assert who.collect_events() == []
    assert who.session("S1").minutes == 60


def test_a_correction_dated_before_the_approval_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)  # approved at 10:01

    with pytest.raises(OutOfOrderError):
        who.correct_session("S1", where, 45, "left early", T0 + HOUR)

    assert who.collect_events() == []


@pytest.mark.parametrize("fraud", [False, True])
def test_an_approved_session_is_voided_with_a_reason(fraud: bool) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    who.void_session("S1", "代签", fraud, LATER)

    events = who.collect_events()
    assert [type(e).__name__ for e in events] == ["SessionVoided"]
    assert events[0].fraud is fraud  # type: ignore[attr-defined]
    assert who.session("S1").status is SessionStatus.VOIDED


@pytest.mark.parametrize("status", NOT_APPROVED)
def test_only_an_approved_session_can_be_voided(status: SessionStatus) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    with pytest.raises(InvalidTransitionError):
        who.void_session("S1", "entered twice", False, LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is status


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_voiding_with_a_blank_reason_is_refused(reason: str) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(MissingReasonError):
        who.void_session("S1", reason, True, LATER)

    assert who.collect_events() == []
    assert who.session("S1").status is SessionStatus.APPROVED


# --- correction requests --------------------------------------------------------


def test_a_volunteer_requests_a_correction_of_an_approved_session() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)

    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)

    assert event_names(who) == ["CorrectionRequested"]
    session = who.session("S1")
    assert session.correction_requested
    assert session.minutes == 60  # unchanged until the organiser decides


@pytest.mark.parametrize("status", NOT_APPROVED)
def test_a_correction_request_for_a_session_not_approved_is_refused(
    status: SessionStatus,
) -> None:
    who, where = volunteer_at()
    session_in(status, who, where)

    with pytest.raises(InvalidTransitionError):
        who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)

    assert who.collect_events() == []


def test_a_second_correction_request_while_one_awaits_a_decision_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)
    who.collect_events()

    with pytest.raises(InvalidTransitionError):
        who.request_correction("S1", where, 100, "even longer", LATER + HOUR)

    assert who.collect_events() == []


def test_a_correction_request_for_the_same_minutes_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)

    with pytest.raises(NothingToChangeError):
        who.request_correction("S1", where, 60, "please check", LATER)

    assert who.collect_events() == []
    assert not who.session("S1").correction_requested


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_a_correction_request_with_a_blank_reason_is_refused(reason: str) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(MissingReasonError):
        who.request_correction("S1", where, 90, reason, LATER)

    assert who.collect_events() == []
    assert not who.session("S1").correction_requested


@pytest.mark.parametrize("minutes", [0, -30, 24 * 60 + 1])
def test_a_verified_correction_request_outside_1_to_1440_minutes_is_refused(
    minutes: int,
) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(InvalidMinutesError):
        who.request_correction("S1", where, minutes, "typo", LATER)

    assert who.collect_events() == []
    assert not who.session("S1").correction_requested


@pytest.mark.parametrize("minutes", [1, 24 * 60])
def test_a_verified_correction_request_may_ask_for_1_to_1440_minutes(
    minutes: int,
) -> None:
    # The bound is the 24-hour session limit, not the activity's 3 hours.
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    who.request_correction("S1", where, minutes, "the sheet says so", LATER)

    assert event_names(who) == ["CorrectionRequested"]


@pytest.mark.parametrize("minutes", [0, -30])
def test_a_make_up_correction_request_for_no_time_is_refused(
    minutes: int,
) -> None:
    who, where = volunteer(), activity()
    makeup_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(InvalidMinutesError):
        who.request_correction("M1", where, minutes, "did not come", LATER)

    assert who.collect_events() == []
    assert not who.session("M1").correction_requested


def test_a_make_up_correction_request_above_the_schedule_is_refused() -> None:
    who, where = volunteer(), activity()  # scheduled for 180 minutes
    makeup_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(MakeupExceedsScheduleError):
        who.request_correction("M1", where, 181, "stayed very late", LATER)

    assert who.collect_events() == []
    assert not who.session("M1").correction_requested


def test_a_make_up_correction_request_up_to_the_schedule_is_accepted() -> None:
    who, where = volunteer(), activity()  # scheduled for 180 minutes
    makeup_in(SessionStatus.APPROVED, who, where)

    who.request_correction("M1", where, 180, "stayed to the end", LATER)

    assert event_names(who) == ["CorrectionRequested"]
    assert who.session("M1").correction_requested
    assert who.session("M1").minutes == 60


def test_the_organiser_declines_a_correction_request_with_a_reason() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)
    who.collect_events()

    who.decline_correction("S1", "签退记录无误", LATER + HOUR)

    assert event_names(who) == ["CorrectionDeclined"]
    session = who.session("S1")
    assert not session.correction_requested
    assert session.minutes == 60


def test_declining_without_a_correction_request_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(InvalidTransitionError):
        who.decline_correction("S1", "nothing to decline", LATER)

    assert who.collect_events() == []


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_declining_a_correction_with_a_blank_reason_is_refused(reason: str) -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)
    who.collect_events()

    with pytest.raises(MissingReasonError):
        who.decline_correction("S1", reason, LATER + HOUR)

    assert who.collect_events() == []
    assert who.session("S1").correction_requested


def test_a_volunteer_may_ask_again_after_a_correction_is_declined() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)
    who.decline_correction("S1", "no evidence", LATER + HOUR)
    who.collect_events()

    who.request_correction("S1", where, 90, "here is the photo", LATER + 2 * HOUR)

    assert event_names(who) == ["CorrectionRequested"]


def test_a_correction_answers_an_open_request() -> None:
    # Given a volunteer asked for 90 minutes
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where, minutes=60)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)

    # When the organiser corrects the session
    who.correct_session("S1", where, 90, "confirmed by the team leader", LATER + HOUR)
    settled(who)

    # Then there is no request left to decline
    assert not who.session("S1").correction_requested
    with pytest.raises(InvalidTransitionError):
        who.decline_correction("S1", "too late", LATER + 2 * HOUR)
    assert who.collect_events() == []


def test_voiding_a_session_closes_its_correction_request() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)
    who.request_correction("S1", where, 90, "I stayed to tidy up", LATER)
    who.void_session("S1", "代签", True, LATER + HOUR)
    who.collect_events()

    with pytest.raises(InvalidTransitionError):
        who.decline_correction("S1", "voided anyway", LATER + 2 * HOUR)

    assert who.collect_events() == []


def test_a_correction_request_dated_before_the_approval_is_refused() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(OutOfOrderError):
        who.request_correction("S1", where, 90, "I stayed to tidy up", T0)

    assert who.collect_events() == []
