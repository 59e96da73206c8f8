"""``ledger import`` appends an interchange file; ``ledger demo`` imports a
synthetic city, projects it and shows its dashboards."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.output import (
    ExitCode,
    error_console,
    fail,
    in_existing_folder,
    note,
)
from ledger.domain.messages import translate
from ledger.services import DEFAULT_SCALE

if TYPE_CHECKING:
    from ledger.application.importer import ImportSummary
    from ledger.application.ledger import Ledger

app = typer.Typer()


@app.command()
def demo(
    ctx: typer.Context,
    scale: Annotated[
        float,
        typer.Option(min=0.0001, max=1.0, help="1.0 is a full Kunshan city-year."),
    ] = DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Same seed, same city.")] = 2022,
    year: Annotated[int, typer.Option(help="The year of service.")] = 2024,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Add the city to a ledger that already holds events."
        ),
    ] = False,
) -> None:
    """Build a synthetic Kunshan-shaped city, project it, show the dashboards.
    It goes into a new or empty ledger only, unless ``--force``: a demo city
    in a real ledger could not be taken out again."""
    from rich.console import Console

    from ledger.api.cli.dashboards import show_dashboards
    from ledger.services.synthetic_city import write_city
    from ledger.store.event_store import head_position

    components = components_of(ctx).may_create()
    ledger = ledger_of(ctx)
    with components.database.reading() as conn:
        held = head_position(conn)
    if held and not force:
        fail(
            "the ledger already holds {events} events: `ledger demo` adds a "
            "synthetic city only to an empty one (choose another --db, or --force)",
            ExitCode.BAD_INPUT,
            events=f"{held:,}",
        )
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder) / f"city-{scale}-{seed}-{year}.jsonl"
        lines = write_city(city, scale=scale, seed=seed, year=year)
        note(
            "generated {lines} interchange lines (scale {scale}, seed {seed})",
            lines=f"{lines:,}",
            scale=scale,
            seed=seed,
        )
        summary = _import_with_progress(
            ledger, city, Path(folder) / "rejected.jsonl", 2000
        )
    error_console().print(summary.rate_line())
    error_console().print(summary.summary_line())
    report = components.projection_engine.catch_up()
    note(
        "projected up to position {position} in {seconds} s",
        position=report.position,
        seconds=f"{report.seconds:.1f}",
    )
    reads = components.reads
    for centre in reads.venue_children(None).children:
        show_dashboards(Console(), reads, centre.venue_id, year)


def _import_with_progress(
    ledger: Ledger, file: Path, report_path: Path, batch_size: int
) -> ImportSummary:
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from ledger.application.importer import import_file

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=error_console(),
        transient=True,
    ) as progress:
        importing = translate("importing {file}", {"file": file.name})
        task = progress.add_task(escape(importing), total=file.stat().st_size)
        return import_file(
            ledger,
            file,
            report_path=report_path,
            batch_size=batch_size,
            on_progress=lambda size: progress.advance(task, size),
        )


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="The interchange file: JSON Lines, one command a line (CONTRACT §1).",
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the rejection report.", callback=in_existing_folder
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Lines per transaction.")
    ] = 2000,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 3 when any line was rejected (the others are still "
            "imported; CONTRACT §1.2).",
        ),
    ] = False,
) -> None:
    """Append an interchange file (JSON Lines) to the ledger, making the
    ledger if the database holds none yet."""
    from ledger.application.importer import default_report_path

    report_path = report or default_report_path(file)
    if report_path.resolve() == file.resolve() or (
        report_path.exists() and report_path.samefile(file)
    ):
        fail(
            "the report {path} is the file to import: choose another "
            "--report (nothing was read)",
            ExitCode.BAD_INPUT,
            path=report_path,
        )
    components_of(ctx).may_create()
    ledger = ledger_of(ctx)
    summary = _import_with_progress(ledger, file, report_path, batch_size)
    for told in summary.notes:
        note("note: {note}", note=translate(told))
    if summary.rejected:
        note("rejected lines are listed in {path}", path=report_path)
    error_console().print(summary.rate_line())
    typer.echo(summary.summary_line())
    if strict and summary.rejected:
        raise typer.Exit(ExitCode.NEEDS_ATTENTION)
