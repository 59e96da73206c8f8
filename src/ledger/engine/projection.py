"""A projection: the events it reads, its entries table, its pure fold, and
the queries its entries answer (figures as of a position, the entries behind
them, each event's contribution and its fingerprint).

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
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine.events import RecordedEvent
from ledger.store.event_store import (
    insert_rows,
    metadata,
    select_rows_among,
    stream_rows,
)

# Rows read per round trip when entries are walked in ledger order.
STREAM_BATCH = 10_000


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


class Entry(NamedTuple):
    """An event's contribution to the figures of one key."""

    position: int
    key: tuple[Any, ...]
    measures: tuple[int, ...]


@dataclass
class PageResult:
    """What a fold made of a page: its entries, and the events it refused
    with their errors."""

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
    # Tables kept beside the entries (a roll-up, say), each with a
    # ``version`` column: written with the entries, cleared with the version.
    kept_tables: ClassVar[tuple[sa.Table, ...]] = ()

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

    def drop_version(self, conn: Connection, version: int) -> None:
        """Remove a version's rows: its entries and what is kept beside them."""
        for table in (self.entries, *self.kept_tables):
            conn.execute(table.delete().where(table.c.version == version))

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
        return summed(self.stored_entries(conn, version, position))

    def stored_entries(
        self, conn: Connection, version: int, position: int
    ) -> Iterator[Entry]:
        """The version's entries up to ``position`` in ledger order, read a
        batch at a time (the database sorts them, spilling to disk when it
        must), so that walking them all holds only a batch."""
        table = self.entries.c
        columns = [table[name] for name in (*self.key_columns, *self.measure_columns)]
        query = (
            sa.select(table.position, *columns)
            .where(table.version == version, table.position <= position)
            .order_by(table.position)
        )
        width = len(self.key_columns)
        with closing(stream_rows(conn, query, batch=STREAM_BATCH)) as rows:
            for row in rows:
                yield Entry(row[0], tuple(row[1 : width + 1]), tuple(row[width + 1 :]))

    def replay_contributions(self, events: Iterable[RecordedEvent]) -> Replayed:
        """What a fresh replay of ``events`` contributes, in memory, and the
        positions of the events its fold refuses."""
        refused: list[int] = []
        contributions = summed(self.replay_entries(events, refused.append))
        return Replayed(contributions, tuple(refused))

    def replay_entries(
        self, events: Iterable[RecordedEvent], refused: Callable[[int], None]
    ) -> Iterator[Entry]:
        """The entries a fresh replay of ``events`` contributes, one event at
        a time (so in ledger order), telling ``refused`` the position of
        each event the fold refuses."""
        for recorded in events:
            try:
                entries = self.evolve(recorded)
            except Exception:
                refused(recorded.position)
                continue
            yield from entries

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


def summed(entries: Iterable[Entry]) -> Contributions:
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
    return hashlib.sha256(content_lines(contributions)).hexdigest()


def content_lines(contributions: Contributions) -> bytes:
    """The lines a fingerprint digests: one JSON line per contribution, in
    ``contribution_order``. The lines of consecutive position ranges, fed to
    one digest in turn, digest as the lines of the whole."""
    return b"".join(
        orjson.dumps([position, list(key), list(contributions[position, key])]) + b"\n"
        for position, key in sorted(contributions, key=contribution_order)
    )


def contribution_order(at: tuple[int, tuple[Any, ...]]) -> tuple[int, tuple[str, ...]]:
    """Contributions in ledger order, then by key (keys may hold None)."""
    return at[0], _sort_key(at[1])


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)


def get_projection(projections: Mapping[str, Projection], name: str) -> Projection:
    """The projection called ``name``; an unknown name is a KeyError that
    lists the known ones."""
    try:
        return projections[name]
    except KeyError:
        known = ", ".join(sorted(projections))
        raise KeyError(f"unknown projection '{name}': known are {known}") from None
