"""``ledger project`` brings the projections up to date; ``ledger rebuild``
replays them from the first event beside the live ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from ledger.api.cli.context import components_of
from ledger.api.cli.output import error_console, note, say
from ledger.domain.messages import translate

if TYPE_CHECKING:
    from ledger.engine import CatchUpReport, ProjectionEngine

app = typer.Typer()


def _print_catch_up(report: CatchUpReport) -> None:
    for name in sorted(report.events):
        parked = report.dead_letters.get(name, 0)
        counts = {"name": name, "events": report.events[name]}
        counts["entries"] = report.entries[name]
        if parked:
            say(
                "{name}: {events} events, {entries} entries, {parked} dead letters",
                parked=parked,
                **counts,
            )
        else:
            say("{name}: {events} events, {entries} entries", **counts)
    typer.echo(f"position={report.position} seconds={report.seconds:.2f}")


def _print_leading(leading: bool) -> None:
    if leading:
        say("following")
    else:
        say("another process (a server, say) follows this ledger: waiting")


def _exit_on_dead_letters(engine: ProjectionEngine) -> None:
    from ledger.engine import list_dead_letters

    with engine.database.reading() as conn:
        letters = list_dead_letters(conn)
    if letters:
        text = translate(
            "{count} event(s) parked as dead letters:", {"count": len(letters)}
        )
        error_console().print(f"[red]{escape(text)}[/red]")
        for letter in letters[:20]:
            note(
                "  {name} v{version} at position {position} ({topic}): {error}",
                **letter,
            )
        raise typer.Exit(3)


@app.command()
def project(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new events.")
    ] = False,
    poll: Annotated[
        float, typer.Option(help="Seconds between polls when following.")
    ] = 0.2,
) -> None:
    """Bring every projection up to date with the ledger; with --follow,
    keep them so, as the one follower of the database (ledger serve follows
    too: whichever holds the lock follows, the others wait to take over)."""
    engine = components_of(ctx).projection_engine
    if follow:
        try:
            engine.follow(
                poll_seconds=poll, on_report=_print_catch_up, on_leading=_print_leading
            )
        except KeyboardInterrupt:
            return
    _print_catch_up(engine.catch_up())
    _exit_on_dead_letters(engine)


@app.command()
def rebuild(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="One projection; all if omitted.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes sharing the projections out (default: one more "
            "than the cores, which evens out shares of unequal work).",
        ),
    ] = None,
) -> None:
    """Rebuild projections from the first event, beside the live ones."""
    from ledger.engine import REBUILD_WORKERS

    engine = components_of(ctx).projection_engine
    names = [engine.projection(name).name] if name else None
    report = engine.rebuild(names, workers=workers or REBUILD_WORKERS)
    _print_catch_up(report)
    typer.echo(f"processes={report.processes}")
