"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4).

The root callback takes ``--db``; the settings are read once (it overriding
the database URL) and the ledger's components composed from them when the
command that runs first asks for them (``context.Invocation``), so that
``ledger VERB --help`` loads none of them. Each group of verbs is a module
of its own (``VERBS``): a top-level verb (``ledger import``, ``ledger
verify`` …) is one of its module's commands, a group of sub-commands
(``ledger query hours`` …) is its module's whole Typer app. A run imports
and builds only the verb it was given: typer builds a command by reading
its parameters' annotations, and building every verb would cost a quick
read more than the read itself (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Annotated, Any

import typer
import typer.main
from typer._click import Context as ClickContext  # the type TyperGroup takes
from typer._click.core import Command
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from ledger.api.cli.context import Invocation
from ledger.api.cli.language import (
    localise,
    localise_typer_words,
    may_show_help,
    usage_refusal,
)
from ledger.api.cli.output import ExitCode, fail
from ledger.domain.messages import language_from_environment, use_language

# Every verb of ``ledger``, in the order its help lists them, and the module
# of ``ledger.api.cli`` that defines it (tests/e2e/test_cli_options.py holds
# this table to the modules' commands).
VERBS: dict[str, str] = {
    "demo": "importing",
    "import": "importing",
    "project": "projections",
    "rebuild": "projections",
    "verify": "integrity",
    "checkpoint": "integrity",
    "public-key": "integrity",
    "export-events": "integrity",
    "verify-export": "integrity",
    "serve": "serving",
    "honours": "honours",
    "certificate": "certificates",
    "verify-certificate": "certificates",
    "migrate": "migrate",
    "backup": "backup",
    "forget": "forgetting",
    "calendar": "calendar",
    "query": "query",
    "audit": "audit",
    "keys": "keys",
    "personal-data": "personal_data",
}


class LedgerCommands(TyperGroup):
    """The root group: what stops any verb and is not the caller's mistake
    in the verb's own terms — a busy ledger, an unreachable database, a
    schema this release cannot use as it stands (an older one with
    LEDGER_AUTO_MIGRATE false, a newer one), no ledger where a command only
    reads, a file that cannot be written —
    ends it with one line and its exit code (``ExitCode``), not a
    traceback, whichever verb met it. A command line it cannot read is
    refused the same way, in the reader's language (``language``)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """The whole run in the reader's language — its locale's, not a
        setting of the ledger (docs/i18n.md) — from the help texts on."""
        with use_language(language_from_environment(os.environ)):
            localise(self)
            given = kwargs.get("args", args[0] if args else None)
            if may_show_help(sys.argv[1:] if given is None else list(given)):
                localise_typer_words()
            return super().main(*args, **kwargs)

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Command | None:
        """The verb ``cmd_name``, its module imported and its command built
        (in the reader's language) the first time it is asked for."""
        if cmd_name not in self.commands and cmd_name in VERBS:
            module = importlib.import_module(f"ledger.api.cli.{VERBS[cmd_name]}")
            built = typer.main.get_command(module.app)
            if isinstance(built, TyperGroup):
                built = built.commands.get(cmd_name, built)
            built.name = cmd_name
            localise(built)
            self.commands[cmd_name] = built
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: ClickContext, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """As typer resolves it, with the verbs not built yet suggested for
        a mistyped one too."""
        if args and args[0] not in VERBS and not args[0].startswith("-"):
            from difflib import get_close_matches

            matches = get_close_matches(args[0], list(VERBS))
            if matches:
                known = ", ".join(f"{m!r}" for m in matches)
                ctx.fail(f"No such command {args[0]!r}. Did you mean {known}?")
        return super().resolve_command(ctx, args)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: ClickContext | None = None,
        **extra: Any,
    ) -> ClickContext:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            fail(usage_refusal(error), ExitCode.BAD_INPUT)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            fail(usage_refusal(error), ExitCode.BAD_INPUT)
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
    from ledger.store.integrity import KeyMaterialError
    from ledger.store.personal_data import PersonalDataError
    from ledger.store.schema import SchemaVersionError

    codes = {
        LedgerBusyError: ExitCode.LEDGER_BUSY,
        MasterKeyError: ExitCode.CHECK_FAILED,
        KeyMaterialError: ExitCode.CHECK_FAILED,
        PersonalDataError: ExitCode.CHECK_FAILED,
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
    invocation = Invocation(db)
    ctx.obj = invocation
    ctx.call_on_close(invocation.close)


def run() -> None:
    """The ``ledger`` command, as the console script and ``python -m``
    start it. When the command is done, everything still alive is frozen
    out of the cyclic collector (``gc.freeze``): the process is ending,
    and the collector's last passes over the heap a read built (the
    database layer, the projections) would cost it a fifth of a quick
    read's time (docs/benchmarks.md). Objects are still released by
    their reference counts; only garbage in cycles is left to the exit."""
    try:
        app()
    finally:
        gc.freeze()


if __name__ == "__main__":
    run()
