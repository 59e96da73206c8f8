"""Crash safety of the projection engine on a real SQLite file and real
PostgreSQL: a catch-up or a rebuild running in a child process is killed
(SIGKILL) at seeded random instants, many times over; whatever it left
behind is a consistent prefix of the log, and running again in the test
process ends with every projection equal to a clean replay, nothing lost and
nothing counted twice."""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.context import SpawnContext

import pytest

from ledger.engine import BUILDING, LIVE, CatchUpReport, ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import Database
from tests.integration.projection_helpers import (
    PROJECTIONS,
    append_city,
    assert_every_projection_equals_a_fresh_replay,
    assert_every_version_is_a_consistent_prefix,
    assert_only_version_stored,
    building_progress,
    city_log,
    head_of,
    kill_during,
    kill_group_during,
    load_events,
    rebuild_in_a_fresh_process,
    version_rows,
)

SEED = 20_240_615
PAGE_SIZE = 25  # some 470 pages over the city: many instants to die at
KILLS = 3
NAMES = sorted(PROJECTIONS)


@pytest.fixture
def spawn() -> SpawnContext:
    return multiprocessing.get_context("spawn")


def pages_to_go(database: Database, state: str) -> int:
    """Pages a run needs from where the slowest version of ``state`` stands."""
    positions = [p for _, _, s, p in version_rows(database) if s == state] or [0]
    return max(1, (head_of(database) - min(positions)) // PAGE_SIZE + 1)


def somewhere_in(pages: int, rng: random.Random) -> int:
    """A seeded page within the first three quarters of a run's ``pages``, so
    that the kill always interrupts it."""
    return max(1, round(pages * rng.uniform(0.0, 0.75)))


def most_of_a_city_projected(database: Database) -> ProjectionEngine:
    """Given most of a city, projected: its engine."""
    append_city(database, city_log().head * 4 // 5)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.catch_up()
    return engine


def test_a_catch_up_killed_at_random_instants_resumes_exactly_once(
    database: Database, spawn: SpawnContext
) -> None:
    rng = random.Random(SEED)
    head = city_log().head
    # Given a city whose log keeps growing between crashes
    growth = [head * 2 // 5, head * 3 // 5, head * 4 // 5]
    append_city(database, growth[0])
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.ensure_live_versions()
    progress = [0]
    for kill in range(KILLS):
        # When a catch-up in a child process is killed at a random instant
        run = kill_during(
            spawn,
            database.url,
            "catch_up",
            page_size=PAGE_SIZE,
            after_pages=somewhere_in(pages_to_go(database, LIVE), rng),
            jitter=rng.uniform(0, 0.004),
        )
        # Then each projection is exactly a replay up to where it stands,
        # having moved forward from where it stood before
        assert_every_version_is_a_consistent_prefix(engine)
        positions = [p for _, _, _, p in version_rows(database)]
        assert min(positions) >= progress[-1], (run, positions)
        assert run.pages > 0 and not run.finished
        progress.append(min(positions))
        if kill + 1 < len(growth):
            append_city(database, growth[kill + 1])
    append_city(database)

    # When the catch-up runs again, in the test process
    engine.catch_up(page_size=PAGE_SIZE * 50)

    # Then every projection equals a clean replay of the whole log
    assert progress[-1] > 0
    assert_every_projection_equals_a_fresh_replay(engine)
    assert [(n, s) for n, _, s, _ in version_rows(database)] == [
        (n, LIVE) for n in NAMES
    ]


def test_a_rebuild_killed_at_random_instants_resumes_and_switches_over_once(
    database: Database, spawn: SpawnContext
) -> None:
    rng = random.Random(SEED + 1)
    engine = most_of_a_city_projected(database)
    live_before = {n: v for n, v, _, _ in version_rows(database)}
    for kill in range(KILLS):
        # When a rebuild in a child process is killed at a random instant: the
        # first time around its last page, so around the switch-over; then
        # (the log having grown meanwhile) twice in the middle of a rebuild
        total = pages_to_go(database, BUILDING)
        first = kill == 0
        run = kill_during(
            spawn,
            database.url,
            "rebuild",
            page_size=PAGE_SIZE,
            after_pages=total if first else somewhere_in(total, rng),
            jitter=rng.uniform(0, 0.02 if first else 0.004),
        )
        assert first or not run.finished
        # Then every projection still has exactly one live version, and every
        # version, live or half-built, is exactly a replay up to where it stands
        rows = version_rows(database)
        assert sorted(n for n, _, s, _ in rows if s == LIVE) == NAMES, (run, rows)
        assert_every_version_is_a_consistent_prefix(engine)
        if first:
            append_city(database)
    building = {n: (v, p) for n, v, s, p in version_rows(database) if s == BUILDING}
    assert sorted(building) == NAMES

    # When the rebuild runs again, in the test process
    report = engine.rebuild(page_size=PAGE_SIZE * 50)

    # Then it resumed any half-built version rather than starting over
    events = load_events(database)
    for name, (version, position) in building.items():
        topics = PROJECTIONS[name].topics
        after = sum(1 for e in events if e.position > position and e.topic in topics)
        assert report.events[name] == after, name
        assert (name, version, LIVE, head_of(database)) in version_rows(database)
    # And exactly one version per projection is left, live, newer than before,
    # with no rows of any other version left behind
    rows = version_rows(database)
    assert [(n, s) for n, _, s, _ in rows] == [(n, LIVE) for n in NAMES]
    for name, version, _, _ in rows:
        assert version > live_before[name]
        assert_only_version_stored(database, PROJECTIONS[name], version)
    # And every projection equals a clean replay of the whole log
    assert_every_projection_equals_a_fresh_replay(engine)


def test_a_rebuild_shared_out_among_processes_killed_at_random_instants_resumes(
    database: Database, spawn: SpawnContext
) -> None:
    rng = random.Random(SEED + 2)
    engine = most_of_a_city_projected(database)
    for _kill in range(KILLS):
        # When a rebuild shared out among three processes is killed, all of
        # them at once, at a random instant of its remaining work
        start = building_progress(database)
        remaining = len(NAMES) * head_of(database) - start
        run = kill_group_during(
            spawn,
            database,
            page_size=PAGE_SIZE,
            workers=3,
            after_progress=start + round(remaining * rng.uniform(0.05, 0.75)),
            jitter=rng.uniform(0, 0.004),
        )
        assert not run.finished
        # Then every projection still has exactly one live version, and every
        # version, live or half-built, is exactly a replay up to where it stands
        rows = version_rows(database)
        assert sorted(n for n, _, s, _ in rows if s == LIVE) == NAMES, (run, rows)
        assert_every_version_is_a_consistent_prefix(engine)

    # When the log grows and the rebuild runs again, shared out once more
    append_city(database)
    report = rebuild_in_a_fresh_process(database, workers=3, page_size=PAGE_SIZE * 50)
    assert isinstance(report, CatchUpReport) and report.processes == 3

    # Then a new version of each projection is live at the head, nothing else
    # is left, and each equals a clean replay
    rows = version_rows(database)
    assert sorted((n, s, p) for n, _, s, p in rows) == [
        (name, LIVE, head_of(database)) for name in NAMES
    ]
    assert_every_projection_equals_a_fresh_replay(engine)
