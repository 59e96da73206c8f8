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
from typer._click import Context as ClickContext  # the type TyperGroup takes
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
from ledger.api.cli.output import ExitCode, fail
from ledger.bootstrap import LedgerComponents, NoLedgerError
from ledger.settings import LedgerSettings
from ledger.store.event_store import DatabaseUnavailableError, LedgerBusyError
from ledger.store.schema import SchemaVersionError


class LedgerCommands(TyperGroup):
    """The root group: what stops any verb and is not the caller's mistake
    in the verb's own terms — a busy ledger, an unreachable database, a
    schema this release cannot use as it stands (an older one with
    LEDGER_AUTO_MIGRATE false, a newer one), no ledger where a command only
    reads, a file that cannot be written —
    ends it with one line and its exit code (``ExitCode``), not a
    traceback, whichever verb met it."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerBusyError as error:
            fail(error, ExitCode.LEDGER_BUSY)
        except DatabaseUnavailableError as error:
            fail(error, ExitCode.DATABASE_UNAVAILABLE)
        except SchemaVersionError as error:
            fail(error, ExitCode.SCHEMA_NOT_CURRENT)
        except NoLedgerError as error:
            fail(error, ExitCode.NOT_FOUND)
        except OSError as error:
            where = f": {error.filename}" if error.filename else ""
            fail(f"{error.strerror or error}{where}", ExitCode.FILE_ERROR)


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
    # A command that writes says so (``may_create``); the rest only read, and
    # refuse a database without a ledger rather than make an empty one.
    components = LedgerComponents(settings, create=False)
    ctx.obj = components
    ctx.call_on_close(components.close)


if __name__ == "__main__":
    app()
