"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4).

The root callback takes ``--db``; the settings are read once (it overriding
the database URL) and the ledger's components composed from them when the
command that runs first asks for them (``context.Invocation``), so that
``ledger VERB --help`` loads none of them. Each group of verbs is a module
of its own: the top-level verbs (``ledger import``, ``ledger verify`` …) are
merged in from modules added without a name, the sub-commands (``ledger
query hours`` …) are named groups.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer._click import Context as ClickContext  # the type TyperGroup takes
from typer.core import TyperGroup

from ledger.api.cli import (
    audit,
    backup,
    calendar,
    certificates,
    forgetting,
    honours,
    importing,
    integrity,
    keys,
    migrate,
    personal_data,
    projections,
    query,
    serving,
)
from ledger.api.cli.context import Invocation
from ledger.api.cli.output import ExitCode, fail
from ledger.domain.messages import language_from_environment, use_language


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
        except OSError as error:
            reason = error.strerror or str(error)
            if error.filename:
                fail(
                    "{reason}: {path}",
                    ExitCode.FILE_ERROR,
                    reason=reason,
                    path=error.filename,
                )
            fail(reason, ExitCode.FILE_ERROR)
        except Exception as error:
            code = _exit_code(error)
            if code is None:
                raise
            fail(error, code)


def _exit_code(error: Exception) -> ExitCode | None:
    """The exit code of a ledger error any verb may meet; None for others.
    The error classes are imported only once one of the ledger's errors is
    raised (the module that raised it is loaded by then): ``ledger --help``
    does not load the database layer."""
    if not type(error).__module__.startswith("ledger."):
        return None
    from ledger.bootstrap import NoLedgerError
    from ledger.store.event_store import (
        DatabaseUnavailableError,
        LedgerBusyError,
        MasterKeyError,
    )
    from ledger.store.schema import SchemaVersionError

    codes = {
        LedgerBusyError: ExitCode.LEDGER_BUSY,
        MasterKeyError: ExitCode.CHECK_FAILED,
        DatabaseUnavailableError: ExitCode.DATABASE_UNAVAILABLE,
        SchemaVersionError: ExitCode.SCHEMA_NOT_CURRENT,
        NoLedgerError: ExitCode.NOT_FOUND,
    }
    return next((c for kind, c in codes.items() if isinstance(error, kind)), None)


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
    forgetting,
):
    app.add_typer(verbs.app)
app.add_typer(calendar.app)
app.add_typer(query.app, name="query")
app.add_typer(audit.app, name="audit")
app.add_typer(keys.app, name="keys")
app.add_typer(personal_data.app, name="personal-data")


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
    # The locale is the reader's, not a setting of the ledger: messages follow
    # it for this run (docs/i18n.md).
    ctx.with_resource(use_language(language_from_environment(os.environ)))
    invocation = Invocation(db)
    ctx.obj = invocation
    ctx.call_on_close(invocation.close)


if __name__ == "__main__":
    app()
