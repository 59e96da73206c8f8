"""Full rebuild rate of every projection, side by side with (a) the same
folds fed through ``eventsourcing``'s own per-event decoding and (b) a raw SQL
``GROUP BY`` over the same stored rows.

    python bench/projection_rate.py [--db URL] [--workers N]

(a) runs through the same engine, with the same workers, only its events
decoded by the library; (b) is checked to give the very figures the rebuild
left live.

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

from ledger.application.ledger import Ledger
from ledger.bootstrap import open_database, open_ledger
from ledger.engine import (
    REBUILD_WORKERS,
    EventReader,
    ProjectionEngine,
    RecordedEvent,
    read_events,
)
from ledger.projections.registry import (
    ALL_PROJECTIONS,
    ORDER_FULFILMENT,
    VENUE_ACTIVITY,
    VENUE_TREE,
    VOLUNTEER_HOURS,
)
from ledger.store.event_store import Database, head_position

OUT = Path(__file__).parent / "out"
# The benchmarks' ledgers keep their key material (the ID-number secret) here.
KEYS = OUT / "keys"


def library_decoded_events(ledger: Ledger) -> EventReader:
    """``read_events`` as the library would do it: the notifications of the
    wanted topics, then the mapper's per-event decoding into domain event
    objects."""

    def read_library_decoded(
        conn: Connection, *, after: int, upto: int, topics: Collection[str]
    ) -> list[RecordedEvent]:
        notifications = ledger.recorder.select_notifications(
            after + 1, upto - after, stop=upto, topics=sorted(topics)
        )
        events = []
        for notification in notifications:
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

    return read_library_decoded


def rebuild_rate(
    database: Database, label: str, workers: int, reader: EventReader = read_events
) -> float:
    engine = ProjectionEngine(database, ALL_PROJECTIONS, read_events=reader)
    report = engine.rebuild(workers=workers)
    total = report.position
    rate = total / report.seconds
    print(
        f"{label}, {workers} worker(s): {total:,} events in {report.seconds:.2f} s "
        f"= {rate:,.0f} events/s"
    )
    return rate


class JsonFields:
    """SQL for the payload fields the folds read, in each dialect; the
    queries read ``doc``, the payload parsed once per row."""

    def __init__(self, database: Database) -> None:
        self.sqlite = database.is_sqlite
        self.doc = "payload" if self.sqlite else "payload::jsonb"

    def text(self, path: str) -> str:
        if self.sqlite:
            return f"json_extract(doc, '$.{path}')"
        return f"(doc #>> '{{{path.replace('.', ',')}}}')"

    def number(self, path: str) -> str:
        return self.text(path) if self.sqlite else f"{self.text(path)}::int"

    def flag(self, path: str) -> str:
        return self.text(path) if self.sqlite else f"{self.text(path)}::boolean::int"

    def china(self, moment: str, pattern: str) -> str:
        """A moment's date or month in China Standard Time (any offset)."""
        if self.sqlite:
            return f"strftime('{pattern}', {moment}, '+8 hours')"
        postgres = {"%Y-%m-%d": "YYYY-MM-DD", "%Y-%m": "YYYY-MM", "%Y": "YYYY"}
        return (
            f"to_char(({moment})::timestamptz AT TIME ZONE 'Asia/Shanghai', "
            f"'{postgres[pattern]}')"
        )

    def minutes_between(self, start: str, end: str) -> str:
        if self.sqlite:
            return f"((strftime('%s', {end}) - strftime('%s', {start})) / 60)"
        return (
            f"floor(extract(epoch FROM ({end})::timestamptz - ({start})::timestamptz)"
            " / 60)::int"
        )


def figure_queries(database: Database) -> dict[str, str]:
    """Each projection's figures (``Projection.figures``: the sums of its
    entries by key, all-zero keys left out) straight from the stored rows, in
    one SQL ``GROUP BY`` per projection."""
    f = JsonFields(database)

    def rows_of(*topics: str) -> str:
        names = ", ".join(f"'{topic}'" for topic in topics)
        return (
            f"(SELECT topic, {f.doc} AS doc FROM ledger_events "
            f"WHERE topic IN ({names})) e"
        )

    def nonzero(*measures: str) -> str:
        return " OR ".join(f"sum({m}) <> 0" for m in measures)

    approved, corrected, voided = (
        "Volunteer.SessionApproved",
        "Volunteer.SessionCorrected",
        "Volunteer.SessionVoided",
    )
    sessions = rows_of(approved, corrected, voided)
    session_minutes, previous = f.number("minutes"), f.number("previous_minutes")
    minutes = (
        f"CASE topic WHEN '{approved}' THEN {session_minutes} "
        f"WHEN '{corrected}' THEN {session_minutes} - {previous} "
        f"ELSE -{session_minutes} END"
    )
    counted = f"CASE topic WHEN '{approved}' THEN 1 WHEN '{voided}' THEN -1 ELSE 0 END"
    counted_from = f.text("session.counted_from")
    volunteer_hours = (
        f"SELECT {f.text('session.volunteer_id')}, {f.text('session_id')}, "
        f"{f.text('session.kind')}, {f.china(counted_from, '%Y')}, "
        f"{f.text('session.category')}, {f.china(counted_from, '%Y-%m-%d')}, "
        f"sum({minutes}), sum({counted}) FROM {sessions} "
        f"GROUP BY 1, 2, 3, 4, 5, 6 HAVING {nonzero(minutes, counted)}"
    )
    venue_activity = (
        "SELECT venue_id, month, category, kind, volunteer_id, sum(activities), "
        "sum(sessions), sum(minutes) FROM ("
        f"SELECT {f.text('venue_id')} AS venue_id, "
        f"{f.china(f.text('starts_at'), '%Y-%m')} AS month, "
        f"{f.text('category')} AS category, '' AS kind, '' AS volunteer_id, "
        "1 AS activities, 0 AS sessions, 0 AS minutes "
        f"FROM {rows_of('Activity.Published')} UNION ALL "
        f"SELECT {f.text('session.venue_id')}, {f.china(counted_from, '%Y-%m')}, "
        f"{f.text('session.category')}, {f.text('session.kind')}, "
        f"{f.text('session.volunteer_id')}, 0, {counted}, {minutes} FROM {sessions}"
        ") a GROUP BY 1, 2, 3, 4, 5 "
        f"HAVING {nonzero('activities', 'sessions', 'minutes')}"
    )
    order_topics = sorted(ORDER_FULFILMENT.topics)

    def order_field(name: str) -> str:
        # An order's facts: the payload itself when posted, its ``order`` after.
        return f"coalesce({f.text('order.' + name)}, {f.text(name)})"

    posted_at = f"coalesce({f.text('order.posted_at')}, {f.text('at')})"

    def when(topic: str, value: str = "1") -> str:
        return f"CASE WHEN topic = '{topic}' THEN {value} ELSE 0 END"

    stars = f.number("stars")
    order_measures = [
        when("Order.Posted"),
        when("Order.Dispatched"),
        when("Order.Accepted", f.flag("first_acceptance")),
        when("Order.Fulfilled"),
        when("Order.Withdrawn"),
        when("Order.Rejected"),
        when("Order.Expired"),
        when("Order.Rated"),
        when("Order.Rated", stars),
        when("Order.Rated", f"CASE WHEN {stars} >= 4 THEN 1 ELSE 0 END"),
        when("Order.Fulfilled", f.minutes_between(posted_at, f.text("at"))),
    ]
    order_fulfilment = (
        f"SELECT {order_field('venue_id')}, {f.china(posted_at, '%Y-%m')}, "
        f"{order_field('kind')}, {order_field('category')}, "
        f"{order_field('order_id')}, "
        + ", ".join(f"sum({m})" for m in order_measures)
        + f" FROM {rows_of(*order_topics)} GROUP BY 1, 2, 3, 4, 5 "
        f"HAVING {nonzero(*order_measures)}"
    )
    venue_tree = (
        f"SELECT {f.text('venue_id')}, {f.text('parent_id')}, {f.text('level')}, "
        f"{f.text('name')}, count(*) FROM {rows_of('Venue.Registered')} "
        "GROUP BY 1, 2, 3, 4"
    )
    return {
        VOLUNTEER_HOURS.name: volunteer_hours,
        VENUE_ACTIVITY.name: venue_activity,
        ORDER_FULFILMENT.name: order_fulfilment,
        VENUE_TREE.name: venue_tree,
    }


def group_by_rate(database: Database) -> float:
    """(b): every projection's figures by SQL, timed, then checked against
    the figures the rebuild left live (so both did the same work)."""
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    seconds = 0.0
    same = True
    with database.reading() as conn:
        total = head_position(conn)
        for name, query in figure_queries(database).items():
            started = time.perf_counter()
            rows = conn.exec_driver_sql(query).all()
            seconds += time.perf_counter() - started
            width = len(engine.projection(name).measure_columns)
            by_sql = {
                tuple(row[:-width]): tuple(int(value) for value in row[-width:])
                for row in rows
            }
            live = engine.live_version(conn, name)
            assert live is not None
            rebuilt = engine.projection(name).figures(conn, live.version, live.position)
            if by_sql != rebuilt:
                same = False
                differing = set(by_sql.items()) ^ set(rebuilt.items())
                print(f"  {name}: SQL and rebuild differ in {len(differing):,} figures")
    rate = total / seconds
    verdict = "identical" if same else "DIFFERENT"
    print(
        f"(b) raw SQL GROUP BY, the same figures ({verdict}): "
        f"{total:,} rows in {seconds:.2f} s = {rate:,.0f} rows/s"
    )
    return rate


def one_field_group_by_rate(database: Database) -> float:
    """The earlier (b): one GROUP BY over one JSON field of every row."""
    field = (
        "json_extract(payload, '$.category')"
        if database.is_sqlite
        else "(payload::jsonb ->> 'category')"
    )
    query = sa.text(
        f"SELECT topic, {field} AS category, count(*) FROM ledger_events GROUP BY 1, 2"
    )
    with database.reading() as conn:
        total = head_position(conn)
        started = time.perf_counter()
        conn.execute(query).all()
        seconds = time.perf_counter() - started
    rate = total / seconds
    print(
        f"    (earlier (b): one GROUP BY over one JSON field of every row: "
        f"{rate:,.0f} rows/s)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'import-bench.db'}")
    parser.add_argument(
        "--workers",
        type=int,
        default=REBUILD_WORKERS,
        help="rebuild processes (default: as `ledger rebuild`)",
    )
    args = parser.parse_args()
    database = open_database(args.db)
    ours = rebuild_rate(database, "ledger rebuild (all projections)", args.workers)
    library = rebuild_rate(
        database,
        "(a) same folds, eventsourcing decoding",
        args.workers,
        library_decoded_events(open_ledger(database, KEYS)),
    )
    raw = group_by_rate(database)
    one_field = one_field_group_by_rate(database)
    print(
        f"ours / (a) = {ours / library:.1f}x   (b) / ours = {raw / ours:.2f}x   "
        f"(earlier (b) / ours = {one_field / ours:.2f}x)"
    )


if __name__ == "__main__":
    main()
