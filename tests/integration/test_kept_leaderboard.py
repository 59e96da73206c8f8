"""The kept leaderboard of ``volunteer_hours`` on real SQLite and
PostgreSQL: read at the head, it comes from the kept totals and equals the
events' own ranking and star counts; as of a past position where hours
changed since, it is summed from the entries and equal to the events'
then; a rebuild keeps the same, and a version projected before it existed
is summed until rebuilt."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from ledger.engine import ProjectionEngine, RecordedEvent
from ledger.projections.registry import VOLUNTEER_HOURS
from ledger.projections.volunteer_hours import kept_leaderboard, unkept_table
from ledger.reads.answers import HoursLeaderboard
from ledger.reads.queries import LedgerReads
from ledger.store.event_store import Database
from tests.integration.projection_helpers import (
    EVERY_TOPIC,
    assert_only_version_stored,
    counted_sessions,
    live_version,
    load_events,
    project_city_in_pages,
    project_city_with_an_unkept_version,
)

PAGE = 397
STAR_HOURS = (100, 300, 600, 1000, 1500)


@pytest.fixture
def projected(database: Database) -> tuple[ProjectionEngine, list[RecordedEvent]]:
    """The small synthetic city, projected in small pages."""
    return project_city_in_pages(database, PAGE)


def is_kept(database: Database) -> bool:
    with database.reading() as conn:
        return (
            kept_leaderboard(conn, live_version(database, VOLUNTEER_HOURS), 1)
            is not None
        )


def expected_leaderboard(events: list[RecordedEvent], limit: int) -> dict[str, object]:
    """The ranking and star counts the events' approved sessions make."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for session in counted_sessions(events):
        mine = totals[session.volunteer_id]
        mine[0 if session.kind == "verified" else 1] += session.minutes
        mine[2] += 1
    serving = {v: t for v, t in totals.items() if t[0] + t[1] > 0}
    ranked = sorted(serving, key=lambda v: (-(serving[v][0] + serving[v][1]), v))
    stars = Counter(
        sum(t[0] + t[1] >= hours * 60 for hours in STAR_HOURS) for t in serving.values()
    )
    return {
        "leaders": [(v, *serving[v]) for v in ranked[:limit]],
        "volunteers_with_service": len(serving),
        "volunteers_by_stars": {str(level): stars[level] for level in range(6)},
    }


def as_compared(board: HoursLeaderboard) -> dict[str, object]:
    return {
        "leaders": [
            (
                leader.volunteer_id,
                leader.verified_minutes,
                leader.makeup_minutes,
                leader.sessions,
            )
            for leader in board.leaders
        ],
        "volunteers_with_service": board.volunteers_with_service,
        "volunteers_by_stars": board.volunteers_by_stars,
    }


def test_the_leaderboard_at_the_head_is_kept_and_equals_the_events_ranking(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    reads = LedgerReads(database)
    assert is_kept(database)
    for limit in (1, 10, 500):
        board = reads.hours_leaderboard(limit)
        assert as_compared(board) == expected_leaderboard(events, limit), limit
    # (the city's volunteers reach several star levels)
    levels = reads.hours_leaderboard(1).volunteers_by_stars
    assert sum(1 for count in levels.values() if count) >= 2


def test_the_leaderboard_as_of_past_positions_equals_the_events_then(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    reads = LedgerReads(database)
    # (summed where hours changed since; kept where none did)
    for position in (PAGE * 2, events[-1].position // 2, events[-1].position - 5):
        known = [e for e in events if e.position <= position]
        board = reads.hours_leaderboard(20, as_of=position)
        assert board.position == position
        assert as_compared(board) == expected_leaderboard(known, 20), position


def test_a_rebuilt_version_keeps_the_same_leaderboard_and_the_retired_go(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    engine, events = projected
    engine.rebuild([VOLUNTEER_HOURS.name], page_size=PAGE * 3)
    assert is_kept(database)
    assert_only_version_stored(
        database, VOLUNTEER_HOURS, live_version(database, VOLUNTEER_HOURS)
    )
    board = LedgerReads(database).hours_leaderboard(50)
    assert as_compared(board) == expected_leaderboard(events, 50)


def test_a_version_projected_before_the_kept_leaderboard_is_summed_until_rebuilt(
    database: Database,
) -> None:
    # A ledger projected before the kept leaderboard existed (as revision
    # 0008 marks its versions), then moving on
    engine, _, _ = project_city_with_an_unkept_version(
        database, VOLUNTEER_HOURS, unkept_table
    )
    events = load_events(database, topics=EVERY_TOPIC)
    # Then it keeps nothing, and its leaderboard is still the events'
    assert not is_kept(database)
    board = LedgerReads(database).hours_leaderboard(30)
    assert as_compared(board) == expected_leaderboard(events, 30)
    # And once rebuilt, it is kept
    engine.rebuild([VOLUNTEER_HOURS.name])
    assert is_kept(database)
    board = LedgerReads(database).hours_leaderboard(30)
    assert as_compared(board) == expected_leaderboard(events, 30)
