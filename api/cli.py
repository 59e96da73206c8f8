"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from api.dashboards import show_dashboards
from ledger.application import Ledger
from ledger.importer import ImportSummary, default_report_path, import_file
from ledger.projection import CatchUpReport, ProjectionEngine, list_dead_letters
from ledger.settings import get_settings
from ledger.store import Database
from ledger.synthetic import DEFAULT_SCALE, write_city
from projections.reads import InvalidReadError, LedgerReads, NotFoundError, parse_as_of
from projections.registry import ALL_PROJECTIONS

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


@app.command()
def demo(
    scale: Annotated[
        float,
        typer.Option(min=0.0001, max=1.0, help="1.0 is a full Kunshan city-year."),
    ] = DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Same seed, same city.")] = 2022,
    year: Annotated[int, typer.Option(help="The year of service.")] = 2024,
) -> None:
    """Build a synthetic Kunshan-shaped city, project it, show the dashboards."""
    ledger = open_ledger()
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder) / f"city-{scale}-{seed}-{year}.jsonl"
        lines = write_city(city, scale=scale, seed=seed, year=year)
        console.print(
            f"generated {lines:,} interchange lines (scale {scale}, seed {seed})"
        )
        summary = _import_with_progress(
            ledger, city, Path(folder) / "rejected.jsonl", 2000
        )
    console.print(summary.summary_line())
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    report = engine.catch_up()
    console.print(
        f"projected up to position {report.position} in {report.seconds:.1f} s"
    )
    reads = LedgerReads(ledger.database)
    for centre in reads.venue_children(None):
        show_dashboards(Console(), reads, centre["venue_id"], year)


def _import_with_progress(
    ledger: Ledger, file: Path, report_path: Path, batch_size: int
) -> ImportSummary:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=file.stat().st_size)
        return import_file(
            ledger,
            file,
            report_path=report_path,
            batch_size=batch_size,
            on_progress=lambda size: progress.advance(task, size),
        )


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
    summary = _import_with_progress(ledger, file, report_path, batch_size)
    if summary.rejected:
        console.print(f"rejected lines are listed in {report_path}")
    typer.echo(summary.summary_line())


def open_engine() -> ProjectionEngine:
    ledger = open_ledger()
    return ProjectionEngine(ledger.database, ALL_PROJECTIONS)


def print_json(document: object) -> None:
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def _print_catch_up(report: CatchUpReport) -> None:
    for name in sorted(report.events):
        parked = report.dead_letters.get(name, 0)
        typer.echo(
            f"{name}: {report.events[name]} events, {report.entries[name]} entries"
            + (f", {parked} dead letters" if parked else "")
        )
    typer.echo(f"position={report.position} seconds={report.seconds:.2f}")


def _exit_on_dead_letters(engine: ProjectionEngine) -> None:
    with engine.database.reading() as conn:
        letters = list_dead_letters(conn)
    if letters:
        console.print(f"[red]{len(letters)} event(s) parked as dead letters:[/red]")
        for letter in letters[:20]:
            console.print(
                f"  {letter['name']} v{letter['version']} at position "
                f"{letter['position']} ({letter['topic']}): {letter['error']}"
            )
        raise typer.Exit(3)


@app.command()
def project(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new events.")
    ] = False,
    poll: Annotated[
        float, typer.Option(help="Seconds between polls when following.")
    ] = 0.2,
) -> None:
    """Bring every projection up to date with the ledger."""
    engine = open_engine()
    if follow:
        try:
            engine.follow(poll_seconds=poll, on_report=_print_catch_up)
        except KeyboardInterrupt:
            return
    _print_catch_up(engine.catch_up())
    _exit_on_dead_letters(engine)


@app.command()
def rebuild(
    name: Annotated[
        str | None, typer.Argument(help="One projection; all if omitted.")
    ] = None,
) -> None:
    """Rebuild projections from the first event, beside the live ones."""
    engine = open_engine()
    names = [engine.projection(name).name] if name else None
    _print_catch_up(engine.rebuild(names))


@app.command()
def verify() -> None:
    """Check that every projection equals a fresh replay; non-zero on mismatch."""
    engine = open_engine()
    failed = False
    for result in engine.verify():
        status = "ok" if result.ok else "MISMATCH"
        typer.echo(
            f"{result.name}: {status} at position {result.position} "
            f"fingerprint={result.live_fingerprint[:16]}"
        )
        if result.dead_letters:
            typer.echo(f"  {result.dead_letters} dead letter(s) parked")
        for difference in result.differences[:10]:
            typer.echo(
                f"  key {list(difference.key)}: live {difference.live} "
                f"!= replay {difference.replayed}"
            )
        failed = failed or not result.ok
    if failed:
        raise typer.Exit(1)


query_app = typer.Typer(
    help="Read projections as JSON (CONTRACT §5).", no_args_is_help=True
)
app.add_typer(query_app, name="query")

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="A ledger position, or a recording time with offset."),
]
MonthOption = Annotated[str | None, typer.Option(help="Month YYYY-MM (inclusive).")]


def _run_read(read: Callable[[LedgerReads], object]) -> None:
    reads = LedgerReads(open_ledger().database)
    try:
        print_json(read(reads))
    except NotFoundError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(4) from None
    except InvalidReadError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@query_app.command("hours")
def query_hours(volunteer_id: str, as_of: AsOfOption = None) -> None:
    """A volunteer's approved hours."""
    _run_read(lambda reads: reads.volunteer_hours(volunteer_id, parse_as_of(as_of)))


@query_app.command("activity")
def query_activity(
    venue_id: str,
    from_: Annotated[
        str | None, typer.Option("--from", help="First month YYYY-MM.")
    ] = None,
    to: MonthOption = None,
    subtree: Annotated[bool, typer.Option("--subtree/--no-subtree")] = True,
    as_of: AsOfOption = None,
) -> None:
    """A venue's activities, sessions, volunteers and minutes."""
    _run_read(
        lambda reads: reads.venue_activity(
            venue_id, from_, to, subtree=subtree, as_of=parse_as_of(as_of)
        )
    )


@query_app.command("fulfilment")
def query_fulfilment(
    venue_id: str,
    from_: Annotated[
        str | None, typer.Option("--from", help="First month YYYY-MM.")
    ] = None,
    to: MonthOption = None,
    subtree: Annotated[bool, typer.Option("--subtree/--no-subtree")] = True,
    kind: Annotated[str | None, typer.Option(help="wish or service")] = None,
    as_of: AsOfOption = None,
) -> None:
    """A venue's orders: counts, fulfilment rate and satisfaction."""
    _run_read(
        lambda reads: reads.venue_fulfilment(
            venue_id, from_, to, subtree=subtree, kind=kind, as_of=parse_as_of(as_of)
        )
    )


@query_app.command("explain-hours")
def query_explain_hours(volunteer_id: str, as_of: AsOfOption = None) -> None:
    """The events behind a volunteer's hours, with their contributions."""
    _run_read(
        lambda reads: reads.explain_volunteer_hours(volunteer_id, parse_as_of(as_of))
    )
