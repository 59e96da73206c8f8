"""What commands print: JSON answers and exports on standard output,
progress and refusals on standard error."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ledger.domain.messages import translate

console = Console(stderr=True)


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


def in_existing_folder(param: typer.CallbackParam, path: Path | None) -> Path | None:
    """A file to write, refused in one line (exit 7) while the command line
    is read, before anything is, when its folder does not exist."""
    if path is not None and not path.absolute().parent.is_dir():
        named = param.opts[0] if param.param_type_name == "option" else None
        name = named or (param.name or "").upper()
        fail(
            "{name}: the folder {folder} does not exist; create it first",
            ExitCode.FILE_ERROR,
            name=name,
            folder=path.absolute().parent,
        )
    return path


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


def fail(problem: str | Exception, exit_code: int, /, **params: object) -> NoReturn:
    """Name the problem on standard error, in red, in the reader's language,
    and exit with ``exit_code``. ``problem`` is a message template, its
    ``{names}`` filled from ``params`` (docs/i18n.md), or an error, which
    renders its own message."""
    text = translate(problem, params) if isinstance(problem, str) else str(problem)
    console.print(f"[red]{escape(text)}[/red]", soft_wrap=True)
    raise typer.Exit(exit_code)
