"""The composition root: the ledger's parts, built from one ``LedgerSettings``.

The CLI's root callback and the HTTP app factory each read the settings
once and hand them here; nothing below them reads the environment. The
schema is assembled here too: every table the ledger uses, listed, so that
a new schema revision is written against all of them, never against those
some imports happened to define (docs/migrations.md).
"""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ledger.domain.messages import Message, TranslatedError
from ledger.engine import (
    ProjectionEngine,
    dead_letters_table,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.reads.queries import LedgerReads
from ledger.settings import LedgerSettings
from ledger.store.api_keys import api_keys_table
from ledger.store.event_store import (
    DEFAULT_LIMITS,
    STORE_TABLES,
    Database,
    WaitLimits,
    metadata,
)
from ledger.store.integrity import (
    checkpoints_table,
    key_directory,
    ledger_id_number_secret,
    secret_id,
    verifications_table,
)
from ledger.store.personal_data import (
    MASTER_KEY_FILE,
    KeyFileMasterKey,
    PersonalDataVault,
    ledger_master_key,
)
from ledger.store.schema import (
    is_current,
    prepare_schema,
    schema_status,
    write_revision,
)

if TYPE_CHECKING:
    from ledger.application.ledger import Ledger

# Every table of a ledger database: the events and what is stored beside
# them, the checkpoints and verifications, the projection engine's
# bookkeeping, each projection's entries, and the HTTP API's keys.
LEDGER_SCHEMA: tuple[sa.Table, ...] = (
    *STORE_TABLES,
    checkpoints_table,
    verifications_table,
    projection_versions_table,
    dead_letters_table,
    projection_changes_table,
    projection_changes_noted_table,
    *(projection.entries for projection in ALL_PROJECTIONS),
    *(table for projection in ALL_PROJECTIONS for table in projection.kept_tables),
    api_keys_table,
)


class NoLedgerError(TranslatedError, LookupError):
    """A command that only reads was pointed at a database holding no ledger
    (a mistyped SQLite path, most often); nothing was made there."""

    @classmethod
    def at(cls, where: object) -> NoLedgerError:
        """The refusal of a read at ``where`` (a path, a database)."""
        return cls(
            "no ledger at {where}; `ledger import` or `ledger demo` creates one",
            where=where,
        )


def open_database(
    url: str,
    limits: WaitLimits = DEFAULT_LIMITS,
    *,
    auto_migrate: bool = True,
    create: bool = True,
) -> Database:
    """The database at ``url``, its schema this release's: made in an empty
    database, upgraded in an older ledger (refused with a pointer to
    ``ledger migrate`` unless ``auto_migrate``; see ``ledger.store.schema``).
    The revisions make ``LEDGER_SCHEMA`` exactly, as a test holds. Unless
    ``create``, a database without a ledger is refused (``NoLedgerError``)
    and left as it was: a SQLite file that does not exist is not made."""
    database = Database(url, limits)
    try:
        if not create and _holds_no_ledger(database):
            where = database.sqlite_file or Message("this database")
            raise NoLedgerError.at(where)
        prepare_schema(database, auto_migrate=auto_migrate)
    except BaseException:
        database.dispose()
        raise
    return database


def _holds_no_ledger(database: Database) -> bool:
    path = database.sqlite_file
    if path is not None and not Path(path).is_file():
        return True  # checked before connecting, which would make the file
    return not is_current(database) and schema_status(database).is_new


def open_ledger(
    database: Database, keys: Path, vault: PersonalDataVault | None = None
) -> Ledger:
    """The ledger writing to ``database``, digesting ID numbers with the
    secret kept in the key directory ``keys`` (created on first need); its
    ID-number claims made again with that secret if they were made with
    plain SHA-256 (a ledger made before revision 0005), refused
    (``KeyMaterialError``) if they were made with another secret. Personal
    data is sealed under the master key kept there too (created on first
    need, refused — ``MasterKeyError`` — when missing or not the ledger's),
    through ``vault`` when the readers share one. The writer is imported
    here: commands that only read start faster without it."""
    from ledger.application.handlers import IdNumberDigest
    from ledger.application.ledger import Ledger

    secret = ledger_id_number_secret(database, keys)
    if vault is None:
        vault = PersonalDataVault(database, KeyFileMasterKey(keys / MASTER_KEY_FILE))
    ledger = Ledger(database, IdNumberDigest(secret), vault)
    ledger.digest_id_numbers_with(secret_id(secret))
    ledger_master_key(database, keys)
    return ledger


def write_schema_revision(message: str) -> Path:
    """For developers: a new revision file, holding what ``LEDGER_SCHEMA``
    differs from the schema the revisions make (built in a scratch SQLite
    database), to review and complete before committing (docs/migrations.md)."""
    with tempfile.TemporaryDirectory() as folder:
        database = open_database(f"sqlite:///{Path(folder) / 'head.db'}")
        try:
            return write_revision(database, message, metadata)
        finally:
            database.dispose()


class LedgerComponents:
    """The ledger's parts, composed from ``settings``. Each is built when
    first asked for, so a command that needs no database (``ledger
    verify-export``, say) neither opens nor creates one. Unless ``create``,
    a database holding no ledger is refused rather than made one: commands
    that only read say so, those that write (``may_create``) make it."""

    def __init__(self, settings: LedgerSettings, *, create: bool = True) -> None:
        self.settings = settings
        self.create = create

    def may_create(self) -> LedgerComponents:
        """These components, allowed to make the ledger they open: for the
        commands that write one (import, demo, keys, migrate)."""
        self.create = True
        return self

    @cached_property
    def database(self) -> Database:
        settings = self.settings
        return open_database(
            settings.database_url,
            WaitLimits(settings.lock_wait_seconds, settings.append_timeout_seconds),
            auto_migrate=settings.auto_migrate,
            create=self.create,
        )

    @cached_property
    def ledger(self) -> Ledger:
        settings = self.settings
        database = self.database  # a database that cannot be opened says so first
        keys = key_directory(settings.database_url, settings.key_directory)
        return open_ledger(database, keys, self.vault)

    @cached_property
    def vault(self) -> PersonalDataVault:
        """The ledger's personal data, opened with the master key in its key
        directory (read when first needed); shared by the writer and readers,
        so a person erased is erased for both at once."""
        settings = self.settings
        keys = key_directory(settings.database_url, settings.key_directory)
        return PersonalDataVault(
            self.database, KeyFileMasterKey(keys / MASTER_KEY_FILE)
        )

    @cached_property
    def projection_engine(self) -> ProjectionEngine:
        return ProjectionEngine(self.database, ALL_PROJECTIONS)

    @cached_property
    def reads(self) -> LedgerReads:
        return LedgerReads(self.database, self.vault)

    def close(self) -> None:
        """Close the database's pooled connections, if it was opened."""
        if "database" in vars(self):
            self.database.dispose()
