"""What every command is handed: the ledger's components, composed once
from the settings (``ledger.bootstrap``) when the command first asks.

The command modules import what a verb needs inside the verb, so that
``ledger --help`` and a quick read load no more than they use (the web
framework, the PDF and spreadsheet writers); docs/benchmarks.md measures it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ledger.api.cli.output import ExitCode, fail
from ledger.domain.messages import Message

if TYPE_CHECKING:
    from ledger.application.ledger import Ledger
    from ledger.bootstrap import LedgerComponents


class Invocation:
    """One run of ``ledger``: the ``--db`` it was given, and the components
    composed from the settings once a command asks for them. Until it asks
    for a database, none is opened; until it writes (``may_create``), a
    database without a ledger is refused rather than made one."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._components: LedgerComponents | None = None

    @property
    def components(self) -> LedgerComponents:
        if self._components is None:
            from ledger.bootstrap import LedgerComponents
            from ledger.settings import LedgerSettings

            url = self.database_url
            settings = LedgerSettings(database_url=url) if url else LedgerSettings()
            self._components = LedgerComponents(settings, create=False)
        return self._components

    def close(self) -> None:
        if self._components is not None:
            self._components.close()


def ledger_files_of(ctx: typer.Context) -> list[tuple[Path, Message]]:
    """The ledger's own files, which no output may overwrite: its SQLite
    database file and journals (none for a server database), and its key
    directory, each with what it is called in a refusal."""
    from ledger.store.event_store import sqlite_database_file
    from ledger.store.integrity import KeyMaterialError, key_directory

    settings = components_of(ctx).settings
    files: list[tuple[Path, Message]] = []
    database = sqlite_database_file(settings.database_url)
    if database is not None:
        files.append((database, Message("the ledger's database")))
        for journal in ("-wal", "-shm", "-journal"):
            journal_file = database.with_name(database.name + journal)
            files.append((journal_file, Message("the ledger's journal")))
    try:
        keys = key_directory(settings.database_url, settings.key_directory)
    except KeyMaterialError:
        return files  # a ledger in memory has no key directory
    files.append((keys, Message("in the ledger's key directory")))
    return files


def components_of(ctx: typer.Context) -> LedgerComponents:
    """The components of this invocation, composed on the first call."""
    invocation = ctx.find_object(Invocation)
    assert invocation is not None, "the root callback makes it first"
    return invocation.components


def ledger_of(ctx: typer.Context) -> Ledger:
    """The ledger, the only writer; exits in one line when its key material
    (the secret ID numbers are digested with) is not where it belongs."""
    from ledger.store.integrity import KeyMaterialError

    try:
        return components_of(ctx).ledger
    except KeyMaterialError as error:
        fail(error, ExitCode.CHECK_FAILED)
