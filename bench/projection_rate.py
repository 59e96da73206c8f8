"""Full rebuild rate of every projection, side by side with (a) the same
folds fed through ``eventsourcing``'s own per-event decoding and (b) a raw SQL
``GROUP BY`` over the same stored rows.

    python bench/projection_rate.py [--db URL]

Run ``bench/import_rate.py`` first: it leaves about 1.2 M events in
bench/out/import-bench.db.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import ledger.projection as engine_module
from ledger.application import Ledger
from ledger.projection import ProjectionEngine, RecordedEvent
from ledger.store import Database
from projections.registry import ALL_PROJECTIONS

OUT = Path(__file__).parent / "out"


def library_decoded_events(ledger: Ledger):  # type: ignore[no-untyped-def]
    """``read_events`` as the library would do it: notifications, then the
    mapper's per-event decoding into domain event objects."""

    def read_events(
        conn: Connection, *, after: int, upto: int, topics: Collection[str]
    ) -> list[RecordedEvent]:
        notifications = ledger.recorder.select_notifications(
            after + 1, upto - after, stop=upto
        )
        events = []
        for notification in notifications:
            if notification.topic not in topics:
                continue
            domain_event = ledger.mapper.to_domain_event(notification)
            events.append(
                RecordedEvent(
                    notification.id,
                    notification.topic,
                    str(notification.originator_id),
                    vars(domain_event),
                )
            )
        return events

    return read_events


def rebuild_rate(database: Database, label: str) -> float:
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    report = engine.rebuild()
    total = report.position
    rate = total / report.seconds
    print(f"{label}: {total:,} events in {report.seconds:.1f} s = {rate:,.0f} events/s")
    return rate


def group_by_rate(database: Database) -> float:
    field = (
        "json_extract(payload, '$.category')"
        if database.is_sqlite
        else "(payload::jsonb ->> 'category')"
    )
    query = sa.text(
        f"SELECT topic, {field} AS category, count(*) FROM ledger_events GROUP BY 1, 2"
    )
    with database.reading() as conn:
        total = (
            conn.execute(sa.text("SELECT count(*) FROM ledger_events")).scalar() or 0
        )
        started = time.perf_counter()
        conn.execute(query).all()
        seconds = time.perf_counter() - started
    rate = total / seconds
    print(
        f"(b) raw SQL GROUP BY over a JSON field: {total:,} rows "
        f"in {seconds:.2f} s = {rate:,.0f} rows/s"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'import-bench.db'}")
    args = parser.parse_args()
    database = Database(args.db)
    database.create_schema()
    ours = rebuild_rate(database, "ledger rebuild (all projections)")
    lean_reader = engine_module.read_events
    engine_module.read_events = library_decoded_events(Ledger(database))
    try:
        library = rebuild_rate(database, "(a) same folds, eventsourcing decoding")
    finally:
        engine_module.read_events = lean_reader
    raw = group_by_rate(database)
    print(f"ours / (a) = {ours / library:.1f}x   (b) / ours = {raw / ours:.2f}x")


if __name__ == "__main__":
    main()
