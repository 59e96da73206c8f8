"""The ledger schema's version: where a database stands among the
revisions in ``ledger.store.migrations``, and the upgrade to this release's.

The version is recorded by Alembic in ``alembic_version``. A ledger written
by release bb41d98 has tables but no version: it is recognised by comparing
its tables with that release's (revision ``0001``), recorded as that
revision, then upgraded like any other. An upgrade runs in one transaction
under the migration lock (SQLite's write lock, a PostgreSQL advisory lock),
so when several processes open an old ledger at once exactly one migrates
and the others find it done. See docs/migrations.md.

Alembic is imported only when there is more to do than to find the schema
current (``HEAD_REVISION``, read with one query): opening a current ledger
does not pay for loading it, and a quick read stays quick.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.messages import Message, TranslatedError
from ledger.store.event_store import SCHEMA_VERSION_TABLE, Database

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
# The revision of release bb41d98's schema: what an unversioned ledger is.
RELEASE_BASELINE = "0001"
# The newest revision, as ``head_revision()`` finds it among the migrations
# (a test holds them equal): a ledger recorded at it needs nothing done.
HEAD_REVISION = "0008"
# The pg_advisory_xact_lock key of schema upgrades, apart from any other.
MIGRATION_LOCK = int.from_bytes(b"ledger-m", "big")


class SchemaVersionError(TranslatedError):
    """The database's schema is not one this release can use as it stands;
    the message says why and what to run, in one line."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this release's revisions."""

    current: str | None  # the recorded revision; None when none is
    head: str  # the revision this release needs
    pending: tuple[str, ...]  # what an upgrade would apply, oldest first
    unversioned: bool  # ledger tables but no version: release bb41d98's

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unversioned

    @property
    def is_new(self) -> bool:
        """An empty database: no ledger in it yet."""
        return self.current is None and not self.unversioned

    def describe(self) -> Message:
        """One line: the recorded revision, this release's, what is pending."""
        steps: list[object] = list(self.pending)
        at: object = self.current or Message("none (an empty database)")
        if self.unversioned:
            at = Message("unversioned (a ledger of release bb41d98)")
            steps.insert(
                0, Message("record it as {revision}", revision=RELEASE_BASELINE)
            )
        return Message(
            "schema at {at}; this release needs {head}; pending: {pending}",
            at=at,
            head=self.head,
            pending=", ".join(map(str, steps)) or Message("nothing"),
        )


def _config(**attributes: Any) -> Config:
    """Alembic's configuration, built here rather than read from a file; the
    ``attributes`` reach ``migrations/env.py`` (the connection to use)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(attributes)
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the migrations hold at least the baseline"
    return head


def _revisions_after(current: str | None) -> tuple[str, ...]:
    """The revisions an upgrade from ``current`` applies, oldest first."""
    scripts = _scripts()
    if current is not None and current not in {
        s.revision for s in scripts.walk_revisions()
    }:
        raise SchemaVersionError(
            "the ledger's schema is at revision {current}, which this release "
            "does not know (its newest is {newest}): it was written by "
            "a newer release; run that release or a later one",
            current=current,
            newest=head_revision(),
        )
    newer = scripts.iterate_revisions(head_revision(), current)
    return tuple(reversed([script.revision for script in newer]))


def _baseline() -> sa.MetaData:
    """Release bb41d98's tables, as its revision defines them."""
    module = _scripts().get_revision(RELEASE_BASELINE).module
    baseline: sa.MetaData = module.schema
    return baseline


def _recorded_revision(conn: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _has_baseline_tables(conn: Connection) -> bool:
    present = set(sa.inspect(conn).get_table_names())
    return bool(present & set(_baseline().tables))


def _status(conn: Connection) -> SchemaStatus:
    current = _recorded_revision(conn)
    unversioned = current is None and _has_baseline_tables(conn)
    if unversioned:
        _check_release_baseline(conn)
    start = RELEASE_BASELINE if unversioned else current
    return SchemaStatus(
        current=current,
        head=head_revision(),
        pending=_revisions_after(start),
        unversioned=unversioned,
    )


def _check_release_baseline(conn: Connection) -> None:
    """Refuse an unversioned database whose ledger tables are not release
    bb41d98's: recording it as that revision would be a lie. Tables of
    other applications sharing the database are left out of the comparison."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    baseline = _baseline()

    def ours(_: Any, name: str | None, type_: str, *__: Any) -> bool:
        return type_ != "table" or name in baseline.tables

    context = MigrationContext.configure(
        conn, opts={"include_name": ours, "compare_type": True}
    )
    differences = compare_metadata(context, baseline)
    if differences:
        raise SchemaVersionError(
            "the database holds ledger tables but no schema version, and they "
            "are not those of release bb41d98 ({count} differences, "
            "the first: {first}): open it with the release that wrote it, "
            "then once with release bb41d98",
            count=len(differences),
            first=differences[0],
        )


def is_current(database: Database) -> bool:
    """Whether ``database`` records this release's revision: one query, no
    Alembic (the check every opening of a ledger makes)."""
    with database.reading() as conn:
        if not sa.inspect(conn).has_table(SCHEMA_VERSION_TABLE):
            return False
        recorded = conn.execute(
            sa.text(f"SELECT version_num FROM {SCHEMA_VERSION_TABLE}")
        ).scalars()
        return list(recorded) == [HEAD_REVISION]


def schema_status(database: Database) -> SchemaStatus:
    """Where ``database``'s schema stands; changes nothing."""
    with database.reading() as conn:
        return _status(conn)


@contextmanager
def _migration_lock(database: Database) -> Iterator[Connection]:
    """A write transaction that only one process at a time holds for
    migrating: on SQLite the write lock (BEGIN IMMEDIATE), on PostgreSQL an
    advisory lock held until commit. DDL is transactional on both, so a
    failed upgrade leaves the schema as it was."""
    with database.writing() as conn:
        if not database.is_sqlite:
            # A revision may rewrite a large table, and a process waiting
            # for another's upgrade must wait it out: no session timeouts.
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        yield conn


def upgrade_schema(database: Database) -> SchemaStatus:
    """Bring ``database``'s schema to this release's (an empty database gets
    the whole schema; a release bb41d98 ledger is first recorded as its
    revision); returns where it stood before. Under the migration lock, the
    status is read again: another process may have migrated meanwhile."""
    from alembic import command

    with _migration_lock(database) as conn:
        before = _status(conn)
        if before.up_to_date:
            return before
        config = _config(connection=conn)
        if before.unversioned:
            command.stamp(config, RELEASE_BASELINE)
        command.upgrade(config, "head")
        return before


def prepare_schema(database: Database, *, auto_migrate: bool) -> None:
    """Make ``database`` ready for this release: nothing to do when its
    schema is current; an empty one gets the schema; an older ledger is
    upgraded when ``auto_migrate``, else refused with a pointer to
    ``ledger migrate``."""
    if is_current(database):
        return
    status = schema_status(database)
    if status.up_to_date:
        return
    if not auto_migrate and not status.is_new:
        raise SchemaVersionError(
            "{status}: run `ledger migrate` first (LEDGER_AUTO_MIGRATE is false)",
            status=status.describe(),
        )
    upgrade_schema(database)


def write_revision(database: Database, message: str, target: sa.MetaData) -> Path:
    """A new revision file: what ``target`` (the tables the code defines)
    differs from ``database``'s schema at head, as Alembic operations to
    review before committing. For developers (docs/migrations.md)."""
    from alembic import command

    number = f"{int(head_revision()) + 1:04d}"
    with database.reading() as conn:
        config = _config(connection=conn, target_metadata=target)
        script = command.revision(config, message, autogenerate=True, rev_id=number)
    assert script is not None and not isinstance(script, list)
    _scripts.cache_clear()
    return Path(script.path)
