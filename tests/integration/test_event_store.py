"""The event store on a real SQLite file and real PostgreSQL: one gap-free,
commit-ordered sequence, optimistic concurrency, idempotency, atomicity."""

from __future__ import annotations

import gc
import multiprocessing
import time
import weakref
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application.ledger import ConcurrencyConflictError, Ledger, Outcome
from ledger.application.unit_of_work import AggregateCache
from ledger.bootstrap import open_database, open_ledger
from ledger.domain.activities import Activity
from ledger.store import event_store as store
from ledger.store.event_store import (
    Database,
    LedgerRecorder,
    event_subjects_table,
    events_table,
)
from tests.factories import T0, activity, id_number, record_all, small_city, submission

WRITERS = 4
BATCHES_PER_WRITER = 20
TEAMS_PER_BATCH = 15
EXPECTED_EVENTS = WRITERS * BATCHES_PER_WRITER * TEAMS_PER_BATCH


def _write_teams(url: str, keys: Path, writer: int) -> None:
    ledger = open_ledger(Database(url), keys)
    for batch in range(BATCHES_PER_WRITER):
        results = ledger.execute_batch(
            [
                submission(
                    "register_team",
                    team_id=f"W{writer}-B{batch}-T{n}",
                    name="team",
                    level="team",
                )
                for n in range(TEAMS_PER_BATCH)
            ]
        )
        assert all(r.outcome is Outcome.ACCEPTED for r in results)


def _tail_log(url: str, seen: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Follow the log while it is written; report what was seen, and any gap."""
    recorder = LedgerRecorder(Database(url))
    positions: list[int] = []
    deadline = time.monotonic() + 120
    while len(positions) < EXPECTED_EVENTS and time.monotonic() < deadline:
        after = positions[-1] if positions else 0
        page = recorder.select_notifications(after, 1000, inclusive_of_start=False)
        for notification in page:
            if notification.id != (positions[-1] if positions else 0) + 1:
                seen.put(("gap", positions[-1] if positions else 0, notification.id))
                return
            positions.append(notification.id)
        if not page:
            time.sleep(0.002)
    seen.put(("seen", len(positions), positions[-1] if positions else 0))


def test_concurrent_writers_make_one_gap_free_sequence_read_in_commit_order(
    database: Database, tmp_path: Path
) -> None:
    # Given four writer processes and a reader following the log as it grows
    url = database.url
    keys = tmp_path / "keys"
    open_ledger(database, keys)
    context = multiprocessing.get_context("spawn")
    seen: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    reader = context.Process(target=_tail_log, args=(url, seen))
    writers = [
        context.Process(target=_write_teams, args=(url, keys, w))
        for w in range(WRITERS)
    ]
    reader.start()
    for writer in writers:
        writer.start()
    # When they have all finished
    for writer in writers:
        writer.join(timeout=180)
        assert writer.exitcode == 0
    reader.join(timeout=180)
    # Then the reader saw every position once, in order, with no gap
    assert seen.get(timeout=10) == ("seen", EXPECTED_EVENTS, EXPECTED_EVENTS)
    with database.reading() as conn:
        positions = (
            conn.execute(
                sa.select(events_table.c.position).order_by(events_table.c.position)
            )
            .scalars()
            .all()
        )
    assert positions == list(range(1, EXPECTED_EVENTS + 1))


def test_a_stale_writer_gets_a_clear_conflict_and_nothing_is_lost_or_doubled(
    ledger: Ledger, database: Database
) -> None:
    record_all(ledger, [*small_city(), activity("A1", capacity=5)])
    # Given a writer that holds the activity as it was before another writer
    stale = AggregateCache()
    ledger.execute_batch(
        [submission("cancel_sign_up", activity_id="A1", volunteer_id="V9")], stale
    )
    other_writer = Ledger(Database(database.url), ledger.id_number_digest, ledger.vault)
    assert (
        other_writer.execute(
            submission("sign_up", activity_id="A1", volunteer_id="V1")
        ).outcome
        is Outcome.ACCEPTED
    )
    # When the stale writer records a change without retrying
    with pytest.raises(ConcurrencyConflictError, match="conflicting change"):
        ledger.execute_batch(
            [submission("sign_up", activity_id="A1", volunteer_id="V2")],
            stale,
            retry_conflicts=False,
        )
    before = ledger.recorder.max_notification_id()
    # Then nothing was written; retried on fresh state, both sign-ups stand
    [retried] = ledger.execute_batch(
        [submission("sign_up", activity_id="A1", volunteer_id="V2")], stale
    )
    assert retried.outcome is Outcome.ACCEPTED
    assert retried.first_position == (before or 0) + 1
    activity_aggregate = ledger.repository.get(Activity.create_id("A1"))
    assert activity_aggregate.signed_up == {"V1", "V2"}


def test_a_repeated_idempotency_key_writes_nothing_and_answers_with_the_first_positions(
    ledger: Ledger,
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    first = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    )
    head = ledger.recorder.max_notification_id()
    # A retry of the same command with the same key is a duplicate
    again = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    )
    assert again.outcome is Outcome.DUPLICATE
    assert (again.first_position, again.last_position) == (
        first.first_position,
        first.last_position,
    )
    assert ledger.recorder.max_notification_id() == head


def test_a_refused_command_does_not_use_up_its_key(ledger: Ledger) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    refused = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V404", key="k")
    )
    assert refused.outcome is Outcome.REJECTED
    accepted = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k")
    )
    assert accepted.outcome is Outcome.ACCEPTED


def test_a_rejected_command_in_a_batch_writes_nothing_while_the_others_are_recorded(
    ledger: Ledger,
) -> None:
    record_all(ledger, [*small_city(), activity("A1", capacity=1)])
    head = ledger.recorder.max_notification_id() or 0
    results = ledger.execute_batch(
        [
            submission("sign_up", activity_id="A1", volunteer_id="V1"),
            submission("sign_up", activity_id="A1", volunteer_id="V2"),  # past capacity
            submission(
                "check_in", at=T0, session_id="S-1", volunteer_id="V1", activity_id="A1"
            ),
        ]
    )
    assert [r.outcome for r in results] == [
        Outcome.ACCEPTED,
        Outcome.REJECTED,
        Outcome.ACCEPTED,
    ]
    assert results[1].error is not None and results[1].error.code == "capacity_reached"
    assert ledger.recorder.max_notification_id() == head + 2


def test_a_rejected_command_keeps_nothing_of_its_batch_alive(ledger: Ledger) -> None:
    """Imports and honours runs go without the cyclic garbage collector, so a
    batch must be freed by reference counting alone, rejections included."""
    record_all(ledger, [*small_city(), activity("A1", capacity=1)])
    batch = [
        submission("sign_up", activity_id="A1", volunteer_id="V1"),
        submission("sign_up", activity_id="A1", volunteer_id="V2"),  # past capacity
    ]
    watched = weakref.ref(batch[0])
    gc.disable()
    try:
        # When a batch with a rejected command is recorded and let go of
        results = ledger.execute_batch(batch)
        del batch

        # Then nothing of it is left, though the rejection's reason is
        assert watched() is None
    finally:
        gc.enable()
    assert results[1].error is not None and results[1].error.code == "capacity_reached"


def test_every_event_carries_its_envelope_and_the_subjects_it_concerns(
    ledger: Ledger, database: Database
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    at = T0 - timedelta(hours=1)
    result = ledger.execute(
        submission(
            "sign_up",
            at=at,
            activity_id="A1",
            volunteer_id="V1",
            key="envelope-1",
            actor={"id": "V1", "role": "volunteer"},
        )
    )
    with database.reading() as conn:
        row = conn.execute(
            sa.select(events_table).where(
                events_table.c.position == result.first_position
            )
        ).one()
        subjects = set(
            conn.execute(
                sa.select(
                    event_subjects_table.c.kind, event_subjects_table.c.subject_id
                ).where(event_subjects_table.c.position == result.first_position)
            ).tuples()
        )
    assert row.topic == "Activity.SignedUp"
    assert (row.actor_id, row.actor_role, row.source) == ("V1", "volunteer", "cli")
    assert row.occurred_at == at.isoformat()
    assert row.idempotency_key == "envelope-1"
    assert row.correlation_id and row.recorded_at.endswith("Z")
    assert subjects == {("activity", "A1"), ("volunteer", "V1")}


def test_recording_times_never_go_back_when_the_clock_does(
    ledger: Ledger, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads as of a recording time take every position recorded by then:
    a later position recorded earlier would be left out of them."""
    # Given a venue recorded now
    record_all(ledger, small_city()[:1])

    # When the machine's clock steps back an hour and another is recorded
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)

    class SteppedBack(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> SteppedBack:
            return cls.fromtimestamp(an_hour_ago.timestamp(), tz)

    monkeypatch.setattr(store, "datetime", SteppedBack)
    record_all(ledger, small_city()[1:2])

    # Then its recording time is not before the first one's
    with database.reading() as conn:
        recorded = list(
            conn.execute(
                sa.select(events_table.c.recorded_at).order_by(events_table.c.position)
            ).scalars()
        )
    assert len(recorded) == 2
    assert recorded[1] == recorded[0]


def test_a_second_volunteer_with_the_same_id_number_is_refused(ledger: Ledger) -> None:
    number = id_number()
    record_all(
        ledger,
        [
            submission(
                "register_volunteer", volunteer_id="V1", name="a", id_number=number
            )
        ],
    )
    result = ledger.execute(
        submission("register_volunteer", volunteer_id="V2", name="b", id_number=number)
    )
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and result.error.code == "duplicate_id_number"


def test_on_sqlite_events_commit_durably_after_a_projection_write_and_back(
    tmp_path: Path,
) -> None:
    database = open_database(f"sqlite:///{tmp_path}/durability.db")

    def synchronous(durable: bool) -> int:
        with database.writing(durable=durable) as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0)

    # Writes in turn on the pooled connections: FULL for events, NORMAL for
    # projections, whatever the connection served before
    full, normal = 2, 1
    durable = [True, False, True, False, False, True]
    assert [synchronous(d) for d in durable] == [full if d else normal for d in durable]


@pytest.mark.postgres
def test_a_writer_keeps_postgresql_planning_its_lookups_for_the_ledger_it_has(
    empty_postgres_url: str, tmp_path: Path
) -> None:
    # Given an empty ledger on PostgreSQL, its tables never analysed
    database = open_database(empty_postgres_url)
    ledger = open_ledger(database, tmp_path / "keys")
    batch = 2_000

    # When one writer records as many keyed commands as the floor, in batches
    for number in range(store.STATISTICS_FLOOR // batch):
        ledger.execute_batch(
            [
                submission(
                    "register_team",
                    team_id=f"B{number}-T{n}",
                    name="team",
                    level="team",
                    key=f"k-{number}-{n}",
                )
                for n in range(batch)
            ]
        )

    # Then the planner's statistics know the size of what a lookup reads
    with database.reading() as conn:
        planned = dict(
            conn.execute(
                sa.text(
                    "SELECT relname, reltuples FROM pg_class WHERE relname IN "
                    "('ledger_events', 'ledger_idempotency_keys')"
                )
            ).all()
        )
    assert planned == {
        "ledger_events": store.STATISTICS_FLOOR,
        "ledger_idempotency_keys": store.STATISTICS_FLOOR,
    }
    database.dispose()
