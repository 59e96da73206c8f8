"""The ``activity_calendar`` fold, in memory: a published activity is an
entry carrying its facts and capacity in the month it starts (China
Standard Time); each sign-up takes a place on its activity's stream and each
cancellation gives it back, naming no one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.domain.activities import Activity
from ledger.engine import Entry
from ledger.projections.registry import ACTIVITY_CALENDAR
from tests.factories import T0
from tests.unit.domain_builders import BEFORE, HOUR, recorded, venue_of_level

LATE_EVENING_UTC = datetime(2024, 3, 31, 17, 0, tzinfo=UTC)  # 1 April in China


def published(activity_id: str = "A1", starts_at: datetime = T0) -> Activity:
    return Activity.publish(
        activity_id=activity_id,
        venue=venue_of_level("station"),
        category="culture",
        title="书法课",
        starts_at=starts_at,
        ends_at=starts_at + 3 * HOUR,
        capacity=10,
        at=starts_at - timedelta(days=14),
    )


def test_a_published_activity_is_listed_in_the_month_it_starts() -> None:
    march, april = published("A1"), published("A2", starts_at=LATE_EVENING_UTC)

    events = recorded(march, april, topics=ACTIVITY_CALENDAR.topics)

    assert ACTIVITY_CALENDAR.fold(events).entries == [
        Entry(
            1,
            (
                str(march.id),
                "A1",
                "station-1",
                "2024-03",
                "culture",
                "书法课",
                T0.isoformat(),
                (T0 + 3 * HOUR).isoformat(),
            ),
            (1, 10, 0),
        ),
        Entry(
            2,
            (
                str(april.id),
                "A2",
                "station-1",
                "2024-04",
                "culture",
                "书法课",
                LATE_EVENING_UTC.isoformat(),
                (LATE_EVENING_UTC + 3 * HOUR).isoformat(),
            ),
            (1, 10, 0),
        ),
    ]


def test_sign_ups_take_places_and_cancellations_give_them_back() -> None:
    activity = published()
    activity.collect_events()
    activity.sign_up("V1", BEFORE)
    activity.sign_up("V2", BEFORE)
    activity.cancel_sign_up("V1", BEFORE + HOUR)

    events = recorded(activity, topics=ACTIVITY_CALENDAR.topics)

    nobody = (str(activity.id), None, None, None, None, None, None, None)
    assert ACTIVITY_CALENDAR.fold(events).entries == [
        Entry(1, nobody, (0, 0, 1)),
        Entry(2, nobody, (0, 0, 1)),
        Entry(3, nobody, (0, 0, -1)),
    ]
