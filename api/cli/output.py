"""What commands print: JSON answers and exports on standard output,
progress and refusals on standard error."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console

console = Console(stderr=True)

ExportOption = Annotated[
    Path | None,
    typer.Option(
        "--export",
        help="Write every row to a .csv, .jsonl or .xlsx file instead of JSON.",
    ),
]
ChineseOption = Annotated[
    bool,
    typer.Option(
        "--chinese-headers", help="Chinese headers and sheet names in exports."
    ),
]


def print_json(document: object) -> None:
    if isinstance(document, BaseModel):
        document = document.model_dump()
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def fail(problem: object, exit_code: int) -> NoReturn:
    """Name the problem on standard error, in red, and exit with ``exit_code``."""
    console.print(f"[red]{problem}[/red]", soft_wrap=True)
    raise typer.Exit(exit_code)
