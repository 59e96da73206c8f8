"""Where each projection version stands: the tracking tables (versions,
parked events, change notes), the version states, and the helpers that read
and write them.

The engine keeps one row per (projection, version) in
``projection_versions`` with its state (building, live, retired) and the
position it has processed up to; every runner locks these rows in (name,
version) order, so runners may wait for each other but never in a cycle.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine.projection import Entry, Projection
from ledger.store.chain import GENESIS_HASH
from ledger.store.event_store import (
    LOOKUP_CHUNK,
    Database,
    events_table,
    insert_rows,
    metadata,
    placeholder,
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
    # The chain hash at ``reached``: a read of the present cites it.
    reached_hash: str

    @property
    def reached(self) -> int:
        """Where a read of the present stands: the version's position, or
        the head when the version is ahead of what this read can see."""
        return min(self.head, self.position)


_HEAD = sa.select(sa.func.max(events_table.c.position)).scalar_subquery()
_REACHED = sa.case(
    (projection_versions_table.c.position > _HEAD, _HEAD),
    else_=projection_versions_table.c.position,
)
_LIVE_STATES = sa.select(
    projection_versions_table.c.name,
    projection_versions_table.c.version,
    projection_versions_table.c.position,
    _HEAD,
    sa.select(events_table.c.chain_hash)
    .where(events_table.c.position == _REACHED)
    .scalar_subquery(),
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
    projection_versions_table.c.name.in_(sa.bindparam("names", expanding=True)),
    projection_versions_table.c.state == LIVE,
)


def list_versions(conn: Connection) -> list[VersionInfo]:
    """Every version of every projection, in (name, version) order."""
    rows = conn.execute(
        sa.select(projection_versions_table).order_by(
            projection_versions_table.c.name, projection_versions_table.c.version
        )
    )
    return [VersionInfo(r.name, r.version, r.state, r.position) for r in rows]


def get_live_version(conn: Connection, name: str) -> VersionInfo | None:
    t = projection_versions_table.c
    row = conn.execute(
        sa.select(projection_versions_table).where(t.name == name, t.state == LIVE)
    ).first()
    return VersionInfo(row.name, row.version, row.state, row.position) if row else None


def get_live_state(conn: Connection, name: str) -> LiveState | None:
    """One query, as every read starts with it."""
    return get_live_states(conn, (name,)).get(name)


def get_live_states(conn: Connection, names: Sequence[str]) -> dict[str, LiveState]:
    """The live states of ``names`` (those that have a live version), in
    one query: a read of a venue's figures needs its projection's and the
    venue tree's, and each statement is a round trip to PostgreSQL."""
    states = {}
    for row in conn.execute(_LIVE_STATES, {"names": list(names)}):
        name, version, position, head, reached_hash, dead_letters, last, upto = row
        noted = upto == position
        states[name] = LiveState(
            version,
            position,
            int(head or 0),
            dead_letters,
            noted,
            last if noted else None,
            reached_hash or GENESIS_HASH,
        )
    return states


@contextmanager
def changing_versions(database: Database) -> Iterator[Connection]:
    """A transaction that adds versions, serialised against any other
    (SQLite writers are serialised anyway; PostgreSQL needs the lock)."""
    with database.writing(durable=False) as conn:
        if not database.is_sqlite:
            conn.exec_driver_sql(
                "LOCK TABLE projection_versions IN SHARE ROW EXCLUSIVE MODE"
            )
        yield conn


def insert_version(conn: Connection, name: str, state: str) -> int:
    """Add the projection's next version, in ``state`` at position 0 (inside
    ``changing_versions``); returns its number."""
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


def ensure_live_versions(database: Database, names: Collection[str]) -> None:
    """Give every named projection a live version (empty, at position 0)."""
    wanted = set(names)
    with database.reading() as conn:
        live = {v.name for v in list_versions(conn) if v.state == LIVE}
    if live >= wanted:
        return
    with changing_versions(database) as conn:
        live = {v.name for v in list_versions(conn) if v.state == LIVE}
        for name in wanted - live:
            insert_version(conn, name, LIVE)


def versions_noted_short(conn: Connection, names: Collection[str]) -> list[VersionInfo]:
    """The versions of the named projections whose change notes fall short
    of their position."""
    n = projection_changes_noted_table.c
    noted = {
        (name, version): upto
        for name, version, upto in conn.execute(
            sa.select(n.name, n.version, n.upto)
        ).tuples()
    }
    return [
        found
        for found in list_versions(conn)
        if found.name in names
        and noted.get((found.name, found.version)) != found.position
    ]


def note_changes_from_entries(
    conn: Connection, projection: Projection, found: VersionInfo
) -> None:
    """Note where the version last changed, as a whole and per scope, from
    its entries, through its position."""
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
    note_upto(conn, found.name, found.version, found.position)


def lock_versions(
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


def record_changes(
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


def note_upto(conn: Connection, name: str, version: int, position: int) -> None:
    """Note that the version's changes are noted through ``position``."""
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
    """The positions of the events the version has parked."""
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


@dataclass(frozen=True)
class ProjectionLag:
    """How far a projection's live version stands behind the ledger's head:
    in events, and in seconds since the oldest event it has not processed
    was recorded (0 when it is current); with the events it has parked."""

    name: str
    position: int
    head: int
    seconds: float
    dead_letters: int

    @property
    def events(self) -> int:
        return max(0, self.head - self.position)


def list_projection_lags(
    conn: Connection, names: Collection[str], now: datetime
) -> list[ProjectionLag]:
    """Each named projection's lag at ``now``, in name order; one without a
    live version yet stands at position 0."""
    v = projection_versions_table.c
    d = dead_letters_table.c
    parked = (
        sa.select(sa.func.count())
        .where(d.name == v.name, d.version == v.version)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(v.name, v.position, parked).where(v.name.in_(names), v.state == LIVE)
    ).all()
    live = {name: (int(position), int(count)) for name, position, count in rows}
    head = int(
        conn.execute(sa.select(sa.func.max(events_table.c.position))).scalar() or 0
    )
    behind = sorted({live.get(name, (0, 0))[0] + 1 for name in names} - {head + 1})
    recorded = {
        position: datetime.fromisoformat(text)
        for position, text in conn.execute(
            sa.select(events_table.c.position, events_table.c.recorded_at).where(
                events_table.c.position.in_([p for p in behind if p <= head])
            )
        )
    }
    lags = []
    for name in sorted(names):
        position, dead_letters = live.get(name, (0, 0))
        oldest = recorded.get(position + 1)
        seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        lags.append(ProjectionLag(name, position, head, seconds, dead_letters))
    return lags
