"""The event store: one table of events in a single global, gap-free,
commit-ordered sequence, on SQLite (the embedded default) or PostgreSQL.

``LedgerRecorder`` is an ``eventsourcing`` application recorder written on
SQLAlchemy Core, so the library's ``Application``, ``Repository`` and mapper
work unchanged, while each append also writes, in the same transaction:

- the envelope of every event (actor, business time, source, idempotency
  key, correlation id) as columns, and its chain hash;
- the subjects each event concerns (for audit queries);
- the idempotency keys of the commands it records, each in its caller's
  own key space and bound to the fingerprint of the command it was first
  accepted with;
- claims: unique values owned by a stream (an ID number, a session id).

Positions are assigned by the writer itself while it holds the ledger's
append lock (``BEGIN IMMEDIATE`` on SQLite, ``LOCK TABLE … IN EXCLUSIVE
MODE`` on PostgreSQL), as ``max(position) + 1``. Appends are therefore
serialised: position N+1 is only chosen after the transaction holding N has
committed, so positions have no gaps and a reader can never see N+1 before N.
A writer waits for the lock a bounded time (``WaitLimits``) and then raises
``LedgerBusyError``; a database out of reach raises
``DatabaseUnavailableError``. See docs/architecture.md.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count, groupby
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    StoredEvent,
    Subscription,
)
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine

from ledger.domain.messages import TranslatedError
from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash

# What SQLAlchemy needs to define tables with; no schema is created from
# it: the revisions in ``ledger.store.migrations`` make the schema.
metadata = sa.MetaData()
# Where Alembic records the schema's revision (``ledger.store.schema``).
SCHEMA_VERSION_TABLE = "alembic_version"

events_table = sa.Table(
    "ledger_events",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("stream_id", sa.String(36), nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("topic", sa.String(80), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("actor_role", sa.String(40), nullable=False),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("occurred_utc", sa.String(27), nullable=False),
    sa.Column("recorded_at", sa.String(27), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("correlation_id", sa.String(64), nullable=False),
    sa.Column("chain_hash", sa.String(64), nullable=False),
    # Added by schema revision 0005 (appended, as ALTER TABLE adds them to an
    # older ledger): who sent the command — its key space — and the
    # fingerprint of a keyed command. Null on events recorded before.
    sa.Column("caller", sa.String(40)),
    sa.Column("fingerprint", sa.String(64)),
    sa.UniqueConstraint(
        "stream_id", "stream_version", name="ledger_events_stream_version"
    ),
    sa.Index("ledger_events_topic", "topic", "position"),
    sa.Index("ledger_events_actor", "actor_id", "position"),
    sa.Index("ledger_events_occurred", "occurred_utc"),
    sa.Index("ledger_events_recorded", "recorded_at"),
)

event_subjects_table = sa.Table(
    "ledger_event_subjects",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("subject_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
)

# A key belongs to its caller (each API key, ``import``, ``cli``): one row
# per (caller, key), with the fingerprint of the command first accepted
# under it (null for keys accepted before fingerprints were recorded).
idempotency_keys_table = sa.Table(
    "ledger_idempotency_keys",
    metadata,
    sa.Column("caller", sa.String(40), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
)

# Facts about how the ledger's derived tables were made: the secret its ID
# number claims are digested with, by its id (``ledger.store.integrity``).
properties_table = sa.Table(
    "ledger_properties",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

claims_table = sa.Table(
    "ledger_claims",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(64), primary_key=True),
    sa.Column("stream_id", sa.String(36), nullable=False),
)

# Each person's data key, wrapped by the master key it names: their sealed
# personal fields open with it, and are gone for good when it is deleted
# (``ledger.store.personal_data``). Added by schema revision 0006.
data_keys_table = sa.Table(
    "ledger_data_keys",
    metadata,
    sa.Column("subject_id", sa.String(64), primary_key=True),
    sa.Column("master_key_id", sa.String(64), nullable=False),
    sa.Column("wrapped_key", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
)

# The store's own tables; the whole schema is assembled in ledger.bootstrap.
STORE_TABLES = (
    events_table,
    event_subjects_table,
    idempotency_keys_table,
    claims_table,
    properties_table,
    data_keys_table,
)


LOOKUP_CHUNK = 500
# The size from which a writer keeps PostgreSQL's statistics current itself.
STATISTICS_FLOOR = 10_000


def utc_text(moment: datetime) -> str:
    """Fixed-width UTC text: sorts as time on every engine."""
    return _utc_text(moment, moment.fold)


# Cached: a batch often records many events at one moment (an honours run,
# all of them). Keyed by ``fold`` too: the two readings of a repeated wall
# time compare equal, but are an hour apart.
@functools.lru_cache(maxsize=4096)
def _utc_text(moment: datetime, _fold: int) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- fast writes -----------------------------------------------------------
#
# The ledger writes many small rows per page; handing the driver plain tuples
# through one prepared statement is several times faster than building a
# parameter dict per row.


def placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def select_rows(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """All rows of ``query`` as plain tuples, through the driver's cursor: for
    reads of many rows, where SQLAlchemy rows would cost more than the sums."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(*_driver_statement(conn, query))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def stream_rows(
    conn: Connection, query: sa.Select[Any] | str, *, batch: int
) -> Generator[tuple[Any, ...]]:
    """The rows of ``query`` as ``select_rows`` reads them, fetched ``batch``
    at a time as they are consumed, so that walking them never holds them
    all: SQLite steps its cursor, PostgreSQL reads a server-side one (other
    statements may run on ``conn`` meanwhile). Closing the generator closes
    the cursor."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        name = f"ledger_stream_{next(_STREAMS)}"
        cursor = dbapi.cursor(name)  # type: ignore[union-attr]
    else:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(*_driver_statement(conn, query))
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


# Names for server-side cursors, unique within the process.
_STREAMS = count()


def _driver_statement(conn: Connection, query: sa.Select[Any] | str) -> tuple[str, Any]:
    """``query`` as the driver takes it: its SQL and its parameters."""
    if isinstance(query, str):
        return query, ()
    compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
    parameters = compiled.params
    positional = getattr(compiled, "positiontup", None)
    return (
        str(compiled),
        [parameters[name] for name in positional] if positional else parameters,
    )


def select_rows_among(
    conn: Connection,
    query: sa.Select[Any],
    column: sa.ColumnElement[Any],
    values: Collection[Any] | None,
    *,
    one_query: bool = False,
) -> list[tuple[Any, ...]]:
    """``select_rows`` of ``query`` where ``column`` is one of ``values``,
    asked a chunk at a time (all rows when ``values`` is None). ``query``
    must not group across values of ``column``. With ``one_query``,
    PostgreSQL is asked once, the values as one array parameter: one plan
    and one round trip for a writer's per-batch lookups (SQLite takes only
    so many parameters, and is asked a chunk at a time still)."""
    if values is None:
        return select_rows(conn, query)
    wanted = sorted(values)
    if one_query and conn.dialect.name == "postgresql":
        # imported here: the package loads every PostgreSQL driver it has
        from sqlalchemy.dialects.postgresql import ARRAY

        array = sa.bindparam("among", wanted, type_=ARRAY(column.type))
        return select_rows(conn, query.where(column == sa.any_(array)))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        rows.extend(select_rows(conn, query.where(column.in_(chunk))))
    return rows


def insert_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[tuple[Any, ...]],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, default: all columns).
    On PostgreSQL through ``COPY``: one stream of rows, not a round trip per
    row; a refusal (a broken constraint) is raised as SQLAlchemy raises an
    ``INSERT``'s."""
    names = list(columns or table.c.keys())
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, rows, names)
        return
    marks = ", ".join([placeholder(conn)] * len(names))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", list(rows)
    )


def _copy_rows(
    conn: Connection, table: sa.Table, rows: Sequence[tuple[Any, ...]], names: list[str]
) -> None:
    import psycopg

    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as error:
        raise sa.exc.DBAPIError.instance(
            statement, None, error, psycopg.Error
        ) from error
    finally:
        cursor.close()


# Values bound in one statement of ``add_to_rows`` on SQLite (it takes 32,766).
ADDED_VALUES = 30_000


def add_to_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[tuple[Any, ...]],
    *,
    keys: Sequence[str],
    added: Sequence[str],
    highest: Sequence[str] = (),
    returning: bool = False,
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Running sums kept in ``table``: each row (its ``keys``, ``highest``
    then ``added`` columns, each key once) is inserted when its keys are
    new, else its ``added`` columns are added to the stored ones and its
    ``highest`` ones keep the higher of the stored and the new value (a
    last position, whatever order rows come in). ``ON CONFLICT … DO
    UPDATE``: a unique index on ``keys`` is needed, no read first.
    PostgreSQL takes the rows as one array per column, SQLite as multi-row
    ``VALUES``. With ``returning``, each row's ``added`` sums as they stand
    afterwards, by its keys (else nothing)."""
    if not rows:
        return {}
    names = [*keys, *highest, *added]
    changes = [f"{name} = {table.name}.{name} + excluded.{name}" for name in added]
    changes += [
        f"{name} = CASE WHEN excluded.{name} > {table.name}.{name} "
        f"THEN excluded.{name} ELSE {table.name}.{name} END"
        for name in highest
    ]
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) {{rows}} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(changes)}"
    )
    if returning:
        statement += f" RETURNING {', '.join([*keys, *added])}"
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{_array_type(table.c[name].type)}" for name in names)
        batches = [
            (
                f"SELECT * FROM unnest({arrays})",
                [list(c) for c in zip(*rows, strict=True)],
            )
        ]
    else:
        one_row = f"({', '.join(['?'] * len(names))})"
        per_statement = max(1, ADDED_VALUES // len(names))
        batches = [
            (
                "VALUES " + ", ".join([one_row] * len(chunk)),
                [value for row in chunk for value in row],
            )
            for chunk in (
                rows[start : start + per_statement]
                for start in range(0, len(rows), per_statement)
            )
        ]
    width, sums = len(keys), {}
    for values, parameters in batches:
        found = conn.exec_driver_sql(statement.format(rows=values), tuple(parameters))
        for row in found if returning else ():
            sums[tuple(row[:width])] = tuple(int(value) for value in row[width:])
    return sums


def _array_type(column_type: sa.types.TypeEngine[Any]) -> str:
    """The PostgreSQL array type that carries a column's values."""
    if isinstance(column_type, sa.BigInteger):
        return "bigint[]"
    if isinstance(column_type, sa.Integer):
        return "integer[]"
    if isinstance(column_type, sa.String):
        return "text[]"
    raise TypeError(f"no array type for {column_type!r}")


_CHAIN_HASH_AT = sa.select(events_table.c.chain_hash).where(
    events_table.c.position == sa.bindparam("position")
)


def head_position(conn: Connection) -> int:
    """The position of the latest stored event (0 for an empty ledger)."""
    return int(
        conn.execute(sa.select(sa.func.max(events_table.c.position))).scalar() or 0
    )


def stream_versions(conn: Connection, streams: Sequence[UUID]) -> dict[UUID, int]:
    """The versions ``streams`` are at (those that hold events), read
    through ``conn``: within a caller's read, consistent with all it reads.
    Plain SQL to the driver: a run may ask for hundreds of thousands."""
    wanted = sorted(str(stream) for stream in streams)
    mark = placeholder(conn)
    versions: dict[UUID, int] = {}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            cursor.execute(
                f"SELECT stream_id, max(stream_version) FROM {events_table.name} "
                f"WHERE stream_id IN ({', '.join([mark] * len(chunk))}) "
                "GROUP BY stream_id",
                chunk,
            )
            versions.update(
                (UUID(stream_id), int(version))
                for stream_id, version in cursor.fetchall()
            )
    finally:
        cursor.close()
    return versions


def read_property(conn: Connection, name: str) -> str | None:
    """A fact about how the ledger's derived tables were made, if recorded."""
    t = properties_table.c
    found = conn.execute(sa.select(t.value).where(t.name == name)).scalar()
    return None if found is None else str(found)


def write_property(conn: Connection, name: str, value: str) -> None:
    conn.execute(properties_table.delete().where(properties_table.c.name == name))
    conn.execute(properties_table.insert().values(name=name, value=value))


def chain_hash_at(conn: Connection, position: int) -> str:
    """The chain hash of the event at ``position`` (the genesis hash at 0)."""
    if position == 0:
        return GENESIS_HASH
    found = conn.execute(_CHAIN_HASH_AT, {"position": position}).scalar()
    return str(found) if found else GENESIS_HASH


@dataclass(frozen=True)
class Envelope:
    """Who did a thing, when it happened, and how it reached the ledger."""

    actor_id: str
    actor_role: str
    at: datetime
    source: str  # api / import / cli
    correlation_id: str
    # Who sent it, and so whose key space its idempotency key is in: an API
    # key's ``api:<key id>``, ``import`` or ``cli``.
    caller: str
    idempotency_key: str | None = None
    # The fingerprint of a keyed command, set by the ledger when it records
    # the command (``ledger.application.handlers.IdNumberDigest.fingerprint``).
    fingerprint: str | None = None


@dataclass(frozen=True)
class EventMetadata:
    """What the recorder stores beside one event's payload."""

    envelope: Envelope
    subjects: frozenset[tuple[str, str]] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Claim:
    """A unique value (an ID number digest, a session id) owned by a stream."""

    kind: str
    value: str
    stream_id: UUID


@dataclass(frozen=True)
class KeyUse:
    """An idempotency key, in its caller's key space, with the fingerprint
    of its command and the positions the command's events took."""

    caller: str
    key: str
    fingerprint: str | None
    first_event: int  # index into the events of the same append
    last_event: int


@dataclass(frozen=True)
class DataKey:
    """A person's data key as stored: wrapped by the master key it names
    (``ledger.store.personal_data``), recorded with the first event sealed
    under it."""

    subject_id: str
    master_key_id: str
    wrapped_key: str  # base64
    created_at: str

    def row(self) -> tuple[str, str, str, str]:
        return (self.subject_id, self.master_key_id, self.wrapped_key, self.created_at)


@dataclass(frozen=True)
class AcceptedKey:
    """What a key's first acceptance recorded: the positions its command
    wrote, and the command's fingerprint (None: accepted before
    fingerprints were recorded)."""

    first_position: int
    last_position: int
    fingerprint: str | None


class LedgerBusyError(TranslatedError, RuntimeError):
    """Another writer held the ledger's append lock for longer than a writer
    waits (``WaitLimits``): nothing was written, and trying again later is
    safe (with the same idempotency key)."""


class DatabaseUnavailableError(TranslatedError, RuntimeError):
    """The database cannot be reached, or cannot write (its disk is full):
    nothing was written; the operator must act before a retry can succeed."""


@dataclass(frozen=True)
class WaitLimits:
    """How long a writer waits for the append lock, and how long an append
    may hold it (on PostgreSQL the lock is released when the holder's
    transaction runs, or sits idle, longer: a writer stopped while holding it
    blocks the others for that long at most, not for ever)."""

    lock_seconds: float = 10.0
    append_seconds: float = 60.0


DEFAULT_LIMITS = WaitLimits()

# PostgreSQL's SQLSTATEs for a lock not had in time and a statement stopped
# by its timeout; for the database refusing or losing the connection (class
# 08, 57P0x, 25P03: this writer's idle transaction ended), not existing, or
# its disk full.
_BUSY_STATES = frozenset({"55P03", "57014"})
_UNAVAILABLE_STATES = frozenset({"3D000", "53100", "57P01", "57P02", "57P03", "25P03"})


BUSY_MESSAGE = (
    "the ledger is busy: another writer held its lock too long; nothing was "
    "written, retry in a few seconds"
)


def _named_failure(error: BaseException) -> Exception | None:
    """``error`` as a ``LedgerBusyError`` or ``DatabaseUnavailableError``
    when it is one of those (None otherwise), with a one-line message."""
    if isinstance(error, sa.exc.DBAPIError):
        cause: BaseException | None = error.orig
        invalidated = error.connection_invalidated
    else:
        cause, invalidated = error, False
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause)
        if "locked" in text or "busy" in text:
            return LedgerBusyError(BUSY_MESSAGE)
        if "unable to open" in text or "disk is full" in text:
            return DatabaseUnavailableError(
                "the SQLite database cannot be used: {reason}", reason=text
            )
        return None
    # Not a database, or a damaged one: sqlite3 raises the base class itself
    # (its subclasses — a broken constraint, a bad statement — are not that).
    if type(cause) is sqlite3.DatabaseError:
        return DatabaseUnavailableError(
            "the SQLite file is not a ledger's database, or is damaged: {reason}",
            reason=cause,
        )
    state = getattr(cause, "sqlstate", None)
    if state in _BUSY_STATES:
        return LedgerBusyError(BUSY_MESSAGE)
    if (
        invalidated
        or state in _UNAVAILABLE_STATES
        or (state or "").startswith("08")
        or (isinstance(error, sa.exc.OperationalError) and state is None)
    ):
        lines = str(cause).strip().splitlines()
        detail = lines[0] if lines else type(cause).__name__
        return DatabaseUnavailableError(
            "the database cannot be reached: {reason}", reason=detail
        )
    return None


@contextmanager
def _failures_named() -> Iterator[None]:
    """Raise a busy ledger or an unreachable database as the store's own
    errors, which callers answer in a line (HTTP 503, a CLI exit code)."""
    try:
        yield
    except (sa.exc.DBAPIError, sqlite3.OperationalError) as error:
        named = _named_failure(error)
        if named is None:
            raise
        raise named from error


def sqlite_database_file(url: str) -> Path | None:
    """The file a SQLite URL names (absolute); None for a server database,
    one in memory, or a URI filename."""
    parsed = sa.engine.make_url(normalise_database_url(url))
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:"):
        return None
    return Path(name).expanduser().absolute()


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """One ledger database: its engine, its schema and its append lock."""

    def __init__(self, url: str, limits: WaitLimits = DEFAULT_LIMITS) -> None:
        self.url = normalise_database_url(url)
        try:
            self.engine: Engine = _create_engine(self.url, limits)
        except sa.exc.ArgumentError:  # unparseable, or no such dialect
            scheme = url.partition("://")[0] if "://" in url else "(none)"
            raise DatabaseUnavailableError(
                "the database URL is not one the ledger can use (scheme {scheme}): "
                "give postgresql://USER@HOST/NAME or sqlite:///PATH",
                scheme=scheme,
            ) from None
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # One statement, sent as it is: the append's limits, then its lock.
        self._lock_statement = (
            f"SET LOCAL lock_timeout = {_milliseconds(limits.lock_seconds)}; "
            f"SET LOCAL statement_timeout = {_milliseconds(limits.append_seconds)}; "
            "SET LOCAL idle_in_transaction_session_timeout = "
            f"{_milliseconds(limits.append_seconds)}; "
            "LOCK TABLE ledger_events IN EXCLUSIVE MODE"
        )

    @property
    def sqlite_file(self) -> str | None:
        """The file of a SQLite database; None for PostgreSQL or in memory."""
        file = sqlite_database_file(self.url)
        return None if file is None else str(file)

    def drop_schema(self, tables: Sequence[sa.Table]) -> None:
        """Drop those of ``tables`` that exist, and the schema's recorded
        version with them: a fresh start, for tests and benchmarks."""
        with self.writing() as conn:
            for table in reversed(tables):
                table.drop(conn, checkfirst=True)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SCHEMA_VERSION_TABLE}")

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A write transaction holding the ledger's append lock until commit.
        A writer that cannot have the lock within ``limits.lock_seconds``
        raises ``LedgerBusyError``."""
        with self.writing() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql(self._lock_statement)
            yield conn

    @contextmanager
    def writing(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the one write lock at BEGIN;
        on PostgreSQL it takes no table lock (projections lock their own
        tracking rows, appends add the append lock).

        ``durable=False`` lets SQLite skip the fsync at commit (WAL with
        synchronous=NORMAL: still atomic and consistent, but the last commits
        may be lost on power failure). Projections use it: they can always
        be replayed from the events, which are always written durably.

        A lock not had in time raises ``LedgerBusyError``; a database that
        cannot be reached (or written), ``DatabaseUnavailableError``."""
        if self.is_sqlite:
            options = {"sqlite_begin": "IMMEDIATE", "sqlite_durable": durable}
            with (
                _failures_named(),
                self.engine.connect().execution_options(**options) as conn,
                conn.begin(),
            ):
                yield conn
        else:
            with _failures_named(), self.engine.begin() as conn:
                yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot of the ledger (a
        database that cannot be reached raises ``DatabaseUnavailableError``)."""
        with _failures_named(), self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def scrub_erased(self) -> None:
        """After an erasure has committed, leave no copy of what it deleted
        where the database keeps old pages: SQLite's write-ahead log is
        checkpointed and emptied (the deleted rows were zeroed, see
        ``_release``), PostgreSQL's data-key and claim tables vacuumed. Backups taken
        before keep their copy (docs/operations.md)."""
        if self.is_sqlite:
            # Outside any transaction: the listener above would begin one.
            raw = self.engine.raw_connection()
            try:
                with _failures_named():
                    raw.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA wal_checkpoint(TRUNCATE)"
                    )
            finally:
                raw.close()
            return
        with _failures_named(), self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in (data_keys_table, claims_table):
                conn.exec_driver_sql(f"VACUUM {table.name}")

    def dispose(self) -> None:
        self.engine.dispose()


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _create_engine(url: str, limits: WaitLimits) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    # SQLite's one write lock is the append lock: its busy timeout is the wait.
    engine = sa.create_engine(url, connect_args={"timeout": limits.lock_seconds})
    busy_timeout = _milliseconds(limits.lock_seconds)

    # pysqlite's own transaction handling would defer BEGIN and cannot take
    # the write lock up front; take control of BEGIN so that writers start
    # with BEGIN IMMEDIATE (the append lock) and readers with a plain BEGIN.
    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: every read begins here, so it should cost
        # little; the pragma is set only when it changes.
        options = conn.get_execution_options()
        synchronous = "FULL" if options.get("sqlite_durable", True) else "NORMAL"
        pooled = conn.connection
        driver = pooled.driver_connection
        assert driver is not None
        if pooled.info.get("synchronous") != synchronous:
            driver.execute(f"PRAGMA synchronous={synchronous}")
            pooled.info["synchronous"] = synchronous
        driver.execute(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")

    return engine


# The property naming the master key the ledger's data keys are wrapped with
# (``ledger.store.personal_data``).
MASTER_KEY_PROPERTY = "personal_data_master_key"


class MasterKeyError(TranslatedError):
    """The master key is missing, unreadable, open to others, or not the
    one the ledger's data keys are wrapped with; nothing was written."""


def _ensure_wrapped_with_bound_key(conn: Connection, keys: Sequence[DataKey]) -> None:
    """Refuse data keys wrapped with another master key than the ledger's:
    a writer started before the master key was rotated still holds the old."""
    bound = read_property(conn, MASTER_KEY_PROPERTY)
    stale = {key.master_key_id for key in keys} - {bound}
    if bound is not None and stale:
        raise MasterKeyError(
            "the ledger's master key was rotated to id {bound} while this process "
            "held id {key_id}: start it again; nothing was written",
            bound=bound,
            key_id=", ".join(sorted(stale)),
        )


def _release(conn: Connection, released_claims: Sequence[tuple[str, str]]) -> None:
    """Delete the claims given up; from here on in the transaction, deleted
    bytes (of claims, of data keys) are overwritten with zeros on SQLite."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
    c = claims_table.c
    for kind, value in released_claims:
        conn.execute(claims_table.delete().where(c.kind == kind, c.value == value))


class PlannerStatistics:
    """PostgreSQL's planner statistics of the tables a writer fills and
    looks up by key, refreshed each time the ledger position it has written
    up to has doubled since it last did (from ``STATISTICS_FLOOR``). A bulk
    writer outgrows autovacuum: a table last analysed nearly empty is
    planned as tiny (and a prepared statement keeps that plan), so a lookup
    of a chunk of keys reads every row, linear in the table per batch.
    ``ANALYZE`` gives it fresh statistics and drops the plans made without."""

    def __init__(self, database: Database, tables: Sequence[sa.Table]) -> None:
        self.database = database
        self.tables = ", ".join(table.name for table in tables)
        self._analysed_at = 0

    def keep_current(self, position: int) -> None:
        if self.database.is_sqlite or position < max(
            STATISTICS_FLOOR, 2 * self._analysed_at
        ):
            return
        try:
            with self.database.writing(durable=False) as conn:
                conn.exec_driver_sql(f"ANALYZE {self.tables}")
        except (sa.exc.SQLAlchemyError, LedgerBusyError, DatabaseUnavailableError):
            # What the writer wrote is committed: its caller must hear of
            # that, not of statistics left as they were (the next write
            # tries again).
            return
        self._analysed_at = position


class LedgerRecorder(ApplicationRecorder):
    """An ``eventsourcing`` application recorder over ``ledger_events``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._statistics = PlannerStatistics(
            database, (events_table, idempotency_keys_table, claims_table)
        )

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        metadata: Sequence[EventMetadata] = (),
        claims: Sequence[Claim] = (),
        key_uses: Sequence[KeyUse] = (),
        data_keys: Sequence[DataKey] = (),
        released_claims: Sequence[tuple[str, str]] = (),
        erasures: Sequence[Callable[[Connection], object]] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Append the events with what is written beside them (among it the
        data keys made for them); in the same transaction, delete the claims
        given up (``released_claims``) and run ``erasures`` (each destroys a
        data key), the deleted bytes zeroed on SQLite and scrubbed from the
        database's old pages once committed (``Database.scrub_erased``)."""
        if len(metadata) != len(stored_events):
            raise ValueError("every event needs its envelope")
        if not stored_events:
            # ``Application.save()`` with nothing pending lands here: like the
            # library's recorders, record nothing and take no append lock.
            return []
        try:
            with self.database.appending() as conn:
                if released_claims or erasures:
                    _release(conn, released_claims)
                positions = self._append(
                    conn, stored_events, metadata, claims, key_uses
                )
                if data_keys:
                    _ensure_wrapped_with_bound_key(conn, data_keys)
                    insert_rows(conn, data_keys_table, [key.row() for key in data_keys])
                for erase in erasures:
                    erase(conn)
        except sa.exc.IntegrityError as error:
            raise IntegrityError(str(error.orig)) from error
        if erasures:
            self.database.scrub_erased()
        self._statistics.keep_current(positions[-1])
        return positions

    def _append(
        self,
        conn: Connection,
        stored_events: Sequence[StoredEvent],
        metadata: Sequence[EventMetadata],
        claims: Sequence[Claim],
        key_uses: Sequence[KeyUse],
    ) -> list[int]:
        t = events_table.c
        head = conn.execute(
            sa.select(t.position, t.chain_hash, t.recorded_at)
            .order_by(t.position.desc())
            .limit(1)
        ).first()
        position, previous_hash, previously_recorded = (
            (head[0], head[1], head[2]) if head else (0, GENESIS_HASH, "")
        )
        # Never before the last event, should the clock step back: reads as of
        # a recording time take every position recorded by then, so recording
        # times must not decrease along positions.
        recorded_at = max(utc_text(datetime.now(UTC)), previously_recorded)
        rows: list[tuple[Any, ...]] = []
        subject_rows: list[tuple[str, str, int]] = []
        for stored, meta in zip(stored_events, metadata, strict=True):
            position += 1
            envelope = meta.envelope
            chained = (  # in CHAINED_FIELDS order
                position,
                str(stored.originator_id),
                stored.originator_version,
                stored.topic,
                stored.state.decode("utf-8"),
                envelope.actor_id,
                envelope.actor_role,
                envelope.at.isoformat(),
                utc_text(envelope.at),
                recorded_at,
                envelope.source,
                envelope.idempotency_key,
                envelope.correlation_id,
                envelope.caller,
                envelope.fingerprint,
            )
            previous_hash = chain_hash(previous_hash, chained)
            rows.append((*chained, previous_hash))
            subject_rows.extend(
                (kind, subject_id, position) for kind, subject_id in meta.subjects
            )
        insert_rows(conn, events_table, rows, (*CHAINED_FIELDS, "chain_hash"))
        if subject_rows:
            insert_rows(conn, event_subjects_table, subject_rows)
        if claims:
            insert_rows(
                conn,
                claims_table,
                [(c.kind, c.value, str(c.stream_id)) for c in claims],
            )
        if key_uses:
            insert_rows(
                conn,
                idempotency_keys_table,
                [
                    (
                        use.caller,
                        use.key,
                        use.fingerprint,
                        rows[use.first_event][0],
                        rows[use.last_event][0],
                    )
                    for use in key_uses
                ],
            )
        return [row[0] for row in rows]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        t = events_table.c
        query = sa.select(t.stream_id, t.stream_version, t.topic, t.payload).where(
            t.stream_id == str(originator_id)
        )
        if gt is not None:
            query = query.where(t.stream_version > gt)
        if lte is not None:
            query = query.where(t.stream_version <= lte)
        query = query.order_by(t.stream_version.desc() if desc else t.stream_version)
        if limit is not None:
            query = query.limit(limit)
        with self.database.reading() as conn:
            return [
                StoredEvent(
                    originator_id=UUID(row.stream_id),
                    originator_version=row.stream_version,
                    topic=row.topic,
                    state=row.payload.encode("utf-8"),
                )
                for row in conn.execute(query)
            ]

    def select_streams(
        self, streams: Sequence[UUID]
    ) -> Iterator[tuple[UUID, list[StoredEvent]]]:
        """The stored events of many streams, stream by stream, in order."""
        t = events_table.c
        wanted = sorted(str(stream) for stream in streams)
        with self.database.reading() as conn:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                rows = select_rows(
                    conn,
                    sa.select(t.stream_id, t.stream_version, t.topic, t.payload)
                    .where(t.stream_id.in_(wanted[start : start + LOOKUP_CHUNK]))
                    .order_by(t.stream_id, t.stream_version),
                )
                for stream_id, group in groupby(rows, key=lambda row: row[0]):
                    stream = UUID(stream_id)
                    yield (
                        stream,
                        [
                            StoredEvent(
                                originator_id=stream,
                                originator_version=version,
                                topic=topic,
                                state=payload.encode("utf-8"),
                            )
                            for _, version, topic, payload in group
                        ],
                    )

    def select_existing_streams(self, streams: Sequence[UUID]) -> set[UUID]:
        """Those of ``streams`` that hold at least one event."""
        t = events_table.c
        query = sa.select(t.stream_id).where(t.stream_version == 1)
        with self.database.reading() as conn:
            rows = select_rows_among(
                conn, query, t.stream_id, [str(stream) for stream in streams]
            )
        return {UUID(stream_id) for (stream_id,) in rows}

    def select_claims(
        self, claims: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UUID]:
        """The owners of those ``(kind, value)`` claims that are taken."""
        t = claims_table.c
        by_kind: dict[str, list[str]] = {}
        for kind, value in claims:
            by_kind.setdefault(kind, []).append(value)
        owners: dict[tuple[str, str], UUID] = {}
        with self.database.reading() as conn:
            for kind, values in by_kind.items():
                query = sa.select(t.value, t.stream_id).where(t.kind == kind)
                rows = select_rows_among(conn, query, t.value, values, one_query=True)
                owners.update({(kind, value): UUID(owner) for value, owner in rows})
        return owners

    def select_key_uses(
        self, keys: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], AcceptedKey]:
        """What the first acceptances of these (caller, key) pairs recorded,
        for those accepted: a lookup by the (caller, key) index, one
        caller's keys at a time."""
        if not keys:
            return {}
        t = idempotency_keys_table.c
        by_caller: dict[str, list[str]] = {}
        for caller, key in keys:
            by_caller.setdefault(caller, []).append(key)
        found: dict[tuple[str, str], AcceptedKey] = {}
        with self.database.reading() as conn:
            for caller, wanted in by_caller.items():
                query = sa.select(
                    t.key, t.first_position, t.last_position, t.fingerprint
                ).where(t.caller == caller)
                rows = select_rows_among(conn, query, t.key, wanted, one_query=True)
                found.update(
                    {
                        (caller, key): AcceptedKey(first, last, fingerprint)
                        for key, first, last, fingerprint in rows
                    }
                )
        return found

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        t = events_table.c
        query = sa.select(t.position, t.stream_id, t.stream_version, t.topic, t.payload)
        if start is not None:
            query = query.where(
                t.position >= start if inclusive_of_start else t.position > start
            )
        if stop is not None:
            query = query.where(t.position <= stop)
        if topics:
            query = query.where(t.topic.in_(topics))
        query = query.order_by(t.position).limit(limit)
        with self.database.reading() as conn:
            return [
                Notification(
                    id=row.position,
                    originator_id=UUID(row.stream_id),
                    originator_version=row.stream_version,
                    topic=row.topic,
                    state=row.payload.encode("utf-8"),
                )
                for row in conn.execute(query)
            ]

    def max_notification_id(self) -> int | None:
        with self.database.reading() as conn:
            return conn.execute(
                sa.select(sa.func.max(events_table.c.position))
            ).scalar()

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        # Projections poll by position on both engines (see ledger.engine),
        # so the library's push subscriptions are not offered.
        raise NotImplementedError("the ledger's projections poll; see ledger.engine")
