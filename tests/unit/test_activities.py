"""Activities on the monthly calendar: publishing, sign-ups and ratings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.domain.activities import Activity, Category
from ledger.domain.errors import (
    ActivityClosedError,
    AlreadyRatedError,
    AlreadySignedUpError,
    CapacityReachedError,
    InvalidCommandError,
    InvalidScheduleError,
    NotSignedUpError,
    OutOfOrderError,
    StarsOutOfRangeError,
)
from tests.factories import T0
from tests.unit.domain_builders import (
    BEFORE,
    HOUR,
    MINUTE,
    activity,
    event_names,
    venue_of_level,
)

ENDS = T0 + 3 * HOUR  # the builder's activities run 09:00 to 12:00 CST


def publish(
    starts_at: datetime = T0,
    ends_at: datetime = ENDS,
    capacity: int = 10,
    category: str = "health",
) -> Activity:
    return Activity.publish(
        activity_id="A1",
        venue=venue_of_level("station"),
        category=category,
        title="义诊",
        starts_at=starts_at,
        ends_at=ends_at,
        capacity=capacity,
        at=starts_at - timedelta(days=14),
    )


# --- publishing -------------------------------------------------------------


def test_a_published_activity_keeps_its_venue_window_category_and_capacity() -> None:
    published = publish(capacity=30)

    assert event_names(published) == ["Published"]
    assert published.venue_id == "station-1"
    assert published.category is Category.HEALTH
    assert (published.starts_at, published.ends_at) == (T0, ENDS)
    assert published.capacity == 30
    assert published.scheduled_minutes == 180
    assert published.signed_up == set()


@pytest.mark.parametrize("ends_at", [T0, T0 - MINUTE], ids=["at start", "before start"])
def test_an_activity_that_does_not_end_after_it_starts_is_refused(
    ends_at: datetime,
) -> None:
    with pytest.raises(InvalidScheduleError):
        publish(ends_at=ends_at)


@pytest.mark.parametrize("capacity", [0, -1])
def test_an_activity_without_room_for_a_volunteer_is_refused(capacity: int) -> None:
    with pytest.raises(InvalidScheduleError):
        publish(capacity=capacity)


def test_an_activity_for_a_single_volunteer_is_published() -> None:
    assert publish(capacity=1).capacity == 1


@pytest.mark.parametrize("category", ["sports", "Culture", ""])
def test_an_activity_of_an_unknown_category_is_refused(category: str) -> None:
    with pytest.raises(InvalidCommandError):
        publish(category=category)


def test_an_activity_with_timestamps_without_an_offset_is_refused() -> None:
    naive = T0.replace(tzinfo=None)

    with pytest.raises(InvalidCommandError):
        publish(starts_at=naive, ends_at=naive + HOUR)


# --- sign-ups ---------------------------------------------------------------


def test_a_sign_up_takes_a_place() -> None:
    calendar_entry = activity()

    calendar_entry.sign_up("V1", BEFORE)

    assert event_names(calendar_entry) == ["SignedUp"]
    assert calendar_entry.signed_up == {"V1"}


def test_a_sign_up_while_the_activity_is_under_way_is_accepted() -> None:
    calendar_entry = activity()

    calendar_entry.sign_up("V1", ENDS - MINUTE)

    assert calendar_entry.signed_up == {"V1"}


def test_signing_up_twice_is_refused() -> None:
    calendar_entry = activity(signed_up=("V1",))

    with pytest.raises(AlreadySignedUpError):
        calendar_entry.sign_up("V1", BEFORE + HOUR)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.signed_up == {"V1"}


def test_a_sign_up_beyond_capacity_is_refused() -> None:
    calendar_entry = activity(capacity=2, signed_up=("V1", "V2"))

    with pytest.raises(CapacityReachedError):
        calendar_entry.sign_up("V3", BEFORE + HOUR)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.signed_up == {"V1", "V2"}


def test_a_cancelled_sign_up_gives_its_place_back() -> None:
    # Given a full activity
    calendar_entry = activity(capacity=1, signed_up=("V1",))

    # When V1 cancels, V2 can take the place
    calendar_entry.cancel_sign_up("V1", BEFORE + HOUR)
    calendar_entry.sign_up("V2", BEFORE + 2 * HOUR)

    assert event_names(calendar_entry) == ["SignUpCancelled", "SignedUp"]
    assert calendar_entry.signed_up == {"V2"}


@pytest.mark.parametrize("at", [ENDS, ENDS + HOUR], ids=["at the end", "after it"])
def test_a_sign_up_once_the_activity_has_ended_is_refused(at: datetime) -> None:
    calendar_entry = activity()

    with pytest.raises(ActivityClosedError):
        calendar_entry.sign_up("V1", at)

    assert calendar_entry.collect_events() == []


@pytest.mark.parametrize("at", [ENDS, ENDS + HOUR], ids=["at the end", "after it"])
def test_cancelling_a_sign_up_once_the_activity_has_ended_is_refused(
    at: datetime,
) -> None:
    calendar_entry = activity(signed_up=("V1",))

    with pytest.raises(ActivityClosedError):
        calendar_entry.cancel_sign_up("V1", at)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.signed_up == {"V1"}


def test_cancelling_a_sign_up_while_the_activity_is_under_way_is_accepted() -> None:
    calendar_entry = activity(signed_up=("V1",))

    calendar_entry.cancel_sign_up("V1", ENDS - MINUTE)

    assert event_names(calendar_entry) == ["SignUpCancelled"]
    assert calendar_entry.signed_up == set()


def test_cancelling_without_a_sign_up_is_refused() -> None:
    calendar_entry = activity(signed_up=("V2",))

    with pytest.raises(NotSignedUpError):
        calendar_entry.cancel_sign_up("V1", BEFORE + HOUR)

    assert calendar_entry.collect_events() == []


def test_cancelling_twice_is_refused() -> None:
    calendar_entry = activity(signed_up=("V1",))
    calendar_entry.cancel_sign_up("V1", BEFORE + HOUR)
    calendar_entry.collect_events()

    with pytest.raises(NotSignedUpError):
        calendar_entry.cancel_sign_up("V1", BEFORE + 2 * HOUR)

    assert calendar_entry.collect_events() == []


def test_a_volunteer_may_sign_up_again_after_cancelling() -> None:
    calendar_entry = activity(signed_up=("V1",))
    calendar_entry.cancel_sign_up("V1", BEFORE + HOUR)

    calendar_entry.sign_up("V1", BEFORE + 2 * HOUR)

    assert event_names(calendar_entry) == ["SignUpCancelled", "SignedUp"]
    assert calendar_entry.signed_up == {"V1"}


def test_a_cancellation_dated_before_the_sign_up_is_refused() -> None:
    calendar_entry = activity(signed_up=("V1",))

    with pytest.raises(OutOfOrderError):
        calendar_entry.cancel_sign_up("V1", BEFORE - MINUTE)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.signed_up == {"V1"}


def test_a_sign_up_dated_before_the_volunteers_cancellation_is_refused() -> None:
    calendar_entry = activity(signed_up=("V1",))
    calendar_entry.cancel_sign_up("V1", BEFORE + HOUR)
    calendar_entry.collect_events()

    with pytest.raises(OutOfOrderError):
        calendar_entry.sign_up("V1", BEFORE + 30 * MINUTE)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.signed_up == set()


def test_a_cancellation_at_the_same_moment_as_the_sign_up_is_in_order() -> None:
    calendar_entry = activity(signed_up=("V1",))

    calendar_entry.cancel_sign_up("V1", BEFORE)

    assert calendar_entry.signed_up == set()


def test_time_order_is_kept_per_volunteer_not_per_activity() -> None:
    calendar_entry = activity(signed_up=("V1",))

    calendar_entry.sign_up("V2", BEFORE - timedelta(days=1))

    assert calendar_entry.signed_up == {"V1", "V2"}


# --- ratings ----------------------------------------------------------------


def test_an_activity_is_rated_once_it_has_begun() -> None:
    calendar_entry = activity()

    calendar_entry.rate("R1", 5, "很好", T0)

    assert event_names(calendar_entry) == ["Rated"]


def test_rating_an_activity_before_it_starts_is_refused() -> None:
    calendar_entry = activity()

    with pytest.raises(ActivityClosedError):
        calendar_entry.rate("R1", 4, None, T0 - MINUTE)

    assert calendar_entry.collect_events() == []


def test_a_second_rating_by_the_same_rater_is_refused() -> None:
    calendar_entry = activity()
    calendar_entry.rate("R1", 5, None, ENDS)
    calendar_entry.collect_events()

    with pytest.raises(AlreadyRatedError):
        calendar_entry.rate("R1", 1, "changed my mind", ENDS + HOUR)

    assert calendar_entry.collect_events() == []


def test_different_raters_each_rate_an_activity_once() -> None:
    calendar_entry = activity()

    calendar_entry.rate("R1", 5, None, ENDS)
    calendar_entry.rate("R2", 2, None, ENDS)

    assert event_names(calendar_entry) == ["Rated", "Rated"]


@pytest.mark.parametrize("stars", [1, 5])
def test_an_activity_rating_at_either_end_of_the_scale_is_accepted(stars: int) -> None:
    calendar_entry = activity()

    calendar_entry.rate("R1", stars, None, ENDS)

    assert event_names(calendar_entry) == ["Rated"]


@pytest.mark.parametrize("stars", [0, 6, -1, True, False, 4.5, "5", None])
def test_an_activity_rating_outside_one_to_five_whole_stars_is_refused(
    stars: Any,
) -> None:
    calendar_entry = activity()

    with pytest.raises(StarsOutOfRangeError):
        calendar_entry.rate("R1", stars, None, ENDS)

    assert calendar_entry.collect_events() == []
    assert calendar_entry.raters == set()


def test_a_sign_up_dated_before_the_activity_was_published_is_refused() -> None:
    published = publish()
    published.collect_events()
    with pytest.raises(OutOfOrderError):
        published.sign_up("V1", T0 - timedelta(days=15))
    assert published.collect_events() == []
