"""The projection engine: exactly-once, rebuildable, as-of, explainable.

A projection turns events into **entries**: rows that each say "the event
at position P changed these figures of this key by these amounts". Entries
are only ever appended (in normal operation), so:

- the current figures are the sums of the entries of each key;
- the figures *as of position P* are the sums of the entries with
  ``position <= P`` — an indexed range read, not a replay;
- the events that made a figure are the positions of its entries, and their
  contributions sum to the figure by construction.

A projection's fold is pure and stateless: events carry what they count
for, so each event's entries follow from the event alone.

Each projection has versions. The engine keeps one row per (projection,
version) in ``projection_versions`` with its state (building, live,
retired) and the position it has processed up to. Catching up reads events
in large pages; for each page the entries and the new tracking position
are committed in one transaction that holds the tracking row's
lock, so a crash at any instant neither loses nor double-counts an event,
and two runners cannot both apply one page. A rebuild replays from the
first event into a new version beside the live one and switches over in one
transaction once it has caught up, so reads never see an empty or
half-built projection.

The dead-letter policy: an event a projection cannot process is parked —
recorded in ``projection_dead_letters`` with its position, topic and error —
and the projection goes on with the next event, so one bad event neither
stalls the projection nor vanishes. Every read reports how many events its
projection has parked, ``ledger project`` lists them and exits non-zero, and
``ledger verify`` fails while any remain. Once the cause is fixed,
``ledger rebuild NAME`` processes every event again into a fresh version.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.queues
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine.memory import cyclic_gc_paused
from ledger.store.event_store import (
    LOOKUP_CHUNK,
    Database,
    events_table,
    head_position,
    insert_rows,
    metadata,
    placeholder,
    select_rows,
    select_rows_among,
    utc_text,
)

projection_versions_table = sa.Table(
    "projection_versions",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.String(27), nullable=False),
    sa.Index(
        "projection_versions_one_live",
        "name",
        unique=True,
        sqlite_where=sa.text("state = 'live'"),
        postgresql_where=sa.text("state = 'live'"),
    ),
)

dead_letters_table = sa.Table(
    "projection_dead_letters",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("topic", sa.String(80), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.String(27), nullable=False),
)

# Where each version last changed: for the whole version (scope ''), and
# for each value of its ``change_scope`` column (a venue, say). A read whose
# figures did not change since an earlier position can be answered from
# what was computed then.
projection_changes_table = sa.Table(
    "projection_changes",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
WHOLE_VERSION = ""
# How far each version's changes are noted: reads trust the notes only when
# they reach the version's position (a version moved on by other means, or
# before the ledger noted changes, is read without them until noted again).
projection_changes_noted_table = sa.Table(
    "projection_changes_noted",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("upto", sa.BigInteger, nullable=False),
)

BUILDING, LIVE, RETIRED = "building", "live", "retired"


def define_entries_table(
    name: str,
    keys: Sequence[sa.Column[Any]],
    measures: Sequence[str],
    lookup: Sequence[str],
) -> sa.Table:
    """A projection's entries: version, position, its key columns and its
    (64-bit integer) measures, indexed for reads by ``lookup`` then position."""
    return sa.Table(
        name,
        metadata,
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        *keys,
        *(sa.Column(measure, sa.BigInteger, nullable=False) for measure in measures),
        sa.Index(f"{name}_lookup", "version", *lookup, "position"),
    )


# What a database says of rows it will not store (a value out of its
# column's range — sqlite3 refuses one before SQLAlchemy sees it — or a
# missing key); other errors (a lost connection, a lock timeout) are not the
# event's doing and fail the catch-up, to be retried.
ROWS_REFUSED = (sa.exc.DataError, sa.exc.IntegrityError, OverflowError)

DEFAULT_PAGE_SIZE = 50_000
# Rebuild processes worth running: one more than the cores, as projections
# are few and unequal (on 2 cores, 3 processes rebuilt 1.2 M events in 4.1 s,
# 2 in 4.8 s, 4 in 4.4 s, 1 in 6.5 s).
REBUILD_WORKERS = (os.cpu_count() or 1) + 1


class RecordedEvent(NamedTuple):
    """A stored event as projections see it: position, topic and payload."""

    position: int
    topic: str
    stream_id: str
    payload: dict[str, Any]


class EventReader(Protocol):
    """How the engine reads a page of events: those of ``topics`` in
    positions (after, upto], in position order. ``read_events`` is the
    engine's own; another (the library's per-event decoding, say) can be
    handed to ``ProjectionEngine`` to be measured against it."""

    def __call__(
        self, conn: Connection, *, after: int, upto: int, topics: Collection[str]
    ) -> list[RecordedEvent]: ...


def read_events(
    conn: Connection,
    *,
    after: int,
    upto: int,
    topics: Collection[str],
) -> list[RecordedEvent]:
    """The events of ``topics`` in positions (after, upto], decoded straight
    from the stored JSON. Pages are windows of positions read along the
    primary key; other topics are filtered out by the database."""
    # The driver's own cursor: building a SQLAlchemy row per event would cost
    # more than parsing its payload.
    # ``topic || ''`` keeps the planner off the topic index: walking a page's
    # window along the primary key is cheaper than gathering it by topic and
    # sorting it back into position order.
    mark = placeholder(conn)
    wanted = sorted(topics)
    in_topics = ", ".join([mark] * len(wanted))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            "SELECT position, topic, stream_id, payload FROM ledger_events "
            f"WHERE position > {mark} AND position <= {mark} "
            f"AND (topic || '') IN ({in_topics}) ORDER BY position",
            (after, upto, *wanted),
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    loads = orjson.loads
    return [
        RecordedEvent(position, topic, stream_id, loads(payload))
        for position, topic, stream_id, payload in rows
    ]


def iter_events(
    conn: Connection,
    *,
    upto: int,
    topics: Collection[str],
    page_size: int = DEFAULT_PAGE_SIZE,
    reader: EventReader = read_events,
) -> Iterator[RecordedEvent]:
    """Every event of ``topics`` up to position ``upto``, page by page."""
    for after in range(0, upto, page_size):
        yield from reader(
            conn, after=after, upto=min(after + page_size, upto), topics=topics
        )


class SwitchOverHook(Protocol):
    """Work done inside a rebuild's switch-over, in its transaction: the
    tracking rows of the projections it switches are locked and their new
    versions caught up to the head, and are made live right after the hook
    returns. What the hook writes commits with the switch-over (a record of
    it, say); if the hook raises, the switch-over is rolled back and the
    rebuild fails, to resume from where it stood when run again."""

    def __call__(self, conn: Connection, /) -> None: ...


class Entry(NamedTuple):
    """An event's contribution to the figures of one key."""

    position: int
    key: tuple[Any, ...]
    measures: tuple[int, ...]


@dataclass
class PageResult:
    entries: list[Entry] = field(default_factory=list)
    dead_letters: list[tuple[RecordedEvent, str]] = field(default_factory=list)


class Projection(ABC):
    """A named projection: the events it reads, its entries table, its fold.

    The fold is pure: ``evolve`` turns one event into the entries it
    contributes, from the event alone. Events carry what they count for (a
    session event names its volunteer, venue, category and period; an order
    event its venue, kind and posting time), so no projection has to
    remember anything between events, and replays need no state.
    """

    name: ClassVar[str]
    topics: ClassVar[frozenset[str]]
    entries: ClassVar[sa.Table]
    key_columns: ClassVar[tuple[str, ...]]
    measure_columns: ClassVar[tuple[str, ...]]
    # A key column whose values' last changes are tracked (reads select by it).
    change_scope: ClassVar[str | None] = None

    @abstractmethod
    def evolve(self, event: RecordedEvent) -> list[Entry]:
        """The entries one event contributes; raise to refuse a bad event."""

    def fold(self, events: Sequence[RecordedEvent]) -> PageResult:
        """The entries a page of events contributes, and the events refused."""
        result = PageResult()
        for recorded in events:
            try:
                result.entries.extend(self.evolve(recorded))
            except Exception as error:
                result.dead_letters.append(
                    (recorded, f"{type(error).__name__}: {error}")
                )
        return result

    def write_entries(
        self, conn: Connection, version: int, entries: Sequence[Entry]
    ) -> None:
        if entries:
            insert_rows(
                conn,
                self.entries,
                [
                    (version, entry.position, *entry.key, *entry.measures)
                    for entry in entries
                ],
                ("version", "position", *self.key_columns, *self.measure_columns),
            )

    def figures(
        self, conn: Connection, version: int, position: int
    ) -> dict[tuple[Any, ...], tuple[int, ...]]:
        """Every key's figures as of ``position`` (all-zero keys left out)."""
        table = self.entries.c
        keys = [table[name] for name in self.key_columns]
        sums = [sa.func.sum(table[name]) for name in self.measure_columns]
        query = (
            sa.select(*keys, *sums)
            .where(table.version == version, table.position <= position)
            .group_by(*keys)
        )
        figures: dict[tuple[Any, ...], tuple[int, ...]] = {}
        width = len(keys)
        for row in conn.execute(query):
            measures = tuple(int(value or 0) for value in row[width:])
            if any(measures):
                figures[tuple(row[:width])] = measures
        return figures

    def explain(
        self,
        conn: Connection,
        version: int,
        position: int,
        *conditions: sa.ColumnElement[bool],
        among: tuple[str, Collection[Any]] | None = None,
        after: int = 0,
        events: int | None = None,
    ) -> ExplainedPage:
        """The entries behind some figures, in ledger order: every entry up to
        ``position`` that meets ``conditions`` (and, given ``among``, whose
        column holds one of the values), with its event's position; those of
        the first ``events`` events after position ``after`` (default: all)."""
        table = self.entries.c
        chosen = (
            table.version == version,
            table.position > after,
            table.position <= position,
            *conditions,
        )
        column, values = among if among is not None else ("position", None)
        upto, next_after = position, None
        if events is not None:
            firsts = sa.select(table.position).where(*chosen).distinct()
            firsts = firsts.order_by(table.position).limit(events + 1)
            found = select_rows_among(conn, firsts, table[column], values)
            positions = sorted({int(row[0]) for row in found})
            if len(positions) > events:
                upto = next_after = positions[events - 1]
        names = (*self.key_columns, *self.measure_columns)
        query = sa.select(table.position, *(table[name] for name in names))
        query = query.where(*chosen, table.position <= upto)
        rows = select_rows_among(conn, query, table[column], values)
        rows.sort(key=lambda row: int(row[0]))
        entries = [
            {"position": row[0], **dict(zip(names, row[1:], strict=True))}
            for row in rows
        ]
        return ExplainedPage(entries, next_after)

    def contributions(
        self, conn: Connection, version: int, position: int
    ) -> Contributions:
        """What each event up to ``position`` contributes to each key: the
        content as-of reads and explanations stand on."""
        table = self.entries.c
        columns = [table[name] for name in (*self.key_columns, *self.measure_columns)]
        rows = select_rows(
            conn,
            sa.select(table.position, *columns).where(
                table.version == version, table.position <= position
            ),
        )
        width = len(self.key_columns)
        return _summed(
            Entry(row[0], tuple(row[1 : width + 1]), tuple(row[width + 1 :]))
            for row in rows
        )

    def replay_contributions(self, events: Iterable[RecordedEvent]) -> Replayed:
        """What a fresh replay of ``events`` contributes, in memory, and the
        positions of the events its fold refuses."""
        entries: list[Entry] = []
        refused: list[int] = []
        for recorded in events:
            try:
                entries.extend(self.evolve(recorded))
            except Exception:
                refused.append(recorded.position)
        return Replayed(_summed(entries), tuple(refused))

    def replay(
        self, events: Iterable[RecordedEvent]
    ) -> dict[tuple[Any, ...], tuple[int, ...]]:
        """The figures a fresh replay of ``events`` gives, in memory."""
        totals: dict[tuple[Any, ...], list[int]] = defaultdict(
            lambda: [0] * len(self.measure_columns)
        )
        contributed = self.replay_contributions(events).contributions
        for (_, key), measures in contributed.items():
            sums = totals[key]
            for index, value in enumerate(measures):
                sums[index] += value
        return {key: tuple(sums) for key, sums in totals.items() if any(sums)}


class ExplainedPage(NamedTuple):
    entries: list[dict[str, Any]]
    # The position to continue after, when more entries follow (else None).
    next_after: int | None


# An event's contribution to one key's figures: (position, key) -> measures.
Contributions = dict[tuple[int, tuple[Any, ...]], tuple[int, ...]]


class Replayed(NamedTuple):
    contributions: Contributions
    refused: tuple[int, ...]


def _summed(entries: Iterable[Entry]) -> Contributions:
    """Entries summed by event and key, the all-zero sums left out."""
    sums: dict[tuple[int, tuple[Any, ...]], list[int]] = {}
    for position, key, measures in entries:
        found = sums.get((position, key))
        if found is None:
            sums[(position, key)] = [int(value) for value in measures]
        else:
            for index, value in enumerate(measures):
                found[index] += int(value)
    return {at: tuple(total) for at, total in sums.items() if any(total)}


def fingerprint(contributions: Contributions) -> str:
    """A deterministic digest of a projection's content: every event's
    contribution to every key."""
    digest = hashlib.sha256()
    for at in sorted(contributions, key=_contribution_order):
        position, key = at
        digest.update(orjson.dumps([position, list(key), list(contributions[at])]))
        digest.update(b"\n")
    return digest.hexdigest()


def _contribution_order(at: tuple[int, tuple[Any, ...]]) -> tuple[int, tuple[str, ...]]:
    return at[0], _sort_key(at[1])


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)


# --- engine --------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    state: str
    position: int


@dataclass(frozen=True)
class LiveState:
    """What a read of a projection stands on: its live version and position,
    the ledger's head, the events parked in that version, and where the
    version last changed (known only when its changes are noted through its
    position)."""

    version: int
    position: int
    head: int
    dead_letters: int
    changes_noted: bool  # through the version's position
    last_change: int | None  # of the version as a whole, when noted


_LIVE_STATE = sa.select(
    projection_versions_table.c.version,
    projection_versions_table.c.position,
    sa.select(sa.func.max(events_table.c.position)).scalar_subquery(),
    sa.select(sa.func.count())
    .where(
        dead_letters_table.c.name == projection_versions_table.c.name,
        dead_letters_table.c.version == projection_versions_table.c.version,
    )
    .scalar_subquery(),
    sa.select(projection_changes_table.c.position)
    .where(
        projection_changes_table.c.name == projection_versions_table.c.name,
        projection_changes_table.c.version == projection_versions_table.c.version,
        projection_changes_table.c.scope == WHOLE_VERSION,
    )
    .scalar_subquery(),
    sa.select(projection_changes_noted_table.c.upto)
    .where(
        projection_changes_noted_table.c.name == projection_versions_table.c.name,
        projection_changes_noted_table.c.version == projection_versions_table.c.version,
    )
    .scalar_subquery(),
).where(
    projection_versions_table.c.name == sa.bindparam("name"),
    projection_versions_table.c.state == LIVE,
)


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


@dataclass(frozen=True)
class Difference:
    """What the event at ``position`` contributes to ``key``: live and replayed."""

    position: int
    key: tuple[Any, ...]
    live: tuple[int, ...] | None
    replayed: tuple[int, ...] | None


@dataclass(frozen=True)
class VerificationResult:
    name: str
    position: int
    live_fingerprint: str
    replay_fingerprint: str
    differences: tuple[Difference, ...]
    dead_letters: int
    # Events the replay's fold refuses that the live version has not parked.
    refused_unparked: tuple[int, ...] = ()
    has_live_version: bool = True

    @classmethod
    def missing(cls, name: str) -> VerificationResult:
        """A projection with no live version cannot be read, so it fails."""
        return cls(name, 0, "", "", (), 0, has_live_version=False)

    @property
    def ok(self) -> bool:
        return (
            self.has_live_version
            and self.live_fingerprint == self.replay_fingerprint
            and not self.dead_letters
            and not self.refused_unparked
        )


class ProjectionEngine:
    """Runs projections over the ledger: catch up, follow, rebuild, verify.

    ``read_events`` reads the pages of events the folds are given (by default
    straight from the stored JSON; see ``EventReader``). ``before_switch_over``
    runs inside every rebuild's switch-over, in its transaction, just before
    the new versions are made live (see ``SwitchOverHook``).
    """

    def __init__(
        self,
        database: Database,
        projections: Sequence[Projection],
        *,
        read_events: EventReader = read_events,
        before_switch_over: SwitchOverHook | None = None,
    ) -> None:
        self.database = database
        self.projections = {projection.name: projection for projection in projections}
        self._read_events = read_events
        self._before_switch_over = before_switch_over
        self._earlier_changes_noted = False

    def projection(self, name: str) -> Projection:
        try:
            return self.projections[name]
        except KeyError:
            known = ", ".join(sorted(self.projections))
            raise KeyError(f"unknown projection '{name}': known are {known}") from None

    # --- versions ------------------------------------------------------

    def versions(self, conn: Connection) -> list[VersionInfo]:
        rows = conn.execute(
            sa.select(projection_versions_table).order_by(
                projection_versions_table.c.name, projection_versions_table.c.version
            )
        )
        return [VersionInfo(r.name, r.version, r.state, r.position) for r in rows]

    def live_version(self, conn: Connection, name: str) -> VersionInfo | None:
        t = projection_versions_table.c
        row = conn.execute(
            sa.select(projection_versions_table).where(t.name == name, t.state == LIVE)
        ).first()
        return (
            VersionInfo(row.name, row.version, row.state, row.position) if row else None
        )

    @staticmethod
    def live_state(conn: Connection, name: str) -> LiveState | None:
        """One query, as every read starts with it."""
        row = conn.execute(_LIVE_STATE, {"name": name}).first()
        if row is None:
            return None
        version, position, head, dead_letters, last, noted_upto = row
        noted = noted_upto == position
        last = last if noted else None
        return LiveState(version, position, int(head or 0), dead_letters, noted, last)

    def ensure_live_versions(self) -> None:
        """Give every projection a live version (empty, at position 0)."""
        with self.database.reading() as conn:
            live = {v.name for v in self.versions(conn) if v.state == LIVE}
        if live >= self.projections.keys():
            return
        with self._changing_versions() as conn:
            live = {v.name for v in self.versions(conn) if v.state == LIVE}
            for name in self.projections.keys() - live:
                self._insert_version(conn, name, LIVE)

    def note_earlier_changes(self) -> None:
        """Note, from their entries, where versions whose notes fall short of
        their position last changed (a database from before changes were
        noted, or a version moved on without noting them); once per engine."""
        if self._earlier_changes_noted:
            return
        with self.database.reading() as conn:
            behind = self._versions_noted_short(conn)
        if behind:
            with self._changing_versions() as conn:
                for found in self._versions_noted_short(conn):
                    self._note_from_entries(conn, found)
        self._earlier_changes_noted = True

    def _versions_noted_short(self, conn: Connection) -> list[VersionInfo]:
        n = projection_changes_noted_table.c
        noted = {
            (name, version): upto
            for name, version, upto in conn.execute(
                sa.select(n.name, n.version, n.upto)
            ).tuples()
        }
        return [
            found
            for found in self.versions(conn)
            if found.name in self.projections
            and noted.get((found.name, found.version)) != found.position
        ]

    def _note_from_entries(self, conn: Connection, found: VersionInfo) -> None:
        projection = self.projections[found.name]
        t = projection.entries.c
        ours = t.version == found.version
        last = sa.select(sa.literal(WHOLE_VERSION), sa.func.max(t.position))
        rows = list(conn.execute(last.where(ours)).tuples())
        if projection.change_scope is not None:
            scope = t[projection.change_scope]
            by_scope = sa.select(scope, sa.func.max(t.position))
            rows += conn.execute(by_scope.where(ours).group_by(scope)).tuples()
        c = projection_changes_table.c
        conn.execute(
            projection_changes_table.delete().where(
                c.name == found.name, c.version == found.version
            )
        )
        changes = [
            (found.name, found.version, str(scope), at)
            for scope, at in rows
            if at is not None
        ]
        if changes:
            insert_rows(conn, projection_changes_table, changes)
        _note_upto(conn, found.name, found.version, found.position)

    @contextmanager
    def _changing_versions(self) -> Iterator[Connection]:
        """A transaction that adds versions, serialised against any other
        (SQLite writers are serialised anyway; PostgreSQL needs the lock)."""
        with self.database.writing(durable=False) as conn:
            if not self.database.is_sqlite:
                conn.exec_driver_sql(
                    "LOCK TABLE projection_versions IN SHARE ROW EXCLUSIVE MODE"
                )
            yield conn

    def _insert_version(self, conn: Connection, name: str, state: str) -> int:
        t = projection_versions_table.c
        latest = conn.execute(
            sa.select(sa.func.max(t.version)).where(t.name == name)
        ).scalar()
        version = (latest or 0) + 1
        conn.execute(
            projection_versions_table.insert().values(
                name=name,
                version=version,
                state=state,
                position=0,
                updated_at=utc_text(datetime.now(UTC)),
            )
        )
        return version

    # --- catching up -----------------------------------------------------

    def catch_up(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        state: str = LIVE,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Bring the named projections' ``state`` versions up to the head."""
        self.ensure_live_versions()
        self.note_earlier_changes()
        started = time.perf_counter()
        report = CatchUpReport()
        selected = list(names or self.projections)
        with cyclic_gc_paused():
            while True:
                # Read and fold without the write lock (writers and other
                # runners go on meanwhile); then commit what is still current.
                with self.database.reading() as conn:
                    page = self._read_page(conn, selected, state, page_size)
                if isinstance(page, ProcessedPage):
                    done = page
                else:
                    folded = self._fold_page(page)
                    with self.database.writing(durable=False) as conn:
                        all_written = self._commit_page(conn, page, folded, report)
                    # a version skipped (moved or switched over meanwhile) is
                    # read again from where it now stands
                    done = ProcessedPage(
                        page.end, page.end >= page.head and all_written
                    )
                report.position = done.end
                if on_page:
                    on_page(done.end)
                if done.done:
                    break
        report.seconds = time.perf_counter() - started
        return report

    def _read_page(
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
        events = self._read_events(conn, after=start, upto=end, topics=topics)
        return EventPage(head, end, versions, events)

    def _fold_page(self, page: EventPage) -> dict[VersionInfo, FoldedPage]:
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

    def _commit_page(
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
        _record_changes(conn, projection, found.version, result.entries)
        _note_upto(conn, found.name, found.version, end)

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
                _record_changes(conn, projection, found.version, entries)
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

    def follow(
        self,
        *,
        poll_seconds: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        on_report: Callable[[CatchUpReport], None] | None = None,
    ) -> None:
        """Keep the live projections current until ``should_stop`` says so."""
        while not should_stop():
            report = self.catch_up()
            if on_report and any(report.events.values()):
                on_report(report)
            time.sleep(poll_seconds)

    # --- rebuilding ------------------------------------------------------

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        on_page: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> CatchUpReport:
        """Replay from the first event into new versions, then switch over.

        With ``workers`` above 1 the projections are shared out among that
        many forked processes, each catching its share up on its own (a page
        is folded outside the write lock, so they overlap), unless this
        process runs other threads; ``on_page`` is then not available. A
        rebuild that was interrupted is resumed from where it stopped.
        """
        selected = list(names or self.projections)
        self.ensure_live_versions()
        with self._changing_versions() as conn:
            building = {v.name for v in self.versions(conn) if v.state == BUILDING}
            for name in selected:
                if name not in building:
                    self._insert_version(conn, name, BUILDING)
        if on_page is not None and workers > 1:
            raise ValueError("on_page needs a rebuild in one process")
        shares = self._share_out(selected, workers) if workers > 1 else [selected]
        if len(shares) > 1:
            report = self._catch_up_in_processes(shares, page_size)
        else:
            report = self.catch_up(
                selected, page_size=page_size, state=BUILDING, on_page=on_page
            )
        self._switch_over(selected, page_size)
        self._drop_retired(selected)
        return report

    def _share_out(self, names: Sequence[str], workers: int) -> list[list[str]]:
        """The projections in at most ``workers`` shares of about equal work
        (the events each reads), the heaviest placed first."""
        if (
            "fork" not in multiprocessing.get_all_start_methods()
            or threading.active_count() > 1
        ):
            # No cheap way to share the engine out; and a fork of a process
            # running other threads could copy a lock one of them holds (the
            # HTTP server, say), so such a caller rebuilds in its own process.
            return [list(names)]
        e = events_table.c
        with self.database.reading() as conn:
            counted = conn.execute(
                sa.select(e.topic, sa.func.count()).group_by(e.topic)
            )
            by_topic = {topic: int(count) for topic, count in counted}
        work = {
            name: sum(by_topic.get(topic, 0) for topic in self.projection(name).topics)
            for name in names
        }
        shares: list[list[str]] = [[] for _ in range(min(workers, len(names)))]
        loads = [0] * len(shares)
        for name in sorted(names, key=lambda n: (-work[n], n)):
            lightest = loads.index(min(loads))
            shares[lightest].append(name)
            loads[lightest] += work[name]
        return [share for share in shares if share]

    def _catch_up_in_processes(
        self, shares: Sequence[Sequence[str]], page_size: int
    ) -> CatchUpReport:
        """Catch each share's building versions up in its own process."""
        started = time.perf_counter()
        context = multiprocessing.get_context("fork")
        reports = context.SimpleQueue()
        processes = [
            context.Process(
                target=self._catch_up_share,
                args=(share, page_size, reports, os.getpid()),
                name=f"rebuild {', '.join(share)}",
            )
            for share in shares
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.name for p in processes if p.exitcode != 0]
        if failed:
            raise RuntimeError(
                f"rebuild worker failed ({'; '.join(failed)}); "
                "run the rebuild again to resume it"
            )
        report = CatchUpReport(processes=len(processes))
        while not reports.empty():
            share_report = reports.get()
            for mine, theirs in (
                (report.events, share_report.events),
                (report.entries, share_report.entries),
                (report.dead_letters, share_report.dead_letters),
            ):
                mine.update(theirs)
            report.position = max(report.position, share_report.position)
        report.seconds = time.perf_counter() - started
        return report

    def _catch_up_share(
        self,
        share: Sequence[str],
        page_size: int,
        reports: multiprocessing.queues.SimpleQueue[CatchUpReport],
        parent: int,
    ) -> None:
        # A forked child must not use the parent's pooled connections.
        self.database.engine.dispose(close=False)

        def stop_if_orphaned(_position: int) -> None:
            # The rebuild that started this share died: stop after the page
            # (what is committed stays; running the rebuild again resumes).
            if os.getppid() != parent:
                raise SystemExit(1)

        reports.put(
            self.catch_up(
                share, page_size=page_size, state=BUILDING, on_page=stop_if_orphaned
            )
        )

    def _switch_over(self, names: Sequence[str], page_size: int) -> None:
        """Catch the new versions up to the head and make them live, atomically."""
        while True:
            with self.database.writing(durable=False) as conn:
                # The live versions too, before the head is read: a follower
                # moving one past that head meanwhile would see it retired for
                # a version standing behind it, and reads go back in time.
                locked = _lock_versions(conn, names, (LIVE, BUILDING))
                page = self._read_page(conn, names, BUILDING, page_size, lock=True)
                if isinstance(page, EventPage):
                    folded = self._fold_page(page)
                    self._commit_page(conn, page, folded, CatchUpReport())
                    page = ProcessedPage(page.end, page.end >= page.head)
                if page.done:
                    if self._before_switch_over is not None:
                        self._before_switch_over(conn)
                    self._make_live(conn, locked, page.end)
            if page.done:
                return

    def _make_live(
        self, conn: Connection, locked: Sequence[tuple[str, int]], reached: int
    ) -> None:
        """Make live each building version this switch-over locked that has
        reached the head it read, retiring its projection's live version. A
        building version another rebuild inserted since the locks were taken
        is left alone: it has yet to be caught up. (A rebuild that finds its
        version switched over already, by an overlapping one, changes
        nothing.)"""
        t = projection_versions_table.c
        mine = sa.tuple_(t.name, t.version).in_(locked)
        caught_up = conn.execute(
            sa.select(t.name, t.version)
            .where(mine, t.state == BUILDING, t.position >= reached)
            .order_by(t.name, t.version)
        )
        # One a projection, the latest (a rebuild makes none while one builds).
        latest: dict[str, int] = {name: version for name, version in caught_up}
        built = list(latest.items())
        if not built:
            return
        conn.execute(
            projection_versions_table.update()
            .where(mine, t.name.in_([name for name, _ in built]), t.state == LIVE)
            .values(state=RETIRED)
        )
        conn.execute(
            projection_versions_table.update()
            .where(sa.tuple_(t.name, t.version).in_(built))
            .values(state=LIVE, updated_at=utc_text(datetime.now(UTC)))
        )

    def _drop_retired(self, names: Sequence[str]) -> None:
        t = projection_versions_table.c
        with self.database.writing(durable=False) as conn:
            # Locked first: a runner that read a page before the switch-over
            # may still be waiting on these rows.
            for name, version in _lock_versions(conn, names, (RETIRED,)):
                projection = self.projections[name]
                entries = projection.entries
                conn.execute(entries.delete().where(entries.c.version == version))
                for table in (
                    dead_letters_table,
                    projection_changes_table,
                    projection_changes_noted_table,
                ):
                    conn.execute(
                        table.delete().where(
                            table.c.name == name, table.c.version == version
                        )
                    )
                conn.execute(
                    projection_versions_table.delete().where(
                        t.name == name, t.version == version
                    )
                )

    # --- verifying -------------------------------------------------------

    def verify(self, names: Sequence[str] | None = None) -> list[VerificationResult]:
        """Compare every live projection with a fresh replay in memory: what
        each event contributes to each key (so a figure, an as-of read and an
        explanation all stand checked), and which events were parked."""
        results = []
        for name in names or sorted(self.projections):
            projection = self.projections[name]
            with self.database.reading() as conn:
                live = self.live_version(conn, name)
                if live is None:
                    results.append(VerificationResult.missing(name))
                    continue
                stored = projection.contributions(conn, live.version, live.position)
                parked = parked_positions(conn, name, live.version)
                replayed = projection.replay_contributions(
                    iter_events(
                        conn,
                        upto=live.position,
                        topics=projection.topics,
                        reader=self._read_events,
                    )
                )
            contributed = replayed.contributions
            live_fingerprint = fingerprint(stored)
            differences: tuple[Difference, ...] = ()
            if contributed != stored:  # else spare the sorting and digesting
                differences = tuple(
                    Difference(*at, stored.get(at), contributed.get(at))
                    for at in sorted(
                        set(stored) | set(contributed), key=_contribution_order
                    )
                    if stored.get(at) != contributed.get(at)
                )
            results.append(
                VerificationResult(
                    name=name,
                    position=live.position,
                    live_fingerprint=live_fingerprint,
                    replay_fingerprint=(
                        fingerprint(contributed) if differences else live_fingerprint
                    ),
                    differences=differences,
                    dead_letters=len(parked),
                    refused_unparked=tuple(
                        at for at in replayed.refused if at not in parked
                    ),
                )
            )
        return results


def _lock_versions(
    conn: Connection, names: Sequence[str], states: Sequence[str]
) -> list[tuple[str, int]]:
    """Lock the tracking rows of ``names`` in ``states``, in (name, version)
    order as every runner locks them, so runners may wait for each other but
    never in a cycle; returns their (name, version)."""
    t = projection_versions_table.c
    rows = conn.execute(
        sa.select(t.name, t.version)
        .where(t.name.in_(names), t.state.in_(states))
        .order_by(t.name, t.version)
        .with_for_update()
    )
    return [(name, version) for name, version in rows]


def _record_changes(
    conn: Connection, projection: Projection, version: int, entries: Sequence[Entry]
) -> None:
    """Note where this page changed the version, as a whole and per scope."""
    if not entries:
        return
    last: dict[str, int] = {WHOLE_VERSION: max(entry.position for entry in entries)}
    if projection.change_scope is not None:
        index = projection.key_columns.index(projection.change_scope)
        for entry in entries:
            scope = str(entry.key[index])
            last[scope] = max(last.get(scope, 0), entry.position)
    t = projection_changes_table.c
    conn.execute(
        projection_changes_table.delete().where(
            t.name == projection.name,
            t.version == version,
            t.scope.in_(sa.bindparam("scopes", expanding=True)),
        ),
        {"scopes": list(last)},
    )
    insert_rows(
        conn,
        projection_changes_table,
        [(projection.name, version, scope, at) for scope, at in last.items()],
    )


def _note_upto(conn: Connection, name: str, version: int, position: int) -> None:
    n = projection_changes_noted_table.c
    conn.execute(
        projection_changes_noted_table.delete().where(
            n.name == name, n.version == version
        )
    )
    insert_rows(conn, projection_changes_noted_table, [(name, version, position)])


def last_change(
    conn: Connection,
    name: str,
    version: int,
    scopes: Sequence[str] = (WHOLE_VERSION,),
) -> int | None:
    """The latest position at which any of ``scopes`` changed in the version
    (None: never), as far as the version has processed."""
    # Straight to the driver: reads ask this for every answer.
    mark = placeholder(conn)
    found: list[int] = []
    for start in range(0, len(scopes), LOOKUP_CHUNK):
        chunk = scopes[start : start + LOOKUP_CHUNK]
        last = conn.exec_driver_sql(
            f"SELECT max(position) FROM {projection_changes_table.name} "
            f"WHERE name = {mark} AND version = {mark} "
            f"AND scope IN ({', '.join([mark] * len(chunk))})",
            (name, version, *chunk),
        ).scalar()
        if last is not None:
            found.append(int(last))
    return max(found, default=None)


def parked_positions(conn: Connection, name: str, version: int) -> frozenset[int]:
    t = dead_letters_table.c
    return frozenset(
        conn.execute(
            sa.select(t.position).where(t.name == name, t.version == version)
        ).scalars()
    )


def list_dead_letters(conn: Connection) -> list[dict[str, Any]]:
    """Every parked event of every live or building version."""
    t = dead_letters_table.c
    v = projection_versions_table.c
    rows = conn.execute(
        sa.select(dead_letters_table)
        .join(
            projection_versions_table,
            sa.and_(v.name == t.name, v.version == t.version),
        )
        .where(v.state != RETIRED)
        .order_by(t.name, t.position)
    )
    return [dict(row._mapping) for row in rows]
