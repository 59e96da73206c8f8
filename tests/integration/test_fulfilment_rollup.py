"""The kept roll-up of ``order_fulfilment`` (projections/fulfilment_rollup.py)
on real SQLite and PostgreSQL: a venue's year of orders read from it equals
the events' own figures (the median wait included) and the figures summed
from the entries, field for field, for either kind or both; a read of a
past the roll-up no longer holds is summed from the entries; and a
rebuild, a retired version and a version projected before the roll-up
existed all stay right."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from ledger.engine import Entry, ProjectionEngine, RecordedEvent
from ledger.projections.fulfilment_rollup import kept_year, totals_table, unkept_table
from ledger.projections.order_fulfilment import MEASURES
from ledger.projections.registry import ORDER_FULFILMENT
from ledger.projections.venue_selection import VenueSelection
from ledger.reads.queries import LedgerReads, VenueQuery
from ledger.store.event_store import Database
from tests.integration.projection_helpers import (
    EVERY_TOPIC,
    assert_only_version_stored,
    centre_of,
    expected_fulfilment,
    expected_subtree,
    live_version,
    load_events,
    pick,
    project_city_in_pages,
    project_city_with_an_unkept_version,
    venues_of,
)

PAGE = 397  # small pages: the roll-up moved on by many
YEAR = ("2024-01", "2024-12")
KINDS = (None, "wish", "service")
ORACLE_FIELDS = (
    "posted",
    "withdrawn",
    "fulfilled",
    "open",
    "rate",
    "satisfaction",
    "median_minutes_to_fulfil",
)


@pytest.fixture
def projected(database: Database) -> tuple[ProjectionEngine, list[RecordedEvent]]:
    """The small synthetic city, projected in small pages."""
    return project_city_in_pages(database, PAGE)


def kept(database: Database, venue: str, position: int, kind: str | None) -> object:
    with database.reading() as conn:
        version = live_version(database, ORDER_FULFILMENT)
        return kept_year(conn, version, venue, "2024", kind, position)


def assert_year_reads_equal_the_events(
    reads: LedgerReads, events: list[RecordedEvent], position: int, venues: list[str]
) -> int:
    """Every venue's year and months, both kinds and each, as of
    ``position`` equal the oracle's figures and those summed from the
    entries; returns how many periods had fulfilled orders."""
    known = [e for e in events if e.position <= position]
    registered = venues_of(known)
    with_waits = 0
    for venue in (v for v in venues if v in registered):
        for subtree, kind in ((s, k) for s in (True, False) for k in KINDS):
            query = VenueQuery(venue, *YEAR, subtree=subtree, kind=kind, as_of=position)
            read = reads.venue_fulfilment(query)
            where = (venue, subtree, kind, position)
            expected = expected_fulfilment(
                known, venue, *YEAR, subtree=subtree, kind=kind
            )
            assert pick(read, ORACLE_FIELDS) == expected, where
            for month, figures in read.by_month.items():
                in_month = expected_fulfilment(
                    known, venue, month, month, subtree=subtree, kind=kind
                )
                assert pick(figures, ORACLE_FIELDS) == in_month, (*where, month)
                with_waits += figures.fulfilled > 0
            assert read == summed_from_the_entries(reads, query), where
    return with_waits


def summed_from_the_entries(reads: LedgerReads, query: VenueQuery) -> object:
    """The same read, its figures summed from the entries (no roll-up)."""
    read = reads.venue_fulfilment(query)
    with reads.database.reading() as conn:
        events = load_events(reads.database, topics={"Venue.Registered"})
        venues = expected_subtree(events, query.venue_id, query.subtree)
        selection = VenueSelection(
            live_version(reads.database, ORDER_FULFILMENT),
            tuple(sorted(venues)),
            *query.months,
            read.position,
            query.kind,
        )
        figures = ORDER_FULFILMENT.get_venue_figures(conn, selection)
    return read.model_copy(update={**vars(figures.total), "by_month": figures.by_month})


def test_a_venue_year_of_orders_equals_the_events_figures_now_and_in_the_past(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    head = events[-1].position
    venues = venues_of(events)
    centre = centre_of(events)
    rng = random.Random(17)
    sample = [centre, *rng.sample(sorted(venues), 5)]
    reads = LedgerReads(database)
    # At the head, the roll-up answers by itself
    for kind in KINDS:
        assert kept(database, centre, head, kind) is not None
    with_waits = assert_year_reads_equal_the_events(reads, events, head, sample)
    # As of earlier positions, where the city's orders changed since, the
    # entries answer (the roll-up holds the figures as they stand)
    earlier = sorted(rng.sample(range(PAGE, head, PAGE // 2), 4))
    assert all(kept(database, centre, position, None) is None for position in earlier)
    for position in earlier:
        assert_year_reads_equal_the_events(reads, events, position, sample)
    # (and the medians compared were many)
    assert with_waits >= 50


def test_the_kept_median_is_the_middle_wait_for_odd_and_even_counts(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    _, events = projected
    head = events[-1].position
    centre = centre_of(events)
    found = kept(database, centre, head, None)
    assert isinstance(found, dict)
    parities = set()
    for period, figures in found.items():
        month = (period, period) if len(period) == 7 else YEAR
        expected = expected_fulfilment(events, centre, *month)
        assert figures.median_minutes == expected["median_minutes_to_fulfil"], period
        assert figures.counts["fulfilled"] == expected["fulfilled"], period
        parities.add(figures.counts["fulfilled"] % 2)
    assert parities == {0, 1}


def test_a_rebuilt_version_keeps_the_same_rollup_and_the_retired_ones_go(
    database: Database, projected: tuple[ProjectionEngine, list[RecordedEvent]]
) -> None:
    engine, events = projected
    head = events[-1].position
    centre = centre_of(events)
    before = kept(database, centre, head, "wish")
    # When order_fulfilment is rebuilt, in pages of another size
    engine.rebuild([ORDER_FULFILMENT.name], page_size=PAGE * 3)
    # Then the new version keeps the same year, and holds the only rows
    assert kept(database, centre, head, "wish") == before
    assert_only_version_stored(
        database, ORDER_FULFILMENT, live_version(database, ORDER_FULFILMENT)
    )
    assert_year_reads_equal_the_events(LedgerReads(database), events, head, [centre])


def test_a_version_projected_before_the_rollup_is_read_from_its_entries(
    database: Database,
) -> None:
    # A ledger projected before the roll-up existed (as revision 0008 marks
    # its versions), then moving on
    engine, version, half = project_city_with_an_unkept_version(
        database, ORDER_FULFILMENT, unkept_table
    )
    events = load_events(database, topics=EVERY_TOPIC)
    centre = centre_of(events)
    # Then it keeps no roll-up, and its reads are still the events' figures
    assert kept(database, centre, events[-1].position, None) is None
    with database.reading() as conn:
        t = totals_table.c
        rows = conn.execute(
            sa.select(sa.func.count()).where(t.version == version)
        ).scalar()
    assert rows == 0
    reads = LedgerReads(database)
    for position in (half, events[-1].position):
        assert_year_reads_equal_the_events(reads, events, position, [centre])
    # And once rebuilt, the roll-up answers
    engine.rebuild([ORDER_FULFILMENT.name])
    assert kept(database, centre, events[-1].position, None) is not None


def test_a_page_written_latest_part_first_keeps_its_latest_position(
    database: Database,
) -> None:
    # As when the engine parks an event whose rows the database refuses: the
    # page is written again in halves, its later half first
    posted = tuple(int(name == "posted") for name in MEASURES)
    first, later = (
        Entry(position, ("V-A", "2024-03", "wish", "culture", order), posted)
        for position, order in ((10, "O1"), (20, "O2"))
    )
    with database.writing() as conn:
        ORDER_FULFILMENT.write_entries(conn, 7, [later])
        ORDER_FULFILMENT.write_entries(conn, 7, [first])
    # Then the roll-up knows it holds an entry after position 15
    with database.reading() as conn:
        assert kept_year(conn, 7, "V-A", "2024", None, 15) is None
        found = kept_year(conn, 7, "V-A", "2024", None, 20)
    assert found is not None
    assert found["2024"].counts["posted"] == found["2024-03"].counts["posted"] == 2
