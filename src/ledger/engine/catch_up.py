"""Catching up: paging events through the projections' folds exactly once.

Catching up reads events in large pages; for each page the entries and the
new tracking position are committed in one transaction that holds the
tracking row's lock, so a crash at any instant neither loses nor
double-counts an event, and two runners cannot both apply one page. An event
a fold refuses, or whose rows the database refuses, is parked as a dead
letter and the projection goes on with the next.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine.events import DEFAULT_PAGE_SIZE, EventReader, RecordedEvent
from ledger.engine.projection import Entry, PageResult, Projection
from ledger.engine.tracking import (
    LIVE,
    VersionInfo,
    changing_versions,
    dead_letters_table,
    ensure_live_versions,
    note_changes_from_entries,
    note_upto,
    projection_versions_table,
    record_changes,
    versions_noted_short,
)
from ledger.store.event_store import (
    Database,
    PlannerStatistics,
    head_position,
    utc_text,
)
from ledger.store.memory import cyclic_gc_paused

# What a database says of rows it will not store (a value out of its
# column's range — sqlite3 refuses one before SQLAlchemy sees it — or a
# missing key); other errors (a lost connection, a lock timeout) are not the
# event's doing and fail the catch-up, to be retried.
ROWS_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError, OverflowError)


@dataclass
class CatchUpReport:
    """What one catch-up did, per projection."""

    events: dict[str, int] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    position: int = 0
    seconds: float = 0.0
    processes: int = 1  # that shared the work out


@dataclass(frozen=True)
class ProcessedPage:
    """Where a page ended, and whether that was the head."""

    end: int
    done: bool


@dataclass(frozen=True)
class EventPage:
    """A page of events read for some versions: positions up to ``end``,
    read when the ledger's head was ``head``."""

    head: int
    end: int
    versions: list[VersionInfo]
    events: list[RecordedEvent]


@dataclass(frozen=True)
class FoldedPage:
    """One version's share of a page: how many events it read, what they made."""

    events: int
    result: PageResult


class CatchUp:
    """Brings versions of some projections up to the ledger's head, page by
    page, each page read and folded without the write lock and committed
    only for the versions still where it was read."""

    def __init__(
        self,
        database: Database,
        projections: Mapping[str, Projection],
        read_events: EventReader,
    ) -> None:
        self.database = database
        self.projections = projections
        self.read_events = read_events
        self._earlier_changes_noted = False
        # The tables pages fill and keys are looked up in (a kept roll-up's).
        self._statistics = PlannerStatistics(
            database,
            [
                table
                for projection in projections.values()
                for table in (projection.entries, *projection.kept_tables)
            ],
        )

    def note_earlier_changes(self) -> None:
        """Note, from their entries, where versions whose notes fall short of
        their position last changed (a database from before changes were
        noted, or a version moved on without noting them); once per engine."""
        if self._earlier_changes_noted:
            return
        with self.database.reading() as conn:
            behind = versions_noted_short(conn, self.projections.keys())
        if behind:
            with changing_versions(self.database) as conn:
                for found in versions_noted_short(conn, self.projections.keys()):
                    note_changes_from_entries(conn, self.projections[found.name], found)
        self._earlier_changes_noted = True

    def run(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        state: str = LIVE,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Bring the named projections' ``state`` versions up to the head."""
        ensure_live_versions(self.database, self.projections.keys())
        self.note_earlier_changes()
        started = time.perf_counter()
        report = CatchUpReport()
        selected = list(names or self.projections)
        with cyclic_gc_paused():
            while True:
                # Read and fold without the write lock (writers and other
                # runners go on meanwhile); then commit what is still current.
                with self.database.reading() as conn:
                    page = self.read_page(conn, selected, state, page_size)
                if isinstance(page, ProcessedPage):
                    done = page
                else:
                    folded = self.fold_page(page)
                    with self.database.writing(durable=False) as conn:
                        all_written = self.commit_page(conn, page, folded, report)
                    # a version skipped (moved or switched over meanwhile) is
                    # read again from where it now stands
                    done = ProcessedPage(
                        page.end, page.end >= page.head and all_written
                    )
                    self._statistics.keep_current(page.end)
                report.position = done.end
                if on_page:
                    on_page(done.end)
                if done.done:
                    break
        report.seconds = time.perf_counter() - started
        return report

    def follow(
        self,
        *,
        poll_seconds: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        on_report: Callable[[CatchUpReport], None] | None = None,
    ) -> None:
        """Keep the live projections current until ``should_stop`` says so."""
        while not should_stop():
            report = self.run()
            if on_report and any(report.events.values()):
                on_report(report)
            time.sleep(poll_seconds)

    def read_page(
        self,
        conn: Connection,
        names: Sequence[str],
        state: str,
        page_size: int,
        *,
        lock: bool = False,
    ) -> EventPage | ProcessedPage:
        """The next page of events for the named versions in ``state``, or
        where they stand when there is nothing to read."""
        t = projection_versions_table.c
        query = (
            sa.select(projection_versions_table)
            .where(t.name.in_(names), t.state == state)
            .order_by(t.name, t.version)
        )
        rows = conn.execute(query.with_for_update() if lock else query).all()
        if not rows:
            return ProcessedPage(0, True)
        head = head_position(conn)
        start = min(row.position for row in rows)
        if start >= head:
            return ProcessedPage(head, True)
        end = min(head, start + page_size)
        versions = [VersionInfo(r.name, r.version, r.state, r.position) for r in rows]
        topics = frozenset().union(*(self.projections[v.name].topics for v in versions))
        events = self.read_events(conn, after=start, upto=end, topics=topics)
        return EventPage(head, end, versions, events)

    def fold_page(self, page: EventPage) -> dict[VersionInfo, FoldedPage]:
        """Each version's share of the page, folded (pure: no database)."""
        folded = {}
        for found in page.versions:
            if found.position >= page.end:
                continue  # already further on (rebuilt alone, say): leave it be
            projection = self.projections[found.name]
            since, topics = found.position, projection.topics
            wanted = [
                e for e in page.events if e.position > since and e.topic in topics
            ]
            folded[found] = FoldedPage(len(wanted), projection.fold(wanted))
        return folded

    def commit_page(
        self,
        conn: Connection,
        page: EventPage,
        folded: Mapping[VersionInfo, FoldedPage],
        report: CatchUpReport,
    ) -> bool:
        """Write each version's folded page and move it to the page's end,
        holding its tracking row's lock, if it still stands where (and in the
        state) the page was read; a version another runner moved, or a
        rebuild retired, meanwhile is left to the next page (so no event is
        applied twice, nor to a retired version). Returns whether every
        version was written."""
        t = projection_versions_table.c
        read_as = {(v.name, v.version): (v.state, v.position) for v in folded}
        # Only these rows, always in (name, version) order, as the switch-over
        # and the clearing of retired versions lock theirs: runners may wait
        # for each other, never in a cycle.
        current = conn.execute(
            sa.select(t.name, t.version, t.state, t.position)
            .where(sa.tuple_(t.name, t.version).in_(sorted(read_as)))
            .order_by(t.name, t.version)
            .with_for_update()
        ).all()
        still = {
            (name, version)
            for name, version, state, position in current
            if read_as[(name, version)] == (state, position)
        }
        for found in page.versions:
            for tally in (report.events, report.entries, report.dead_letters):
                tally.setdefault(found.name, 0)
        written = {
            found: share.result
            for found, share in folded.items()
            if (found.name, found.version) in still
        }
        try:
            with conn.begin_nested():
                for found, result in written.items():
                    self._write_version(conn, found, result, page.end)
        except ROWS_REFUSED:
            # The database refuses some event's rows (a figure beyond its
            # column's range, say): park those events, as a fold's refusals
            # are, rather than stall every projection at this page for ever.
            events = {event.position: event for event in page.events}
            for found, result in written.items():
                written[found] = self._park_refused(conn, found, result, events)
                self._write_version(conn, found, written[found], page.end)
        for found, result in written.items():
            report.events[found.name] += folded[found].events
            report.entries[found.name] += len(result.entries)
            report.dead_letters[found.name] += len(result.dead_letters)
        return len(written) == len(folded)

    def _write_version(
        self, conn: Connection, found: VersionInfo, result: PageResult, end: int
    ) -> None:
        """One version's page: its entries, dead letters, change notes and
        its tracking position moved to ``end``."""
        projection = self.projections[found.name]
        projection.write_entries(conn, found.version, result.entries)
        if result.dead_letters:
            conn.execute(
                dead_letters_table.insert(),
                [
                    {
                        "name": found.name,
                        "version": found.version,
                        "position": recorded.position,
                        "topic": recorded.topic,
                        "error": error,
                        "recorded_at": utc_text(datetime.now(UTC)),
                    }
                    for recorded, error in result.dead_letters
                ],
            )
        t = projection_versions_table.c
        conn.execute(
            projection_versions_table.update()
            .where(t.name == found.name, t.version == found.version)
            .values(position=end, updated_at=utc_text(datetime.now(UTC)))
        )
        record_changes(conn, projection, found.version, result.entries)
        note_upto(conn, found.name, found.version, end)

    def _park_refused(
        self,
        conn: Connection,
        found: VersionInfo,
        result: PageResult,
        events: Mapping[int, RecordedEvent],
    ) -> PageResult:
        """``result`` without the events whose rows the database refuses,
        parked instead with its error; found by halving the page's events,
        each attempt written under a savepoint and rolled back."""
        projection = self.projections[found.name]
        by_event: dict[int, list[Entry]] = defaultdict(list)
        for entry in result.entries:
            by_event[entry.position].append(entry)
        refused: dict[int, str] = {}
        parts = [list(by_event)]
        while parts:
            positions = parts.pop()
            entries = [entry for at in positions for entry in by_event[at]]
            attempt = conn.begin_nested()
            try:
                projection.write_entries(conn, found.version, entries)
                record_changes(conn, projection, found.version, entries)
            except ROWS_REFUSED as error:
                if len(positions) == 1:
                    cause = getattr(error, "orig", error)
                    reason = str(cause).strip().splitlines()[0]
                    refused[positions[0]] = (
                        f"{type(cause).__name__} writing its rows: {reason}"
                    )
                else:
                    middle = len(positions) // 2
                    parts += [positions[:middle], positions[middle:]]
            finally:
                attempt.rollback()
        return PageResult(
            [entry for entry in result.entries if entry.position not in refused],
            sorted(
                [*result.dead_letters]
                + [(events[at], error) for at, error in refused.items()],
                key=lambda parked: parked[0].position,
            ),
        )
