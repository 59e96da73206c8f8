"""``ledger backup FILE``: a consistent copy of the ledger, taken while it
runs, with its key material beside it (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import ExitCode, fail, in_existing_folder, say

app = typer.Typer()


@app.command()
def backup(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="The backup to write (must not exist).", callback=in_existing_folder
        ),
    ],
) -> None:
    """Back up the ledger while it runs: SQLite through its online backup API,
    PostgreSQL through pg_dump (custom format, for pg_restore); the key
    directory is copied to FILE's name with .keys beside it. Prints the
    backup's path last."""
    from ledger.store.backup import BackupError, NothingToBackUpError, back_up
    from ledger.store.integrity import KeyMaterialError, key_directory

    settings = components_of(ctx).settings
    try:
        keys: Path | None = key_directory(settings.database_url, settings.key_directory)
    except KeyMaterialError:
        keys = None  # a ledger in memory has no key directory
    try:
        report = back_up(settings.database_url, file, keys)
    except NothingToBackUpError as error:
        fail(error, ExitCode.NOT_FOUND)
    except BackupError as error:
        fail(error, ExitCode.CHECK_FAILED)
    if report.head_position is None:
        say("backed up by {method}", method=report.method)
    else:
        say(
            "backed up by {method}, up to position {position}",
            method=report.method,
            position=report.head_position,
        )
    typer.echo(str(report.keys_note))
    typer.echo(str(report.path))
