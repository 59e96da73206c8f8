"""The kept roll-up of ``venue_activity``: each venue's subtree's figures
for each calendar year, month and (per year) category, distinct volunteers
included, kept as the entries are written, so that a venue's year is read
from a few rows however long the ledger.

Summing entries answers any period as of any position, but a city-wide year
reads every session's entry, and its distinct volunteers need every
volunteer's sessions gathered. The roll-up keeps instead, per projection
version, for every *node* (a venue, standing for its subtree) and *period*
(``YYYY`` with category ``*`` or a category, ``YYYY-MM`` with ``*``):

- ``presence``: each volunteer's net counted sessions there (rows at zero
  are removed): a volunteer counts while above zero, as the entries' sum does;
- ``current``: the running totals, and the positions of the first and last
  entries of the page that last changed them;
- ``history``: those totals after every page that changed them, so that a
  read as of a past position finds the totals of the last page at or before
  it, and knows them exact when the next page's first change comes later.

A node's subtree is fixed when its venues are registered (a venue never
moves), so a venue's nodes are itself and its ancestors, read from the
``Venue.Registered`` events. Writes follow the engine's pages, in ledger
order, in the transaction that moves the version on; a rebuild keeps its new
version's roll-up from the first event. Versions that were projected before
the roll-up existed are listed in ``unkept`` (by the schema revision) and
read from their entries until rebuilt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine import Entry
from ledger.projections.kept import is_unkept, unkept_versions_table, venue_nodes
from ledger.store.event_store import (
    insert_rows,
    metadata,
    placeholder,
    select_rows,
    select_rows_among,
)

ALL = "*"  # the category of a period's figures over every category
MEASURES = ("activities", "sessions", "verified_minutes", "makeup_minutes")
FIGURES = (*MEASURES, "volunteers")


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
    ]


def _totals_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in FIGURES),
    ]


presence_table = sa.Table(
    "proj_venue_activity_presence",
    metadata,
    *_key_columns(),
    sa.Column("volunteer_id", sa.String(64), nullable=False),
    sa.Column("sessions", sa.BigInteger, nullable=False),
    sa.Index(
        "proj_venue_activity_presence_key",
        "version",
        "volunteer_id",
        "period",
        "node_id",
        "category",
        unique=True,
    ),
)
current_table = sa.Table(
    "proj_venue_activity_current",
    metadata,
    *_key_columns(),
    *_totals_columns(),
    sa.Index(
        "proj_venue_activity_current_key",
        "version",
        "node_id",
        "period",
        "category",
        unique=True,
    ),
)
history_table = sa.Table(
    "proj_venue_activity_history",
    metadata,
    *_key_columns(),
    *_totals_columns(),
    sa.Index(
        "proj_venue_activity_history_key",
        "version",
        "node_id",
        "period",
        "category",
        "position",
    ),
)
unkept_table = unkept_versions_table("venue_activity")
ROLLUP_TABLES = (presence_table, current_table, history_table, unkept_table)

RollupKey = tuple[str, str, str]  # node, period, category


@dataclass
class _PageChanges:
    """What a page of entries changes in the roll-up, before presence."""

    sums: dict[RollupKey, list[int]] = field(default_factory=dict)
    span: dict[RollupKey, tuple[int, int]] = field(default_factory=dict)
    # (node, period, category, volunteer) -> net sessions
    sessions: dict[tuple[str, str, str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )


def rollup_keys(node: str, month: str, category: str) -> tuple[RollupKey, ...]:
    """The roll-up figures one entry at ``node`` changes."""
    year = month[:4]
    return (node, month, ALL), (node, year, ALL), (node, year, category)


def keep_rollup(conn: Connection, version: int, entries: Sequence[Entry]) -> None:
    """Fold a page's ``venue_activity`` entries (in ledger order) into the
    version's kept roll-up."""
    if not entries or is_unkept(conn, unkept_table, version):
        return
    # First by venue, month and category (and volunteer): far fewer groups
    # than entries to carry up the tree.
    groups: dict[tuple[str, str, str], list[int]] = {}
    people: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for position, key, (activities, sessions, minutes) in entries:
        venue_id, month, category, kind, volunteer_id = key
        group = groups.get((venue_id, month, category))
        if group is None:  # activities, sessions, verified, make-up, span
            group = groups[(venue_id, month, category)] = [0, 0, 0, 0, position, 0]
        group[0] += activities
        group[1] += sessions
        if kind == "verified":
            group[2] += minutes
        elif kind == "makeup":
            group[3] += minutes
        group[5] = position
        if volunteer_id and sessions:
            people[(venue_id, month, category, volunteer_id)] += sessions
    nodes = venue_nodes(conn, {venue_id for venue_id, _, _ in groups})
    changes = _PageChanges()
    for (venue_id, month, category), group in groups.items():
        for node in nodes[venue_id]:
            for rollup in rollup_keys(node, month, category):
                sums = changes.sums.setdefault(rollup, [0] * len(FIGURES))
                for index in range(len(MEASURES)):
                    sums[index] += group[index]
                first, last = changes.span.get(rollup, (group[4], group[5]))
                changes.span[rollup] = (min(first, group[4]), max(last, group[5]))
    for (venue_id, month, category, volunteer_id), sessions in people.items():
        for node in nodes[venue_id]:
            for node_, period, category_ in rollup_keys(node, month, category):
                changes.sessions[(node_, period, category_, volunteer_id)] += sessions
    _apply_presence(conn, version, changes)
    _apply_totals(conn, version, changes)


def _apply_presence(conn: Connection, version: int, changes: _PageChanges) -> None:
    """Update the volunteers' net sessions; count those who come (above
    zero) and go (back to zero) into the page's volunteer figures."""
    if not changes.sessions:
        return
    p = presence_table.c
    periods = sorted({period for _, period, _, _ in changes.sessions})
    query = sa.select(p.node_id, p.period, p.category, p.volunteer_id, p.sessions)
    query = query.where(p.version == version, p.period.in_(periods))
    volunteers = {volunteer for *_, volunteer in changes.sessions}
    before = {
        (node, period, category, volunteer): int(sessions)
        for node, period, category, volunteer, sessions in select_rows_among(
            conn, query, p.volunteer_id, volunteers
        )
    }
    inserted, updated, removed = [], [], []
    volunteers_at = FIGURES.index("volunteers")
    for key, delta in changes.sessions.items():
        if delta == 0:
            continue
        old = before.get(key, 0)
        new = old + delta
        changes.sums[key[:3]][volunteers_at] += (new > 0) - (old > 0)
        node, period, category, volunteer = key
        if key not in before:
            inserted.append((version, node, period, category, volunteer, new))
        elif new == 0:
            removed.append((version, volunteer, period, node, category))
        else:
            updated.append((new, version, volunteer, period, node, category))
    if inserted:
        insert_rows(conn, presence_table, inserted)
    mark = placeholder(conn)
    where = (
        f"version = {mark} AND volunteer_id = {mark} AND period = {mark} "
        f"AND node_id = {mark} AND category = {mark}"
    )
    if updated:
        conn.exec_driver_sql(
            f"UPDATE {presence_table.name} SET sessions = {mark} WHERE {where}",
            updated,
        )
    if removed:
        conn.exec_driver_sql(
            f"DELETE FROM {presence_table.name} WHERE {where}", removed
        )


def _apply_totals(conn: Connection, version: int, changes: _PageChanges) -> None:
    """Move the running totals of every figure the page changed on, and
    keep them in the history at the page's last change."""
    c = current_table.c
    columns = [c[name] for name in FIGURES]
    query = sa.select(c.node_id, c.period, c.category, *columns)
    query = query.where(
        c.version == version, c.period.in_(sorted({k[1] for k in changes.sums}))
    )
    nodes = {node for node, _, _ in changes.sums}
    before = {
        (node, period, category): figures
        for node, period, category, *figures in select_rows_among(
            conn, query, c.node_id, nodes
        )
    }
    rows, updated = [], []
    for key, delta in changes.sums.items():
        since, position = changes.span[key]
        old = before.get(key, (0,) * len(FIGURES))
        figures = tuple(int(a) + b for a, b in zip(old, delta, strict=True))
        rows.append((version, *key, since, position, *figures))
        if key in before:
            updated.append((since, position, *figures, version, *key))
    insert_rows(conn, history_table, rows)
    added = [row for row in rows if row[1:4] not in before]
    if added:
        insert_rows(conn, current_table, added)
    if updated:
        mark = placeholder(conn)
        names = ("since", "position", *FIGURES)
        conn.exec_driver_sql(
            f"UPDATE {current_table.name} SET "
            + ", ".join(f"{name} = {mark}" for name in names)
            + f" WHERE version = {mark} AND node_id = {mark} "
            f"AND period = {mark} AND category = {mark}",
            updated,
        )


def kept_year(
    conn: Connection, version: int, node: str, year: str, position: int
) -> dict[tuple[str, str], tuple[int, ...]] | None:
    """The kept figures of ``node``'s subtree in ``year`` as of
    ``position``: by (period, category) — the year by ``*`` and by each
    category, each month by ``*`` — only those with entries by then; None
    when they are not kept exactly there (the version is unkept, or a page
    that changed them spans ``position``): sum the entries instead."""
    if is_unkept(conn, unkept_table, version):
        return None
    c = current_table.c
    columns = [c[name] for name in FIGURES]
    query = sa.select(c.period, c.category, c.position, *columns).where(
        c.version == version,
        c.node_id == node,
        c.period.in_([year, *(f"{year}-{month:02}" for month in range(1, 13))]),
    )
    figures: dict[tuple[str, str], tuple[int, ...]] = {}
    behind: list[tuple[str, str]] = []
    for period, category, last, *values in select_rows(conn, query):
        if int(last) <= position:
            figures[(period, category)] = tuple(int(value) for value in values)
        else:
            behind.append((period, category))
    for period, category in behind:
        found = _kept_at(conn, version, (node, period, category), position)
        if found is None:
            return None
        if found:
            figures[(period, category)] = found
    return figures


def _kept_at(
    conn: Connection, version: int, key: RollupKey, position: int
) -> tuple[int, ...] | None:
    """One figure's totals as of ``position`` from the history: () when it
    had no entries yet, None when the page that changed it next spans it."""
    h = history_table.c
    node, period, category = key
    same = (
        h.version == version,
        h.node_id == node,
        h.period == period,
        h.category == category,
    )
    later = conn.execute(
        sa.select(h.since)
        .where(*same, h.position > position)
        .order_by(h.position)
        .limit(1)
    ).scalar()
    if later is not None and int(later) <= position:
        return None
    row = conn.execute(
        sa.select(*(h[name] for name in FIGURES))
        .where(*same, h.position <= position)
        .order_by(h.position.desc())
        .limit(1)
    ).first()
    return () if row is None else tuple(int(value) for value in row)
