"""The projection engine on a real SQLite file and real PostgreSQL: catch-up
counts every event exactly once however it is paged, a rebuild switches over
without downtime, ``verify`` catches a tampered projection, and an event a
projection cannot process is parked as a dead letter while the projection
carries on."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application.ledger import Ledger
from ledger.engine import (
    BUILDING,
    LIVE,
    CatchUpReport,
    Difference,
    ProjectionEngine,
    SwitchOverHook,
    dead_letters_table,
    fingerprint,
    list_dead_letters,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.engine.tracking import changing_versions, insert_version
from ledger.engine.verify import DIFFERENCES_NAMED
from ledger.projections.registry import (
    ALL_PROJECTIONS,
    ORDER_FULFILMENT,
    VENUE_ACTIVITY,
    VOLUNTEER_HOURS,
)
from ledger.reads.answers import VenueActivity, VenueFulfilment, VolunteerHours
from ledger.reads.queries import LedgerReads, VenueQuery
from ledger.store.event_store import Database, head_position
from tests.factories import T0, record_all, submission
from tests.integration.projection_helpers import (
    DAY,
    PROJECTIONS,
    append_city,
    append_raw_event,
    assert_chain_intact,
    assert_every_projection_equals_a_fresh_replay,
    assert_every_version_is_a_consistent_prefix,
    assert_finishes,
    assert_only_version_stored,
    city_log,
    expected_volunteer_hours,
    live_contributions,
    live_figures,
    load_events,
    pick,
    rebuild_in_a_fresh_process,
    replay,
    run_cli,
    run_shared_out_rebuild,
    served_city,
    version_rows,
)

NAMES = sorted(PROJECTIONS)
LEDGER = Path(sys.executable).parent / "ledger"


def new_engine(
    database: Database, *, before_switch_over: SwitchOverHook | None = None
) -> ProjectionEngine:
    """An engine as a fresh process would have it: no warm folds."""
    return ProjectionEngine(
        database, ALL_PROJECTIONS, before_switch_over=before_switch_over
    )


def sessions_waiting_on_a_lock(database: Database) -> int:
    """How many PostgreSQL sessions on the test database wait for a lock."""
    with database.reading() as conn:
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar()
    return int(waiting or 0)


def until_sessions_wait_on_a_lock(database: Database, sessions: int) -> None:
    """Return once ``sessions`` sessions wait for a lock; on SQLite, which
    cannot tell, after half a second (ample to read a small table)."""
    if database.is_sqlite:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 30
    while sessions_waiting_on_a_lock(database) < sessions:
        assert time.monotonic() < deadline, "nobody waited on the lock"
        time.sleep(0.01)


def events_per_projection(database: Database) -> dict[str, int]:
    """How many events of its topics each projection has to process."""
    topics = Counter(event.topic for event in load_events(database))
    return {
        name: sum(topics[topic] for topic in projection.topics)
        for name, projection in PROJECTIONS.items()
    }


def total_events(reports: list[CatchUpReport]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for report in reports:
        totals.update(report.events)
    return {name: totals[name] for name in NAMES}


# --- exactly once ------------------------------------------------------------


def test_catching_up_in_many_small_runs_gives_exactly_the_figures_of_one_run(
    database: Database,
) -> None:
    # Given a city whose log grows between catch-ups, each paged differently,
    # some by an engine that keeps its folds warm and some by a fresh one
    engine = new_engine(database)
    runs = [
        (2_500, engine, 250),
        (2_530, engine, 1),
        (7_000, new_engine(database), 97),
        (7_000, engine, 13),  # nothing new: a run that finds nothing to do
        (None, new_engine(database), 1_000),
    ]
    reports = []
    for upto, runner, page_size in runs:
        head = append_city(database, upto)
        reports.append(runner.catch_up(page_size=page_size))
        # Then after each run every projection stands at the head, exactly
        # as a replay of the events so far
        assert {position for _, _, _, position in version_rows(database)} == {head}
        assert_every_version_is_a_consistent_prefix(runner)
        assert reports[-1].position == head

    # And across the runs each event was processed once, by each projection
    assert total_events(reports) == events_per_projection(database)
    assert sum(reports[3].events.values()) == 0
    assert_every_projection_equals_a_fresh_replay(engine)
    in_many_runs = live_figures(engine)
    content_in_many_runs = live_contributions(engine)

    # When the same log is projected again in one run (a rebuild, one page)
    new_engine(database).rebuild()

    # Then the figures, and every event's contributions with their
    # fingerprints, are the same as in many runs
    in_one_run = live_figures(engine)
    assert in_one_run == in_many_runs
    content_in_one_run = live_contributions(engine)
    assert content_in_one_run == content_in_many_runs
    # And the same as a replay in memory
    events = load_events(database)
    head = city_log().head
    for name, projection in PROJECTIONS.items():
        assert in_one_run[name] == replay(projection, events, head)
    assert {r.name: r.live_fingerprint for r in engine.verify()} == {
        name: fingerprint(content) for name, content in content_in_one_run.items()
    }


def test_two_runners_catching_up_at_once_apply_each_page_once(
    database: Database,
) -> None:
    # Given a city and two runners (each with its own connection pool)
    append_city(database)
    runners = [new_engine(Database(database.url)) for _ in range(2)]
    for runner in runners:
        runner.ensure_live_versions()
    reports: list[CatchUpReport] = []
    failures: list[BaseException] = []

    def run(runner: ProjectionEngine) -> None:
        try:
            reports.append(runner.catch_up(page_size=150))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    # When both catch up at the same time, in small pages
    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for runner in runners:
        runner.database.dispose()

    # Then neither failed, together they processed every event once,
    # and the projections equal a fresh replay
    assert failures == []
    assert total_events(reports) == events_per_projection(database)
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_two_runners_starting_at_once_on_a_fresh_ledger_both_succeed(
    database: Database,
) -> None:
    """Two `ledger project` processes started together on a ledger never
    projected before. On PostgreSQL both read "no live versions" and both
    insert a live version of every projection (SQLite serialises the two
    writers)."""
    # Given a log nobody has projected, and two runners
    append_city(database, 500)
    runners = [new_engine(Database(database.url)) for _ in range(2)]
    failures: list[BaseException] = []

    def run(runner: ProjectionEngine) -> None:
        try:
            runner.catch_up()
        except BaseException as error:
            failures.append(error)

    # When both start while another transaction holds the versions table, so
    # that both read it (no live versions) before either can change it
    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    with database.writing() as conn:
        if not database.is_sqlite:
            conn.exec_driver_sql(
                "LOCK TABLE projection_versions IN SHARE ROW EXCLUSIVE MODE"
            )
        for thread in threads:
            thread.start()
        until_sessions_wait_on_a_lock(database, 2)
    for thread in threads:
        thread.join(timeout=60)
    for runner in runners:
        runner.database.dispose()

    # Then neither runner failed, each projection has one live version, and
    # the projections equal a fresh replay
    assert failures == []
    assert [(name, state) for name, _, state, _ in version_rows(database)] == [
        (name, LIVE) for name in NAMES
    ]
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_projection_ahead_of_the_others_is_not_moved_back_by_a_catch_up(
    database: Database,
) -> None:
    """`ledger rebuild volunteer_hours` on a ledger whose other projections lag
    by more than a page, then `ledger project`: the engine pages from the
    slowest projection and sets *every* locked projection's position to the
    page's end, so the one ahead is moved back and processes its events again.
    """
    # Given a city where only volunteer_hours has been projected (rebuilt)
    append_city(database)
    new_engine(database).rebuild([VOLUNTEER_HOURS.name])
    positions = {name: position for name, _, _, position in version_rows(database)}
    head = city_log().head
    assert positions == {**dict.fromkeys(NAMES, 0), VOLUNTEER_HOURS.name: head}

    # When every projection catches up, in pages smaller than the gap
    report = new_engine(database).catch_up(page_size=1_000)

    # Then volunteer_hours had nothing to do, and counted nothing twice
    assert report.events[VOLUNTEER_HOURS.name] == 0
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


# --- rebuilding without downtime ----------------------------------------------


def test_a_rebuild_keeps_answering_from_the_live_version_until_it_switches_over(
    database: Database,
) -> None:
    # Given two thirds of a city, projected
    head = append_city(database, city_log().head * 2 // 3)
    engine = new_engine(database)
    engine.catch_up()
    reads = LedgerReads(database)
    old_versions = {name: version for name, version, _, _ in version_rows(database)}
    figures = live_figures(engine)
    volunteers = sorted({key[0] for key in figures["volunteer_hours"]})
    sample = volunteers[:: max(1, len(volunteers) // 6)]
    [centre] = [key[0] for key in figures["venue_tree"] if key[2] == "centre"]

    def answers() -> list[VolunteerHours | VenueActivity | VenueFulfilment]:
        return [
            *(reads.volunteer_hours(v) for v in sample),
            reads.venue_activity(VenueQuery(centre)),
            reads.venue_fulfilment(VenueQuery(centre)),
        ]

    before, figures_before = answers(), live_figures(engine)
    assert {a.position for a in before} == {head}
    seen: list[int] = []

    def mid_rebuild(position: int) -> None:
        if seen:
            return
        seen.append(position)
        # Then, mid-rebuild, each projection has its live version and a
        # half-built one beside it
        assert {(name, state) for name, _, state, _ in version_rows(database)} == {
            (name, state) for name in NAMES for state in (LIVE, BUILDING)
        }
        # And reads answer from the live version, with the same figures
        assert answers() == before
        assert live_figures(engine) == figures_before
        # And events appended now leave those answers alone
        append_city(database)
        assert answers() == before
        assert all(result.ok for result in engine.verify())

    # When everything is rebuilt, page by page
    engine.rebuild(page_size=1_500, on_page=mid_rebuild)
    assert seen and seen[0] < head

    # Then exactly one version per projection is left: the new one, live at
    # the head, including the events appended during the rebuild
    full = city_log().head
    assert version_rows(database) == [
        (name, old_versions[name] + 1, LIVE, full) for name in NAMES
    ]
    # And the retired version's rows are gone from every table
    for name, projection in PROJECTIONS.items():
        assert_only_version_stored(database, projection, old_versions[name] + 1)
    with database.reading() as conn:
        parked = conn.execute(sa.select(dead_letters_table.c.version)).all()
    assert parked == []  # (none of any version, old or new)
    assert_every_projection_equals_a_fresh_replay(engine)
    # And reads now answer at the head, with the events appended meanwhile
    after = answers()
    assert {a.position for a in after} == {full}
    events = load_events(database)
    for answer in after[: len(sample)]:
        assert isinstance(answer, VolunteerHours)
        expected = expected_volunteer_hours(events, answer.volunteer_id)
        assert pick(answer, expected) == expected


def test_overlapping_rebuilds_of_one_projection_leave_it_live(
    database: Database,
) -> None:
    """Two `ledger rebuild volunteer_hours` runs that overlap: the second
    resumes the first's building version and switches it over; the first,
    finding no building version left, still runs its switch-over, which
    retires the (new) live version without promoting anything, and then
    deletes it. The projection is left with no live version at all."""
    # Given a projected city
    append_city(database)
    new_engine(database).catch_up()
    first, second = new_engine(database), new_engine(database)
    overlapped: list[int] = []

    def second_rebuild_runs_meanwhile(position: int) -> None:
        if not overlapped:
            overlapped.append(position)
            second.rebuild([VOLUNTEER_HOURS.name])

    # When a second rebuild runs while the first is still building
    first.rebuild(
        [VOLUNTEER_HOURS.name], page_size=2_000, on_page=second_rebuild_runs_meanwhile
    )

    # Then volunteer_hours still has exactly one live version, at the head
    assert overlapped
    states = [(n, s, p) for n, _, s, p in version_rows(database)]
    assert (VOLUNTEER_HOURS.name, LIVE, city_log().head) in states
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_rebuild_shared_out_among_processes_gives_the_figures_of_a_fresh_replay(
    database: Database,
) -> None:
    # Given a projected city
    append_city(database)
    new_engine(database).catch_up()
    before = {n: v for n, v, s, _ in version_rows(database) if s == LIVE}

    # When every projection is rebuilt by three processes
    report = rebuild_in_a_fresh_process(database, workers=3)
    assert isinstance(report, CatchUpReport), report

    # Then three shared the work, each projection processed every event of
    # its topics once, a new version of each is live at the head, and
    # nothing else is left
    assert report.processes == 3
    assert report.events == events_per_projection(database)
    rows = version_rows(database)
    assert sorted((n, s, p) for n, _, s, p in rows) == [
        (name, LIVE, city_log().head) for name in NAMES
    ]
    assert all(v > before[n] for n, v, _, _ in rows)
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_the_cli_rebuilds_in_as_many_processes_as_it_is_told(
    database: Database,
) -> None:
    # Given a projected city
    append_city(database)
    new_engine(database).catch_up()

    # When `ledger rebuild --workers 2` runs
    finished = subprocess.run(
        [LEDGER, "--db", database.url, "rebuild", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "LANGUAGE": "en"},  # its lines read in English
    )

    # Then it reports two processes, every event of each projection's topics
    # processed, and each projection equals a replay
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines()[-1] == "processes=2"
    for name, events in events_per_projection(database).items():
        assert f"{name}: {events} events" in finished.stdout
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_rebuilds_and_a_follower_running_at_once_all_finish(
    database: Database,
) -> None:
    """A follower commits pages of the live versions while rebuilds commit
    the building ones and switch over: neither may wait on the other's rows
    (on PostgreSQL, locking them in different orders deadlocked)."""
    # Given a city whose events keep arriving while `ledger project --follow`
    # runs
    log = city_log()
    append_city(database, log.head // 4)
    follower = new_engine(database)
    follower.catch_up()
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_appending() -> None:
        try:
            for upto in range(log.head // 4, log.head + 100, 100):
                append_city(database, upto)
                time.sleep(0.002)
        except BaseException as error:
            failures.append(error)

    def follow() -> None:
        try:
            follower.follow(poll_seconds=0.0, should_stop=stop.is_set)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=keep_appending)]
    threads.append(threading.Thread(target=follow))
    for thread in threads:
        thread.start()
    try:
        # When `ledger rebuild` (a process of its own, sharing the work out
        # among three) runs again and again, until every event has arrived
        spawn = multiprocessing.get_context("spawn")
        rebuilds = 0
        while threads[0].is_alive() or rebuilds < 3:
            rebuild = spawn.Process(
                target=run_shared_out_rebuild, args=(database.url, 200, 3)
            )
            rebuild.start()
            assert_finishes(rebuild)
            rebuilds += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    # Then neither the writer nor the follower failed, and every projection
    # equals a replay
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    new_engine(database).catch_up()
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_switch_over_never_makes_live_a_version_behind_the_one_it_retires(
    ledger: Ledger, database: Database
) -> None:
    """On PostgreSQL a follower moved the live version past the head the
    switch-over had read; the switch-over then made live a version standing
    behind it, and reads went back in time."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: nothing commits during a switch-over")
    # Given a served city, projected, whose volunteer_hours is being rebuilt
    record_all(ledger, served_city())
    new_engine(database).catch_up()
    follower = new_engine(database)
    followed = threading.Event()

    def approve_and_follow() -> None:
        record_all(ledger, [submission("approve_session", T0 + DAY, session_id="S-V2")])
        follower.catch_up()
        followed.set()

    thread = threading.Thread(target=approve_and_follow)

    def once_the_follower_has_tried(_conn: sa.Connection) -> None:
        # When, inside the switch-over, V2's session is approved and the
        # follower catches up (it commits, or waits for the switch-over)
        thread.start()
        deadline = time.monotonic() + 30
        while not (followed.is_set() or sessions_waiting_on_a_lock(database)):
            assert time.monotonic() < deadline, "the follower neither ran nor waited"
            time.sleep(0.01)

    rebuild = new_engine(database, before_switch_over=once_the_follower_has_tried)
    rebuild.rebuild([VOLUNTEER_HOURS.name])
    thread.join(60)

    # Then the approved session counts: the live version is not behind it
    assert followed.is_set()
    assert LedgerReads(database).volunteer_hours("V2").total_minutes == 150
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_switch_over_leaves_alone_a_version_another_rebuild_inserted_meanwhile(
    ledger: Ledger, database: Database
) -> None:
    """A switch-over made live every building version it found as it
    switched: one another rebuild had just inserted, at position 0, too."""
    if database.is_sqlite:
        pytest.skip("SQLite has one writer: no version is inserted meanwhile")
    # Given a served city, projected, and a rebuild of two projections
    record_all(ledger, served_city())
    new_engine(database).catch_up()
    before = LedgerReads(database).volunteer_hours("V1")
    inserted = threading.Event()

    def start_another_rebuild() -> None:
        # (as `ledger rebuild volunteer_hours` starts: its version, at 0)
        with changing_versions(database) as conn:
            insert_version(conn, VOLUNTEER_HOURS.name, BUILDING)
        inserted.set()

    def as_another_rebuild_starts(_conn: sa.Connection) -> None:
        # When another rebuild of volunteer_hours starts during the switch-over
        thread = threading.Thread(target=start_another_rebuild)
        thread.start()
        thread.join(30)

    rebuild = new_engine(database, before_switch_over=as_another_rebuild_starts)
    rebuild.rebuild([VENUE_ACTIVITY.name, VOLUNTEER_HOURS.name])

    # Then the version the rebuild caught up is live, not the new one
    assert inserted.is_set()
    after = LedgerReads(database).volunteer_hours("V1")
    assert pick(after, ("total_minutes", "position")) == pick(
        before, ("total_minutes", "position")
    )
    states = {
        (name, state): position
        for name, _, state, position in version_rows(database)
        if name == VOLUNTEER_HOURS.name
    }
    assert states == {
        (VOLUNTEER_HOURS.name, LIVE): before.position,
        (VOLUNTEER_HOURS.name, BUILDING): 0,
    }
    # And that other rebuild, resumed, switches its own version over
    new_engine(database).rebuild([VOLUNTEER_HOURS.name])
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_rebuild_beside_other_threads_stays_in_its_own_process(
    database: Database,
) -> None:
    """Forking a process that runs other threads could copy a lock one of
    them holds into the workers."""
    # Given a projected city, and a thread at work in this process
    append_city(database)
    new_engine(database).catch_up()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        # When a rebuild is asked for three processes
        report = new_engine(database).rebuild(workers=3)
    finally:
        stop.set()
        thread.join()

    # Then it ran in this one, and still equals a replay
    assert report.processes == 1
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


def test_a_rebuild_whose_worker_dies_says_so_and_resumes_when_run_again(
    database: Database,
) -> None:
    # Given a projected city
    append_city(database)
    new_engine(database).catch_up()

    # When a rebuild in processes loses the worker rebuilding volunteer_hours
    failure = rebuild_in_a_fresh_process(database, workers=3, with_a_dying_worker=True)

    # Then it says so, naming the share
    assert isinstance(failure, str), failure
    assert "rebuild worker failed" in failure and "volunteer_hours" in failure
    # And nothing was switched over: the live versions still answer, and
    # the building ones are left to resume
    states = {(n, s) for n, _, s, _ in version_rows(database)}
    assert {(name, LIVE) for name in NAMES} <= states
    assert (VOLUNTEER_HOURS.name, BUILDING) in states
    # And a rebuild run again finishes them, equal to a replay
    report = rebuild_in_a_fresh_process(database, workers=3)
    assert isinstance(report, CatchUpReport) and report.processes == 3
    assert sorted((n, s) for n, _, s, _ in version_rows(database)) == [
        (name, LIVE) for name in NAMES
    ]
    assert_every_projection_equals_a_fresh_replay(new_engine(database))


# --- verifying ---------------------------------------------------------------


def test_verify_names_the_key_of_an_entry_changed_behind_its_back(
    ledger: Ledger, database: Database
) -> None:
    # Given a small served city, projected and verified
    record_all(ledger, served_city())
    engine = new_engine(database)
    engine.catch_up()
    assert all(result.ok for result in engine.verify())
    entries = VOLUNTEER_HOURS.entries
    with database.reading() as conn:
        row = conn.execute(
            sa.select(entries).where(entries.c.volunteer_id == "V1")
        ).one()
    key = tuple(row._mapping[c] for c in VOLUNTEER_HOURS.key_columns)
    assert (row.minutes, row.sessions) == (120, 1)

    # When one entry's minutes are changed directly in SQL
    with database.writing() as conn:
        conn.execute(
            entries.update()
            .where(entries.c.version == row.version, entries.c.position == row.position)
            .values(minutes=entries.c.minutes + 7)
        )

    # Then verify reports exactly that key, live against replayed
    results = {result.name: result for result in engine.verify()}
    hours = results.pop(VOLUNTEER_HOURS.name)
    assert not hours.ok
    assert hours.differences == (Difference(row.position, key, (127, 1), (120, 1)),)
    assert hours.live_fingerprint != hours.replay_fingerprint
    assert all(result.ok for result in results.values())


def test_verify_names_the_key_of_an_entry_deleted_behind_its_back(
    ledger: Ledger, database: Database
) -> None:
    # Given a small served city, projected
    record_all(ledger, served_city())
    engine = new_engine(database)
    engine.catch_up()
    entries = ORDER_FULFILMENT.entries
    with database.reading() as conn:
        posted = conn.execute(
            sa.select(entries).where(entries.c.order_id == "O1", entries.c.posted == 1)
        ).one()
    key = tuple(posted._mapping[c] for c in ORDER_FULFILMENT.key_columns)

    # When the entry that counted O1 as posted is deleted
    with database.writing() as conn:
        conn.execute(
            entries.delete().where(
                entries.c.version == posted.version,
                entries.c.position == posted.position,
            )
        )

    # Then verify reports that event's contribution to that key: the order
    # posted in the replay, missing from the live version
    results = {result.name: result for result in engine.verify()}
    fulfilment = results.pop(ORDER_FULFILMENT.name)
    assert not fulfilment.ok
    [difference] = fulfilment.differences
    assert (difference.position, difference.key) == (posted.position, key)
    assert difference.live is None
    assert difference.replayed is not None
    measures = ORDER_FULFILMENT.measure_columns
    assert dict(zip(measures, difference.replayed, strict=True))["posted"] == 1
    assert all(result.ok for result in results.values())

    # And `ledger verify` exits non-zero, naming the projection, the event
    # and the key
    outcome = run_cli(database, "verify")
    assert outcome.exit_code == 1, outcome.output
    assert "order_fulfilment: MISMATCH" in outcome.stdout
    [line] = [line for line in outcome.stdout.splitlines() if "key [" in line]
    assert f"at position {posted.position} " in line
    assert all(str(part) in line for part in key)
    assert "volunteer_hours: ok" in outcome.stdout


def test_verify_names_both_events_when_an_entry_is_moved_to_another_position(
    ledger: Ledger, database: Database
) -> None:
    """Moving a contribution leaves every current figure as it was, but makes
    as-of reads and explanations wrong: verify must see it."""
    # Given a small served city, projected, with V2's session approved last
    record_all(ledger, served_city())
    record_all(ledger, [submission("approve_session", T0 + DAY, session_id="S-V2")])
    engine = new_engine(database)
    engine.catch_up()
    entries = VOLUNTEER_HOURS.entries
    with database.reading() as conn:
        row = conn.execute(
            sa.select(entries).where(entries.c.volunteer_id == "V1")
        ).one()
        head = head_position(conn)
    key = tuple(row._mapping[c] for c in VOLUNTEER_HOURS.key_columns)

    # When V1's approval is moved to the last event's position
    with database.writing() as conn:
        conn.execute(
            entries.update()
            .where(entries.c.version == row.version, entries.c.position == row.position)
            .values(position=head)
        )

    # Then verify names the contribution missing at its event and the one
    # that appeared at the other, though the figures now are the same
    assert live_figures(engine)[VOLUNTEER_HOURS.name] == replay(
        VOLUNTEER_HOURS, load_events(database), head
    )
    hours = {result.name: result for result in engine.verify()}[VOLUNTEER_HOURS.name]
    assert not hours.ok
    assert hours.differences == (
        Difference(row.position, key, None, (120, 1)),
        Difference(head, key, (120, 1), None),
    )


def test_verify_walking_a_city_range_by_range_finds_entries_changed_mid_and_last(
    database: Database,
) -> None:
    # Given a city projected, verified a few positions at a time: many ranges
    head = append_city(database)
    engine = new_engine(database)
    engine.catch_up()
    assert all(result.ok for result in engine.verify(range_size=7))
    entries = VOLUNTEER_HOURS.entries
    with database.reading() as conn:
        rows = conn.execute(sa.select(entries).order_by(entries.c.position)).all()
    middle, last = rows[len(rows) // 2], rows[-1]
    assert 7 < middle.position < last.position - 7

    # When the minutes of an entry in the middle and of the last one change
    def key_of(row: sa.Row[Any]) -> tuple[Any, ...]:
        return tuple(row._mapping[c] for c in VOLUNTEER_HOURS.key_columns)

    with database.writing() as conn:
        for row in (middle, last):
            conn.execute(
                entries.update()
                .where(
                    entries.c.version == row.version,
                    entries.c.position == row.position,
                    *(
                        entries.c[c] == part
                        for c, part in zip(
                            VOLUNTEER_HOURS.key_columns, key_of(row), strict=True
                        )
                    ),
                )
                .values(minutes=entries.c.minutes + 1)
            )

    # Then verify names both, live against replayed, in ledger order
    in_ranges = engine.verify(range_size=7)
    results = {result.name: result for result in in_ranges}
    hours = results.pop(VOLUNTEER_HOURS.name)
    assert not hours.ok
    assert hours.differences == tuple(
        Difference(
            row.position,
            key_of(row),
            (row.minutes + 1, row.sessions),
            (row.minutes, row.sessions),
        )
        for row in (middle, last)
    )
    assert hours.difference_count == 2
    assert all(result.ok for result in results.values())
    # And the results, fingerprints included, are those of one range
    assert engine.verify(range_size=head) == in_ranges


def test_verify_names_the_first_differences_and_counts_them_all(
    database: Database,
) -> None:
    # Given a city projected
    append_city(database)
    engine = new_engine(database)
    engine.catch_up()

    # When every volunteer_hours entry is changed
    entries = VOLUNTEER_HOURS.entries
    with database.writing() as conn:
        changed = conn.execute(
            entries.update().values(minutes=entries.c.minutes + 1)
        ).rowcount
    assert changed > DIFFERENCES_NAMED

    # Then verify counts them all and names the first ones, in ledger order
    hours = engine.verify([VOLUNTEER_HOURS.name], range_size=50)[0]
    assert hours.difference_count == changed
    assert len(hours.differences) == DIFFERENCES_NAMED
    positions = [difference.position for difference in hours.differences]
    assert positions == sorted(positions)
    # And `ledger verify` shows ten, then how many more
    outcome = run_cli(database, "verify")
    assert outcome.exit_code == 1
    assert f"… {changed - 10} more differences" in outcome.stdout


def test_verify_fails_on_an_event_the_fold_refuses_that_is_not_parked(
    ledger: Ledger, database: Database
) -> None:
    # Given a poison event between good ones, parked by the projections
    poison = record_a_poison_event_between(ledger, database)
    engine = new_engine(database)
    engine.catch_up()

    # When its dead letters are deleted behind the ledger's back
    with database.writing() as conn:
        conn.execute(dead_letters_table.delete())

    # Then verify fails for each projection that refuses it, naming it
    results = {result.name: result for result in engine.verify()}
    for name in (VOLUNTEER_HOURS.name, "venue_activity"):
        assert not results[name].ok
        assert results[name].refused_unparked == (poison,)
        assert (results[name].dead_letters, results[name].differences) == (0, ())
    assert results[ORDER_FULFILMENT.name].ok
    outcome = run_cli(database, "verify")
    assert outcome.exit_code == 1
    assert f"the event at position {poison} is refused, not parked" in outcome.stdout


def test_verify_reports_a_projection_whose_live_version_is_gone(
    ledger: Ledger, database: Database
) -> None:
    # Given a small served city, projected
    record_all(ledger, served_city())
    engine = new_engine(database)
    engine.catch_up()

    # When volunteer_hours' live version disappears (here: deleted in SQL;
    # the overlapping-rebuild bug above leaves the same state)
    t = projection_versions_table.c
    with database.writing() as conn:
        conn.execute(
            projection_versions_table.delete().where(
                t.name == VOLUNTEER_HOURS.name, t.state == LIVE
            )
        )

    # Then verify does not pass it over in silence
    results = {result.name: result for result in engine.verify()}
    assert VOLUNTEER_HOURS.name in results
    assert not results[VOLUNTEER_HOURS.name].ok


# --- dead letters -----------------------------------------------------------


def record_a_poison_event_between(ledger: Ledger, database: Database) -> int:
    """A served city; then, stored directly, the approval of a session nobody
    ever opened (chained like any other event); then a real event after it:
    V2's pending session is approved. Returns the poison event's position."""
    record_all(ledger, served_city())
    poison = append_raw_event(
        database,
        "Volunteer.SessionApproved",
        {"session_id": "S-GHOST", "at": (T0 + DAY).isoformat()},
        at=T0 + DAY,
    )
    record_all(ledger, [submission("approve_session", T0 + DAY, session_id="S-V2")])
    assert_chain_intact(database)
    return poison


def parked(database: Database) -> list[tuple[str, int, int, str]]:
    with database.reading() as conn:
        return [
            (d["name"], d["version"], d["position"], d["topic"])
            for d in list_dead_letters(conn)
        ]


def test_an_event_that_cannot_be_projected_is_parked_and_the_projection_goes_on(
    ledger: Ledger, database: Database
) -> None:
    # Given a poison event between good ones
    poison = record_a_poison_event_between(ledger, database)

    # When the projections catch up
    engine = new_engine(database)
    report = engine.catch_up()

    # Then the poison event is parked, with its error, by each projection
    # that reads session events, and by no other
    approved = "Volunteer.SessionApproved"
    assert parked(database) == [
        ("venue_activity", 1, poison, approved),
        ("volunteer_hours", 1, poison, approved),
    ]
    with database.reading() as conn:
        errors = [d["error"] for d in list_dead_letters(conn)]
    assert (
        errors
        == [
            f"MalformedEventError: Volunteer.SessionApproved at position {poison} "
            "has no field 'minutes'"
        ]
        * 2
    )
    assert report.dead_letters == {
        "activity_calendar": 0,
        "honours_awards": 0,
        "order_fulfilment": 0,
        "venue_activity": 1,
        "venue_tree": 0,
        "volunteer_hours": 1,
    }
    # And the projections carried on past it: V2's later approval counts
    reads = LedgerReads(database)
    v2 = reads.volunteer_hours("V2")
    assert (v2.verified_minutes, v2.sessions, v2.dead_letters) == (150, 1, 1)
    activity = reads.venue_activity(VenueQuery("C"))
    assert pick(activity, ("sessions", "volunteers", "volunteer_minutes")) == {
        "sessions": 2,
        "volunteers": 2,
        "volunteer_minutes": 120 + 150,
    }
    assert activity.dead_letters == 1
    assert reads.venue_fulfilment(VenueQuery("C")).dead_letters == 0
    # And verify is not satisfied while the letter is parked, though the
    # figures themselves equal a replay
    results = {result.name: result for result in engine.verify()}
    for name in ("volunteer_hours", "venue_activity"):
        assert not results[name].ok
        assert (results[name].dead_letters, results[name].differences) == (1, ())
    assert results["venue_tree"].ok and results["order_fulfilment"].ok

    # When everything is rebuilt
    rebuilt = engine.rebuild()

    # Then the rebuild parks it again, in the new versions, and says so
    assert rebuilt.dead_letters["volunteer_hours"] == 1
    assert rebuilt.dead_letters["venue_activity"] == 1
    assert parked(database) == [
        ("venue_activity", 2, poison, approved),
        ("volunteer_hours", 2, poison, approved),
    ]
    assert reads.volunteer_hours("V2").dead_letters == 1
    assert not all(result.ok for result in engine.verify())


def test_an_event_whose_rows_the_database_refuses_is_parked_and_all_go_on(
    ledger: Ledger, database: Database
) -> None:
    """A figure beyond a 64-bit column failed the page's transaction: every
    projection stalled at that page for ever, and nothing said why."""
    # Given a served city, an approval of more minutes than a column holds,
    # then V2's pending session approved
    record_all(ledger, served_city())
    facts = {
        "volunteer_id": "V1",
        "kind": "verified",
        "venue_id": "S1",
        "category": "culture",
        "counted_from": T0.isoformat(),
    }
    approved = "Volunteer.SessionApproved"
    huge = append_raw_event(
        database,
        approved,
        {"session_id": "S-HUGE", "minutes": 2**63, "session": facts},
        at=T0 + DAY,
    )
    record_all(ledger, [submission("approve_session", T0 + DAY, session_id="S-V2")])

    # When the projections catch up
    engine = new_engine(database)
    report = engine.catch_up()

    # Then the event is parked by the projections that count minutes, with
    # the database's refusal, and every projection reached the head
    assert parked(database) == [
        ("venue_activity", 1, huge, approved),
        ("volunteer_hours", 1, huge, approved),
    ]
    with database.reading() as conn:
        errors = [d["error"] for d in list_dead_letters(conn)]
    assert all("writing its rows" in error for error in errors), errors
    assert report.dead_letters["volunteer_hours"] == 1
    with database.reading() as conn:
        head = head_position(conn)
    assert {position for _, _, _, position in version_rows(database)} == {head}
    # And the events around it count: V1's 120 minutes, V2's later 150
    reads = LedgerReads(database)
    assert reads.volunteer_hours("V1").total_minutes == 120
    assert reads.volunteer_hours("V2").total_minutes == 150
    # And `ledger project` lists it and exits 3; verify fails on it
    projected = run_cli(database, "project")
    assert projected.exit_code == 3, projected.output
    assert f"at position {huge} ({approved})" in projected.output
    results = {result.name: result for result in engine.verify()}
    assert not results["volunteer_hours"].ok
    assert results["order_fulfilment"].ok


def test_the_cli_keeps_reporting_a_parked_event(
    ledger: Ledger, database: Database
) -> None:
    # Given a poison event between good ones
    poison = record_a_poison_event_between(ledger, database)

    # When `ledger project` runs, it lists the parked event and exits 3
    projected = run_cli(database, "project")
    assert projected.exit_code == 3, projected.output
    assert f"at position {poison} (Volunteer.SessionApproved)" in projected.output

    # And `ledger rebuild` reports it again, per projection
    rebuilt = run_cli(database, "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    lines = {line.split(":")[0]: line for line in rebuilt.stdout.splitlines()}
    assert "1 dead letter" in lines["volunteer_hours"]
    assert "1 dead letter" in lines["venue_activity"]
    assert "dead letter" not in lines["order_fulfilment"]

    # And `ledger verify` fails on it
    verified = run_cli(database, "verify")
    assert verified.exit_code == 1
    assert "1 dead letter(s) parked" in verified.stdout
    assert parked(database) == [
        ("venue_activity", 2, poison, "Volunteer.SessionApproved"),
        ("volunteer_hours", 2, poison, "Volunteer.SessionApproved"),
    ]


def noted_changes(database: Database) -> set[tuple[str, int, str, int]]:
    with database.reading() as conn:
        return set(conn.execute(sa.select(projection_changes_table)).tuples())


def changes_in_entries(database: Database) -> set[tuple[str, int, str, int]]:
    """Where each version last changed, as a whole ('') and per change scope,
    read off its entries."""
    found: set[tuple[str, int, str, int]] = set()
    with database.reading() as conn:
        for name, version, _, _ in version_rows(database):
            projection = PROJECTIONS[name]
            t = projection.entries.c
            ours = t.version == version
            last = conn.execute(sa.select(sa.func.max(t.position)).where(ours))
            found |= {(name, version, "", at) for (at,) in last if at is not None}
            if projection.change_scope is not None:
                scope = t[projection.change_scope]
                rows = conn.execute(
                    sa.select(scope, sa.func.max(t.position))
                    .where(ours)
                    .group_by(scope)
                )
                found |= {(name, version, value, at) for value, at in rows}
    return found


def test_where_each_version_last_changed_is_noted_as_it_is_projected(
    database: Database,
) -> None:
    # Given a city projected in small pages
    engine = new_engine(database)
    append_city(database, 3_000)
    engine.catch_up(page_size=97)
    append_city(database)
    engine.catch_up(page_size=500)
    # Then the changes noted are those the entries show, per venue too
    noted = noted_changes(database)
    assert noted == changes_in_entries(database)
    per_venue = {name for name, _, scope, _ in noted if scope}
    assert per_venue == {"venue_activity", "order_fulfilment"}
    # And after a rebuild, those of the new versions only
    engine.rebuild()
    assert noted_changes(database) == changes_in_entries(database)


def test_a_ledger_projected_before_changes_were_noted_has_them_noted_once(
    database: Database,
) -> None:
    # Given a ledger projected before the engine noted where versions change
    append_city(database)
    new_engine(database).catch_up()
    with database.writing() as conn:
        conn.execute(projection_changes_table.delete())
        conn.execute(projection_changes_noted_table.delete())
    # When a new engine catches up (with nothing new to project)
    report = new_engine(database).catch_up()
    # Then it has noted them from the entries
    assert sum(report.events.values()) == 0
    assert noted_changes(database) == changes_in_entries(database)
    assert noted_changes(database)
