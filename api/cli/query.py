"""``ledger query``: the projections' answers (CONTRACT §5) as JSON (or a
table or CSV for people), or a venue's months exported as CSV or xlsx."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import (
    ChineseOption,
    ExportOption,
    OutputFormat,
    fail,
    print_json,
)
from ledger.reads.bounds import EXPLAINED_EVENTS

if TYPE_CHECKING:
    from ledger.reads.answers import CitedAnswer
    from ledger.reads.queries import LedgerReads, VenueQuery
    from ledger.services.exports import Column

app = typer.Typer(help="Read projections as JSON (CONTRACT §5).", no_args_is_help=True)

AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Ledger position, or recording time with offset: read the ledger "
        "as it was then (default: now).",
    ),
]
MonthOption = Annotated[
    str | None, typer.Option(help="Last month YYYY-MM (business month, CST).")
]
AfterOption = Annotated[
    int,
    typer.Option(
        help="Ledger position: continue after it (next_after); pass --as-of the "
        "first page's position too."
    ),
]
LimitOption = Annotated[int, typer.Option(help="Events per answer.")]
KindOption = Annotated[str | None, typer.Option(help="wish or service")]
VenueArgument = Annotated[str, typer.Argument(help="The venue's id.")]
VolunteerArgument = Annotated[str, typer.Argument(help="The volunteer's id.")]
FromOption = Annotated[
    str | None,
    typer.Option("--from", help="First month YYYY-MM (business month, CST)."),
]
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
    from ledger.reads.queries import InvalidReadError, NotFoundError

    reads = components_of(ctx).reads
    try:
        document = read(reads)
        if export is not None:  # only venue reads, which have months, take one
            from ledger.api.cli.exporting import export_months
            from ledger.services.exports import MonthlyAnswer

            assert isinstance(document, MonthlyAnswer)
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
    from ledger.domain.messages import translate
    from ledger.reads.answers import VolunteerHours
    from ledger.reads.audit import subject_names
    from ledger.services.exports import MonthlyAnswer

    if isinstance(document, MonthlyAnswer):
        venue = f"venue:{document.venue_id}"
        name = subject_names(reads.database, document.position).get(venue, "")
        rows = tables.month_rows_with_total(document, name)
        title = f"{translate('venue')} {document.venue_id} {name}".strip()
        if output is OutputFormat.TABLE:  # the title names the venue once
            columns = [c for c in columns if c.key not in ("venue_id", "venue_name")]
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


def _venue_query(
    venue_id: str,
    from_: str | None,
    to: str | None,
    subtree: bool,
    kind: str | None,
    as_of: str | None,
) -> VenueQuery:
    """A venue read as asked on the command line, a refusal naming the
    option given."""
    from ledger.reads.queries import VenueQuery, check_month, parse_as_of

    check_month("--from", from_)
    check_month("--to", to)
    return VenueQuery(venue_id, from_, to, subtree, kind, parse_as_of(as_of, "--as-of"))


@app.command("hours")
def query_hours(
    ctx: typer.Context,
    volunteer_id: VolunteerArgument,
    as_of: AsOfOption = None,
    through: Annotated[
        str | None,
        typer.Option(
            help="Business date YYYY-MM-DD: only service dated up to this day "
            "(CST) counts, as in honours runs and certificates (default: all)."
        ),
    ] = None,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A volunteer's approved hours."""
    from ledger.reads.queries import parse_as_of, parse_business_day

    _run_read(
        ctx,
        lambda reads: reads.volunteer_hours(
            volunteer_id,
            parse_as_of(as_of, "--as-of"),
            None if through is None else parse_business_day(through, "--through"),
        ),
        output=output,
    )


@app.command("activity")
def query_activity(
    ctx: typer.Context,
    venue_id: VenueArgument,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A venue's activities, sessions, volunteers and minutes."""
    from ledger.services.exports import MONTHLY_ACTIVITY_COLUMNS

    _run_read(
        ctx,
        lambda reads: reads.venue_activity(
            _venue_query(venue_id, from_, to, subtree, None, as_of)
        ),
        export,
        MONTHLY_ACTIVITY_COLUMNS,
        chinese_headers,
        output,
    )


@app.command("fulfilment")
def query_fulfilment(
    ctx: typer.Context,
    venue_id: VenueArgument,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: KindOption = None,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
    output: FormatOption = OutputFormat.JSON,
) -> None:
    """A venue's orders: counts, fulfilment rate and satisfaction."""
    from ledger.services.exports import MONTHLY_FULFILMENT_COLUMNS

    _run_read(
        ctx,
        lambda reads: reads.venue_fulfilment(
            _venue_query(venue_id, from_, to, subtree, kind, as_of)
        ),
        export,
        MONTHLY_FULFILMENT_COLUMNS,
        chinese_headers,
        output,
    )


@app.command("explain-hours")
def query_explain_hours(
    ctx: typer.Context, volunteer_id: VolunteerArgument, as_of: AsOfOption = None
) -> None:
    """The events behind a volunteer's hours, with their contributions."""
    from ledger.reads.queries import parse_as_of

    _run_read(
        ctx,
        lambda reads: reads.explain_volunteer_hours(
            volunteer_id, parse_as_of(as_of, "--as-of")
        ),
    )


@app.command("explain-activity")
def query_explain_activity(
    ctx: typer.Context,
    venue_id: VenueArgument,
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
            _venue_query(venue_id, from_, to, subtree, None, as_of),
            after=after,
            limit=limit,
        ),
    )


@app.command("explain-fulfilment")
def query_explain_fulfilment(
    ctx: typer.Context,
    venue_id: VenueArgument,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: KindOption = None,
    as_of: AsOfOption = None,
    after: AfterOption = 0,
    limit: LimitOption = EXPLAINED_EVENTS,
) -> None:
    """The events behind a venue's order figures, a page at a time."""
    _run_read(
        ctx,
        lambda reads: reads.explain_venue_fulfilment(
            _venue_query(venue_id, from_, to, subtree, kind, as_of),
            after=after,
            limit=limit,
        ),
    )
