"""CONTRACT §1.3 in the domain: every bounded value is checked where an
aggregate takes it, with an error naming the rule, and the command models
refuse the same values with the same code when a line is parsed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ledger.application.commands import parse_command, refusal_code
from ledger.domain.activities import Activity
from ledger.domain.errors import (
    CapacityOutOfRangeError,
    InvalidMinutesError,
    InvalidTimeError,
    ListTooLongError,
    TextTooLongError,
    TimeOutOfRangeError,
)
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import SessionStatus
from tests.factories import T0
from tests.unit.domain_builders import (
    HOUR,
    LATER,
    activity,
    event_names,
    order,
    session_in,
    venue_of_level,
    volunteer,
    volunteer_at,
)


def publish(**overrides: Any) -> Activity:
    fields: dict[str, Any] = {
        "activity_id": "A1",
        "venue": venue_of_level("station"),
        "category": "culture",
        "title": "义诊",
        "starts_at": T0,
        "ends_at": T0 + HOUR,
        "capacity": 10,
        "at": T0 - timedelta(days=7),
    }
    return Activity.publish(**{**fields, **overrides})


def zone(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


# --- times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "starts_at",
    [
        datetime(9999, 12, 31, 20, tzinfo=zone(-14)),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=zone(14)),
        datetime(2100, 1, 1, tzinfo=zone(-12)),
        datetime(2024, 3, 1, 9, tzinfo=zone(-12, -1)),
        datetime(2024, 3, 1, 9, tzinfo=zone(14, 1)),
    ],
    ids=["year 9999 at -14:00", "1999", "2100", "west of -12:00", "east of +14:00"],
)
def test_an_activity_outside_the_years_or_offsets_of_the_ledger_is_refused(
    starts_at: datetime,
) -> None:
    with pytest.raises(TimeOutOfRangeError):
        publish(starts_at=starts_at, ends_at=starts_at + HOUR)


@pytest.mark.parametrize(
    "starts_at",
    [datetime(2000, 1, 1, tzinfo=zone(-12)), datetime(2099, 12, 31, tzinfo=zone(14))],
    ids=["earliest, westmost", "latest, eastmost"],
)
def test_an_activity_at_the_edges_of_the_years_and_offsets_is_published(
    starts_at: datetime,
) -> None:
    ends_at = starts_at.replace(hour=23, minute=59, second=59)

    published = publish(starts_at=starts_at, ends_at=ends_at, at=starts_at)

    assert (published.starts_at, published.ends_at) == (starts_at, ends_at)


def test_a_fact_dated_outside_the_years_of_the_ledger_is_refused() -> None:
    posted = order("posted")

    with pytest.raises(TimeOutOfRangeError):
        posted.expire(datetime(2100, 1, 1, tzinfo=zone(8)))

    assert posted.collect_events() == []


def test_a_time_without_an_offset_is_refused_by_the_time_rule() -> None:
    with pytest.raises(InvalidTimeError):
        publish(
            starts_at=T0.replace(tzinfo=None), ends_at=(T0 + HOUR).replace(tzinfo=None)
        )


# --- texts, numbers and lists ------------------------------------------------------


def test_names_and_titles_are_at_most_100_characters() -> None:
    assert publish(title="题" * 100).title == "题" * 100
    with pytest.raises(TextTooLongError):
        publish(title="题" * 101)
    with pytest.raises(TextTooLongError):
        Team.register(team_id="T1", name="队" * 101, level="corps", parent=None)


def test_ids_are_at_most_64_characters() -> None:
    with pytest.raises(TextTooLongError):
        Venue.register(venue_id="C" * 65, name="中心", level="centre", parent=None)
    with pytest.raises(TextTooLongError):
        publish(activity_id="A" * 65)


def test_a_venue_kind_is_at_most_500_characters() -> None:
    with pytest.raises(TextTooLongError):
        Venue.register(
            venue_id="C", name="中心", level="centre", parent=None, kind="k" * 501
        )


@pytest.mark.parametrize("capacity", [0, 10_001])
def test_a_capacity_outside_1_to_10000_is_refused(capacity: int) -> None:
    with pytest.raises(CapacityOutOfRangeError):
        publish(capacity=capacity)


def test_an_activity_for_10000_volunteers_is_published() -> None:
    assert publish(capacity=10_000).capacity == 10_000


def test_a_reason_is_at_most_500_characters() -> None:
    who, where = volunteer_at()
    session_in(SessionStatus.APPROVED, who, where)

    with pytest.raises(TextTooLongError):
        who.void_session("S1", "理" * 501, False, LATER)
    who.void_session("S1", "理" * 500, False, LATER)

    assert event_names(who) == ["SessionVoided"]


def test_make_up_hours_above_1440_minutes_are_refused_however_long_the_activity() -> (
    None
):
    who, where = volunteer(), activity(duration=48 * HOUR)

    with pytest.raises(InvalidMinutesError):
        who.record_makeup_hours("M1", where, 1_441, "forgot", where.ends_at)
    who.record_makeup_hours("M1", where, 1_440, "forgot", where.ends_at)

    assert event_names(who) == ["MakeupHoursRecorded"]


def test_an_order_is_accepted_by_at_most_200_volunteers() -> None:
    dispatched = order("dispatched")

    with pytest.raises(ListTooLongError):
        dispatched.accept(
            volunteer_ids=[f"V{n}" for n in range(201)], team_id=None, at=LATER
        )

    assert dispatched.collect_events() == []


def test_a_comment_on_a_rating_is_at_most_500_characters() -> None:
    fulfilled = order("fulfilled")

    with pytest.raises(TextTooLongError):
        fulfilled.rate("R1", 5, "好" * 501, LATER)


# --- the same rules when a line is parsed ------------------------------------------

AT = "2024-03-01T09:00:00+08:00"
ACTOR = {"id": "staff-1", "role": "venue_staff"}


def refusal(**fields: Any) -> str:
    """The code a ``reject_session`` line with ``fields`` is refused with."""
    document = {"type": "reject_session", "at": AT, "actor": ACTOR, "session_id": "S1"}
    with pytest.raises(ValidationError) as refused:
        parse_command(orjson.dumps({**document, "reason": "r", **fields}))
    return refusal_code(problem["type"] for problem in refused.value.errors())


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"at": 1_709_254_800}, "invalid_time"),
        ({"at": "1709254800"}, "invalid_time"),
        ({"at": True}, "invalid_time"),
        ({"at": "2024-03-01T09:00:00"}, "invalid_time"),
        ({"at": "0001-01-01T00:00:00+08:00"}, "time_out_of_range"),
        ({"at": "2024-03-01T09:00:00-14:00"}, "time_out_of_range"),
        ({"reason": "理" * 501}, "text_too_long"),
        ({"session_id": "S" * 65}, "text_too_long"),
        ({"actor": {"id": "a" * 65, "role": "r"}}, "text_too_long"),
        ({"session_id": 5}, "invalid_command"),
    ],
)
def test_a_line_outside_a_bound_is_refused_with_the_domain_code(
    fields: dict[str, Any], code: str
) -> None:
    assert refusal(**fields) == code
