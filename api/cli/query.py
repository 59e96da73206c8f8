"""``ledger query``: the projections' answers (CONTRACT §5) as JSON, or a
venue's months exported as CSV or xlsx."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.exporting import export_months
from ledger.api.cli.output import ChineseOption, ExportOption, fail, print_json
from ledger.api.cli.tables import OutputFormat
from ledger.domain.messages import translate
from ledger.reads.answers import CitedAnswer, VolunteerHours
from ledger.reads.audit import subject_names
from ledger.reads.queries import (
    EXPLAINED_EVENTS,
    InvalidReadError,
    LedgerReads,
    NotFoundError,
    VenueQuery,
    parse_as_of,
)
from ledger.services.exports import (
    MONTHLY_ACTIVITY_COLUMNS,
    MONTHLY_FULFILMENT_COLUMNS,
    Column,
    MonthlyAnswer,
)

app = typer.Typer(help="Read projections as JSON (CONTRACT §5).", no_args_is_help=True)

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="A ledger position, or a recording time with offset."),
]
MonthOption = Annotated[str | None, typer.Option(help="Month YYYY-MM (inclusive).")]
AfterOption = Annotated[
    int,
    typer.Option(
        help="Continue after this position (next_after); pass --as-of the "
        "first page's position too."
    ),
]
LimitOption = Annotated[int, typer.Option(help="Events per answer.")]
FromOption = Annotated[str | None, typer.Option("--from", help="First month YYYY-MM.")]
SubtreeOption = Annotated[
    bool,
    typer.Option("--subtree/--no-subtree", help="With the venue's descendants."),
]


FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        help="json (the default, for scripts); table (hours with one decimal, "
        "rates in %, venue names, in your language); csv (the table's rows).",
    ),
]


def _run_read(
    ctx: typer.Context,
    read: Callable[[LedgerReads], CitedAnswer],
    export: Path | None = None,
    columns: Sequence[Column] = (),
    chinese_headers: bool = False,
    output: OutputFormat = OutputFormat.JSON,
) -> None:
    """Print a read as JSON (or as a table or CSV), or export its months."""
    reads = components_of(ctx).reads
    try:
        document = read(reads)
        # only venue reads have months; no other read is exported
        if export is not None and isinstance(document, MonthlyAnswer):
            export_months(reads.database, document, export, columns, chinese_headers)
        elif output is OutputFormat.JSON:
            print_json(document)
        else:
            _print_for_people(reads, document, columns, output)
    except NotFoundError as error:
        fail(error, 4)
    except InvalidReadError as error:
        fail(error, 2)


def _print_for_people(
    reads: LedgerReads,
    document: CitedAnswer,
    columns: Sequence[Column],
    output: OutputFormat,
) -> None:
    """A volunteer's figures, or a venue's months and their total, as a
    table or CSV (``ledger.api.cli.tables``)."""
    from ledger.api.cli import tables

    if isinstance(document, MonthlyAnswer):
        venue = f"venue:{document.venue_id}"
        name = subject_names(reads.database, document.position).get(venue, "")
        rows = tables.month_rows_with_total(document, name)
        title = f"{translate('venue')} {document.venue_id} {name}".strip()
    else:
        assert isinstance(document, VolunteerHours)
        figures = tables.hours_figures(document)
        columns = (tables.FIGURE, tables.VALUE)
        rows = tables.figures_as_rows(figures, as_text=output is OutputFormat.TABLE)
        title = f"{translate('volunteer')} {document.volunteer_id}"
    if output is OutputFormat.TABLE:
        tables.print_table(title, columns, rows)
    else:
        tables.print_csv(columns, rows)


@app.command("hours")
def query_hours(
    ctx: typer.Context,
    volunteer_id: str,
    as_of: AsOfOption = None,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A volunteer's approved hours."""
    _run_read(
        ctx,
        lambda reads: reads.volunteer_hours(volunteer_id, parse_as_of(as_of)),
        output=output,
    )


@app.command("activity")
def query_activity(
    ctx: typer.Context,
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A venue's activities, sessions, volunteers and minutes."""
    _run_read(
        ctx,
        lambda reads: reads.venue_activity(
            VenueQuery(venue_id, from_, to, subtree, as_of=parse_as_of(as_of))
        ),
        export,
        MONTHLY_ACTIVITY_COLUMNS,
        chinese_headers,
        output,
    )


@app.command("fulfilment")
def query_fulfilment(
    ctx: typer.Context,
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: Annotated[str | None, typer.Option(help="wish or service")] = None,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A venue's orders: counts, fulfilment rate and satisfaction."""
    _run_read(
        ctx,
        lambda reads: reads.venue_fulfilment(
            VenueQuery(venue_id, from_, to, subtree, kind, parse_as_of(as_of))
        ),
        export,
        MONTHLY_FULFILMENT_COLUMNS,
        chinese_headers,
        output,
    )


@app.command("explain-hours")
def query_explain_hours(
    ctx: typer.Context, volunteer_id: str, as_of: AsOfOption = None
) -> None:
    """The events behind a volunteer's hours, with their contributions."""
    _run_read(
        ctx,
        lambda reads: reads.explain_volunteer_hours(volunteer_id, parse_as_of(as_of)),
    )


@app.command("explain-activity")
def query_explain_activity(
    ctx: typer.Context,
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    as_of: AsOfOption = None,
    after: AfterOption = 0,
    limit: LimitOption = EXPLAINED_EVENTS,
) -> None:
    """The events behind a venue's activity figures, a page at a time."""
    _run_read(
        ctx,
        lambda reads: reads.explain_venue_activity(
            VenueQuery(venue_id, from_, to, subtree, as_of=parse_as_of(as_of)),
            after=after,
            limit=limit,
        ),
    )


@app.command("explain-fulfilment")
def query_explain_fulfilment(
    ctx: typer.Context,
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: Annotated[str | None, typer.Option(help="wish or service")] = None,
    as_of: AsOfOption = None,
    after: AfterOption = 0,
    limit: LimitOption = EXPLAINED_EVENTS,
) -> None:
    """The events behind a venue's order figures, a page at a time."""
    _run_read(
        ctx,
        lambda reads: reads.explain_venue_fulfilment(
            VenueQuery(venue_id, from_, to, subtree, kind, parse_as_of(as_of)),
            after=after,
            limit=limit,
        ),
    )
