"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4).

The root callback reads the settings once (``--db`` overriding the database
URL) and composes the ledger's components from them for the command that
runs. Each group of verbs is a module of its own: the top-level verbs
(``ledger import``, ``ledger verify`` …) are merged in from modules added
without a name, the sub-commands (``ledger query hours`` …) are named groups.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ledger.api.cli import (
    audit,
    backup,
    calendar,
    certificates,
    honours,
    importing,
    integrity,
    keys,
    migrate,
    projections,
    query,
    serving,
)
from ledger.api.cli.output import fail
from ledger.bootstrap import LedgerComponents
from ledger.settings import LedgerSettings
from ledger.store.schema import SchemaVersionError


class LedgerCommands(TyperGroup):
    """The root group: a schema this release cannot use as it stands (an
    older one, with LEDGER_AUTO_MIGRATE false; a newer one) is refused in
    its one line, whichever verb first opened the database."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context
        try:
            return super().invoke(ctx)
        except SchemaVersionError as error:
            fail(error, 1)


app = typer.Typer(
    cls=LedgerCommands,
    help="新时代文明实践 ledger: volunteer service recorded as immutable events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for verbs in (
    importing,
    projections,
    integrity,
    serving,
    honours,
    certificates,
    migrate,
    backup,
):
    app.add_typer(verbs.app)
app.add_typer(calendar.app)
app.add_typer(query.app, name="query")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")


@app.callback()
def main(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: $LEDGER_DATABASE_URL, else sqlite:///ledger.db).",
        ),
    ] = None,
) -> None:
    settings = LedgerSettings(database_url=db) if db else LedgerSettings()
    components = LedgerComponents(settings)
    ctx.obj = components
    ctx.call_on_close(components.close)


if __name__ == "__main__":
    app()
