"""The ``venue_activity`` fold, in memory: a venue's activities and the
service at them follow from the events the domain triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.domain.activities import Activity
from ledger.engine import Entry
from ledger.projections.registry import VENUE_ACTIVITY
from tests.factories import T0
from tests.unit.domain_builders import (
    HOUR,
    LATER,
    MINUTE,
    recorded,
    venue_of_level,
    volunteer,
)


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


def test_a_published_activity_counts_in_the_month_it_starts() -> None:
    # 17:00 UTC on 31 March is 1 April in China.
    events = recorded(
        published("A1"),
        published("A2", starts_at=datetime(2024, 3, 31, 17, 0, tzinfo=UTC)),
        topics=VENUE_ACTIVITY.topics,
    )

    assert VENUE_ACTIVITY.fold(events).entries == [
        Entry(1, ("station-1", "2024-03", "culture", "", ""), (1, 0, 0)),
        Entry(2, ("station-1", "2024-04", "culture", "", ""), (1, 0, 0)),
    ]


def test_an_approved_session_counts_for_its_activity_venue_and_volunteer() -> None:
    held = published()
    held.sign_up("V1", T0 - timedelta(days=7))
    who = volunteer()
    who.check_in("S1", held, T0)
    who.check_out("S1", held, T0 + 90 * MINUTE)
    who.approve_session("S1", LATER)

    figures = VENUE_ACTIVITY.replay(recorded(held, who, topics=VENUE_ACTIVITY.topics))

    assert figures == {
        ("station-1", "2024-03", "culture", "", ""): (1, 0, 0),
        ("station-1", "2024-03", "culture", "verified", "V1"): (0, 1, 90),
    }


def test_a_voided_session_no_longer_counts() -> None:
    held = published()
    held.sign_up("V1", T0 - timedelta(days=7))
    who = volunteer()
    who.check_in("S1", held, T0)
    who.check_out("S1", held, T0 + 90 * MINUTE)
    who.approve_session("S1", LATER)
    who.void_session("S1", "entered twice", False, LATER + MINUTE)

    figures = VENUE_ACTIVITY.replay(recorded(held, who, topics=VENUE_ACTIVITY.topics))

    assert figures == {("station-1", "2024-03", "culture", "", ""): (1, 0, 0)}
