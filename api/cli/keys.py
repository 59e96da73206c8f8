"""``ledger keys``: API keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import console, fail
from ledger.api.http.access import InvalidKeyRequestError, create_key

app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)


@app.command("create")
def create_key_command(
    ctx: typer.Context,
    role: Annotated[
        str,
        typer.Option(
            help="admin, auditor, dispatcher, venue_staff, volunteer or dashboard"
        ),
    ],
    venue: Annotated[
        str | None, typer.Option(help="The venue a venue_staff key is scoped to.")
    ] = None,
    volunteer: Annotated[
        str | None, typer.Option(help="The volunteer a volunteer key is for.")
    ] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    database = components_of(ctx).database
    try:
        key = create_key(database, role, venue_id=venue, volunteer_id=volunteer)
    except InvalidKeyRequestError as error:
        fail(error, 2)
    console.print(f"created a {role} key; store it now, it cannot be shown again")
    typer.echo(key)
