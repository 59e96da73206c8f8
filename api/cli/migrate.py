"""``ledger migrate`` upgrades the ledger's schema to this release's;
``--check`` reports what is pending and changes nothing (docs/migrations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import fail, say

app = typer.Typer()


@app.command()
def migrate(
    ctx: typer.Context,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Report the schema's revision and what is pending; change "
            "nothing; exit 1 when an upgrade is pending.",
        ),
    ] = False,
) -> None:
    """Upgrade the ledger's schema to this release's (back it up first:
    `ledger backup`); a ledger of release bb41d98 is recognised and recorded
    as its revision first. Safe to run while others open the ledger."""
    from ledger.bootstrap import NoLedgerError
    from ledger.store.event_store import Database
    from ledger.store.schema import SchemaVersionError, schema_status, upgrade_schema

    # Not the components' database: opening it upgrades, or refuses to.
    database = Database(components_of(ctx).settings.database_url)
    try:
        if check:
            # Connecting would make the file: a check makes nothing (exit 4).
            file = database.sqlite_file
            if file is not None and not Path(file).is_file():
                raise NoLedgerError.at(file)
            status = schema_status(database)
            typer.echo(str(status.describe()))
            raise typer.Exit(0 if status.up_to_date else 1)
        before = upgrade_schema(database)
    except SchemaVersionError as error:
        fail(error, 1)
    finally:
        database.dispose()
    say("was: {status}", status=before.describe())
    say("schema now at {revision}", revision=before.head)
