"""What commands print: JSON answers and exports on standard output,
progress and refusals on standard error."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ledger.domain.messages import Message, translate

if TYPE_CHECKING:
    from rich.console import Console


@cache
def error_console() -> Console:
    """Standard error as rich draws on it (colours, progress bars), made
    when the first line is said there: a quiet read does not load rich."""
    from rich.console import Console

    return Console(stderr=True)


class ExitCode(IntEnum):
    """What a ``ledger`` command's exit status means (docs/cli.md)."""

    OK = 0
    CHECK_FAILED = 1  # verify, verify-certificate, verify-export found a problem
    BAD_INPUT = 2  # an option, argument or file the caller gave is refused
    NEEDS_ATTENTION = 3  # events parked as dead letters, awards incomplete
    NOT_FOUND = 4  # the volunteer, venue, session or key is unknown
    LEDGER_BUSY = 5  # another writer held the append lock too long: retry
    DATABASE_UNAVAILABLE = 6  # the database cannot be reached (or is full)
    FILE_ERROR = 7  # a file could not be read or written (disk full, no access)
    SCHEMA_NOT_CURRENT = 8  # the schema needs `ledger migrate`, or is newer


class OutputFormat(StrEnum):
    """How ``ledger query`` prints a read (``ledger.api.cli.tables``)."""

    JSON = "json"
    TABLE = "table"
    CSV = "csv"


def in_existing_folder(
    ctx: typer.Context, param: typer.CallbackParam, path: Path | None
) -> Path | None:
    """A file to write, refused in one line while the command line is read,
    before anything is: when its folder does not exist (exit 7), or when it
    is one of the ledger's own files — its SQLite database (or the database's
    journal) or anything in its key directory (exit 2): an output written
    there would destroy the ledger or its keys."""
    if path is None:
        return path
    named = param.opts[0] if param.param_type_name == "option" else None
    name = named or (param.name or "").upper()
    if not path.absolute().parent.is_dir():
        fail(
            "{name}: the folder {folder} does not exist; create it first",
            ExitCode.FILE_ERROR,
            name=name,
            folder=path.absolute().parent,
        )
    from ledger.api.cli.context import ledger_files_of

    for own, what in ledger_files_of(ctx):
        if _same_or_inside(path, own):
            fail(
                "{name}: {path} is {what}; write the output elsewhere",
                ExitCode.BAD_INPUT,
                name=name,
                path=path,
                what=what,
            )
    return path


def _same_or_inside(path: Path, own: Path) -> bool:
    """``path`` is the file ``own`` (by any name: a link, a relative path)
    or lies inside the directory ``own``."""
    target = path.resolve()
    if own.is_dir():
        return target == own.resolve() or own.resolve() in target.parents
    if target == own.resolve():
        return True
    return path.exists() and own.exists() and path.samefile(own)


ExportOption = Annotated[
    Path | None,
    typer.Option(
        "--export",
        help="Write every row to a .csv, .jsonl or .xlsx file instead of JSON.",
        callback=in_existing_folder,
    ),
]
ChineseOption = Annotated[
    bool,
    typer.Option(
        "--chinese-headers", help="Chinese headers and sheet names in exports."
    ),
]


def print_json(document: object) -> None:
    """``document`` (an answer, a dict) as indented JSON on standard output."""
    import orjson  # imported here, as every module a command may not need
    from pydantic import BaseModel

    if isinstance(document, BaseModel):
        document = document.model_dump()
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def say(template: str, /, **params: object) -> None:
    """A result line on standard output — what was written, what was found —
    in the reader's language: ``template`` with its ``{names}`` filled from
    ``params`` (docs/i18n.md)."""
    typer.echo(translate(template, params))


def note(template: str, /, **params: object) -> None:
    """A progress line on standard error, in the reader's language."""
    from rich.markup import escape

    error_console().print(escape(translate(template, params)), soft_wrap=True)


def fail(
    problem: str | Exception | Message, exit_code: int, /, **params: object
) -> NoReturn:
    """Name the problem on standard error, in red, in the reader's language,
    and exit with ``exit_code``. ``problem`` is a message template, its
    ``{names}`` filled from ``params`` (docs/i18n.md), or an error or a
    ``Message``, which renders its own text."""
    from rich.markup import escape

    text = translate(problem, params) if isinstance(problem, str) else str(problem)
    error_console().print(f"[red]{escape(text)}[/red]", soft_wrap=True)
    raise typer.Exit(exit_code)
