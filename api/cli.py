"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from ledger.application import Ledger
from ledger.importer import default_report_path, import_file
from ledger.settings import get_settings
from ledger.store import Database

app = typer.Typer(
    help="新时代文明实践 ledger: volunteer service recorded as immutable events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


class CliState:
    database_url: str = ""


state = CliState()


@app.callback()
def main(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: $LEDGER_DATABASE_URL, else sqlite:///ledger.db).",
        ),
    ] = None,
) -> None:
    state.database_url = db or get_settings().database_url


def open_ledger() -> Ledger:
    database = Database(state.database_url)
    database.create_schema()
    return Ledger(database)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    report: Annotated[
        Path | None, typer.Option(help="Where to write the rejection report.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Lines per transaction.")
    ] = 2000,
) -> None:
    """Append an interchange file (JSON Lines) to the ledger."""
    ledger = open_ledger()
    report_path = report or default_report_path(file)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=file.stat().st_size)
        summary = import_file(
            ledger,
            file,
            report_path=report_path,
            batch_size=batch_size,
            on_progress=lambda size: progress.advance(task, size),
        )
    if summary.rejected:
        console.print(f"rejected lines are listed in {report_path}")
    typer.echo(summary.summary_line())
