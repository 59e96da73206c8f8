"""Writers wait for the append lock a bounded time: a writer that cannot
have it in time is told the ledger is busy, and on PostgreSQL a writer
stopped while holding it loses it after the append limit, so that it
cannot block the others for ever."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.bootstrap import open_database
from ledger.store.event_store import (
    Database,
    DatabaseUnavailableError,
    LedgerBusyError,
    WaitLimits,
)


def test_a_writer_that_cannot_have_the_append_lock_in_time_is_told_busy(
    database: Database,
) -> None:
    impatient = Database(database.url, WaitLimits(lock_seconds=0.3))
    with database.appending():
        started = time.monotonic()
        with pytest.raises(LedgerBusyError, match="retry"), impatient.appending():
            pass
        waited = time.monotonic() - started
    assert 0.3 <= waited < 5
    with impatient.appending():  # free again: had at once
        pass
    impatient.dispose()


def test_a_writer_stopped_holding_the_append_lock_loses_it_after_the_limit(
    empty_postgres_url: str,
) -> None:
    stopped = open_database(
        empty_postgres_url, WaitLimits(lock_seconds=1, append_seconds=1)
    )
    waiting = Database(empty_postgres_url, WaitLimits(lock_seconds=10))
    had_lock_after: list[float] = []

    def wait_for_the_lock() -> None:
        started = time.monotonic()
        with waiting.appending():
            had_lock_after.append(time.monotonic() - started)

    # Given a writer that takes the lock and then does nothing (stopped)
    with pytest.raises(DatabaseUnavailableError), stopped.appending():
        other = threading.Thread(target=wait_for_the_lock)
        other.start()
        other.join(timeout=8)
    # Then the other writer had the lock after about the append limit, and
    # the stopped one's transaction was ended: it wrote nothing
    assert had_lock_after and had_lock_after[0] < 5
    stopped.dispose()
    waiting.dispose()
