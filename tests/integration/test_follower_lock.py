"""One follower per database: the runner lock (an advisory lock on
PostgreSQL, a locked file on SQLite) admits one holder, and a follower that
finds it held waits, then takes over when the holder lets go."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application.ledger import Ledger
from ledger.bootstrap import open_database, open_ledger
from ledger.engine import FOLLOWER_LOCK, ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import Database
from ledger.store.runner_lock import RunnerLock
from tests.factories import record_all, register_venue

TAKE_OVER_BOUND = 10.0  # seconds, on a loaded machine


def behind(engine: ProjectionEngine) -> int:
    """Events the furthest-behind projection has not processed."""
    with engine.database.reading() as conn:
        return max(lag.events for lag in engine.lags(conn, datetime.now(UTC)))


def test_a_runner_lock_has_one_holder_until_it_lets_go(database: Database) -> None:
    first, second = RunnerLock(database, "job"), RunnerLock(database, "job")
    other_name = RunnerLock(database, "another-job")
    try:
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert other_name.try_acquire() is True
        assert first.try_acquire() is True  # a holder asking again still holds
        first.release()
        assert second.try_acquire() is True
    finally:
        for lock in (first, second, other_name):
            lock.release()


def test_a_follower_waits_while_another_follows_then_takes_over(
    database: Database, ledger: Ledger
) -> None:
    # Given another process holding the follower's lock
    holder = RunnerLock(database, FOLLOWER_LOCK)
    assert holder.try_acquire()
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    heard: list[bool] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=engine.follow,
        kwargs={
            "poll_seconds": 0.05,
            "should_stop": stop.is_set,
            "on_leading": heard.append,
        },
    )
    try:
        thread.start()
        # When an event is appended while it holds the lock
        record_all(ledger, [register_venue("C", "centre", None)])
        time.sleep(1.0)
        # Then this follower waits and projects nothing
        assert heard == [False]
        assert behind(engine) == 1
        # And once the holder lets go, it takes over and catches up
        holder.release()
        deadline = time.monotonic() + TAKE_OVER_BOUND
        while behind(engine):
            assert time.monotonic() < deadline, "the follower did not take over"
            time.sleep(0.05)
        assert heard == [False, True]
    finally:
        stop.set()
        thread.join(timeout=30)
        holder.release()
    # And having stopped, it let the lock go
    assert holder.try_acquire()
    holder.release()


ADVISORY_LOCKS = sa.text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.mark.postgres
def test_a_follower_whose_lock_connection_is_lost_takes_the_lock_again(
    empty_postgres_url: str, key_directory: Path
) -> None:
    # Given a follower on PostgreSQL, holding the advisory lock
    database = open_database(empty_postgres_url)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    stop = threading.Event()
    thread = threading.Thread(
        target=engine.follow, kwargs={"poll_seconds": 0.05, "should_stop": stop.is_set}
    )
    try:
        thread.start()
        deadline = time.monotonic() + TAKE_OVER_BOUND
        while not (holders := advisory_lock_holders(database)):
            assert time.monotonic() < deadline, "the follower took no lock"
            time.sleep(0.05)
        # When the server ends the connection that holds the lock
        with database.engine.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holders[0]}
            )
        # Then the follower takes the lock again, on a connection of its own
        deadline = time.monotonic() + TAKE_OVER_BOUND
        while advisory_lock_holders(database) in ([], holders):
            assert time.monotonic() < deadline, "the lock was not taken again"
            time.sleep(0.05)
        # And goes on following
        record_all(
            open_ledger(database, key_directory), [register_venue("C", "centre", None)]
        )
        while behind(engine):
            assert time.monotonic() < deadline, "the follower stopped following"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
        database.dispose()


def advisory_lock_holders(database: Database) -> list[int]:
    """The backends holding an advisory lock on the database."""
    with database.engine.connect() as conn:
        return list(conn.execute(ADVISORY_LOCKS).scalars())
