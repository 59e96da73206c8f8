"""The kept roll-up of ``venue_activity`` (projections/activity_rollup.py)
on real SQLite and PostgreSQL: a venue's year read from it equals the
events' own figures as of any position, at the head and at every page's end
it answers from the roll-up itself, within a page it falls back to the
entries, and a rebuild, a retired version and a version projected before
the roll-up existed all stay right."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from ledger.bootstrap import open_database
from ledger.engine import ProjectionEngine, RecordedEvent
from ledger.projections.activity_rollup import (
    current_table,
    kept_year,
    presence_table,
    unkept_table,
)
from ledger.projections.registry import VENUE_ACTIVITY
from ledger.reads.queries import LedgerReads, VenueQuery
from ledger.store.event_store import STATISTICS_FLOOR, Database
from tests.integration.projection_helpers import (
    EVERY_TOPIC,
    assert_only_version_stored,
    centre_of,
    expected_venue_activity,
    live_version,
    load_events,
    pick,
    project_city_in_pages,
    project_city_with_an_unkept_version,
    venues_of,
)

PAGE = 397  # small pages: many kept totals, and positions within pages
YEAR = ("2024-01", "2024-12")
FIELDS = (
    "activities",
    "sessions",
    "volunteers",
    "verified_minutes",
    "makeup_minutes",
    "volunteer_minutes",
)


@pytest.fixture
def projected(database: Database) -> tuple[ProjectionEngine, list[RecordedEvent]]:
    """The small synthetic city, projected in small pages."""
    return project_city_in_pages(database, PAGE)


def kept(database: Database, venue: str, position: int) -> object:
    with database.reading() as conn:
        return kept_year(
            conn, live_version(database, VENUE_ACTIVITY), venue, "2024", position
        )


def assert_year_reads_equal_the_events(
    reads: LedgerReads, events: list[RecordedEvent], position: int, venues: list[str]
) -> None:
    known = [e for e in events if e.position <= position]
    registered = venues_of(known)
    for venue in venues:
        if venue not in registered:
            continue
        for subtree in (True, False):
            read = reads.venue_activity(
                VenueQuery(venue, *YEAR, subtree=subtree, as_of=position)
            )
            expected = expected_venue_activity(known, venue, *YEAR, subtree=subtree)
            assert pick(read, FIELDS) == expected, (venue, subtree, position)
            for month, figures in read.by_month.items():
                in_month = expected_venue_activity(
                    known, venue, month, month, subtree=subtree
                )
                assert pick(figures, FIELDS) == in_month, (venue, month, position)


def test_a_venue_year_read_equals_the_events_figures_as_of_page_ends_and_within(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    head = events[-1].position
    venues = venues_of(events)
    centre = next(v for v, parent in venues.items() if parent is None)
    rng = random.Random(13)
    sample = [centre, *rng.sample(sorted(venues), 6)]
    reads = LedgerReads(database)
    # At the head and at page ends, the roll-up answers by itself
    page_ends = sorted({head, *rng.sample(range(PAGE, head, PAGE), 4)})
    for position in page_ends:
        assert kept(database, centre, position) is not None, position
        assert_year_reads_equal_the_events(reads, events, position, sample)
    # Within a page that changed the city's figures, the entries answer
    within = [end - PAGE // 2 for end in page_ends]
    assert any(kept(database, centre, position) is None for position in within)
    for position in within:
        assert_year_reads_equal_the_events(reads, events, position, sample)


def test_the_kept_city_year_counts_each_volunteer_once_whatever_their_sessions(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    head = events[-1].position
    centre = centre_of(events)
    figures = kept(database, centre, head)
    assert isinstance(figures, dict)
    expected = expected_venue_activity(events, centre, *YEAR)
    activities, sessions, verified, makeup, volunteers = figures[("2024", "*")]
    assert (activities, sessions, verified, makeup, volunteers) == (
        expected["activities"],
        expected["sessions"],
        expected["verified_minutes"],
        expected["makeup_minutes"],
        expected["volunteers"],
    )
    # (a volunteer serves more than once in the city's year)
    assert expected["sessions"] > expected["volunteers"] > 0
    # And only volunteers still counted keep a presence row
    version = live_version(database, VENUE_ACTIVITY)
    with database.reading() as conn:
        p = presence_table.c
        gone = conn.execute(
            sa.select(sa.func.count()).where(p.version == version, p.sessions <= 0)
        ).scalar()
    assert gone == 0


def test_a_rebuilt_version_keeps_the_same_rollup_and_the_retired_ones_go(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    engine, events = projected
    head = events[-1].position
    centre = centre_of(events)
    before = kept(database, centre, head)
    # When venue_activity is rebuilt, in pages of another size
    engine.rebuild([VENUE_ACTIVITY.name], page_size=PAGE * 3)
    # Then the new version keeps the same year, and holds the only rows
    version = live_version(database, VENUE_ACTIVITY)
    assert kept(database, centre, head) == before
    assert_only_version_stored(database, VENUE_ACTIVITY, version)
    assert_year_reads_equal_the_events(LedgerReads(database), events, head, [centre])


def test_a_version_projected_before_the_rollup_is_read_from_its_entries(
    database: Database,
) -> None:
    # A ledger projected before the roll-up existed (as revision 0007 marks
    # its versions), then moving on
    engine, version, half = project_city_with_an_unkept_version(
        database, VENUE_ACTIVITY, unkept_table
    )
    events = load_events(database, topics=EVERY_TOPIC)
    centre = centre_of(events)
    # Then it keeps no roll-up, and its reads are still the events' figures
    assert kept(database, centre, events[-1].position) is None
    with database.reading() as conn:
        c = current_table.c
        rows = conn.execute(
            sa.select(sa.func.count()).where(c.version == version)
        ).scalar()
    assert rows == 0
    reads = LedgerReads(database)
    for position in (half, events[-1].position):
        assert_year_reads_equal_the_events(reads, events, position, [centre])
    # And once rebuilt, the roll-up answers
    engine.rebuild([VENUE_ACTIVITY.name])
    assert kept(database, centre, events[-1].position) is not None


@pytest.mark.postgres
def test_a_catch_up_keeps_postgresql_planning_the_rollup_lookups_for_its_rows(
    empty_postgres_url: str,
) -> None:
    # Given an empty PostgreSQL ledger, its projection tables never analysed
    database = open_database(empty_postgres_url)
    # When the city is projected in small pages, past STATISTICS_FLOOR events
    _, events = project_city_in_pages(database, PAGE)
    assert events[-1].position >= STATISTICS_FLOOR
    # Then the planner knows the roll-up's presence rows are many (a table
    # planned as empty is read whole for each page's chunk of volunteers)
    with database.reading() as conn:
        planned = conn.execute(
            sa.text(
                "SELECT reltuples FROM pg_class "
                "WHERE relname = 'proj_venue_activity_presence'"
            )
        ).scalar()
    assert planned is not None and planned > 1_000
    database.dispose()
