"""``ledger calendar``: the month's published activities of every venue in a
subtree, by venue and date, with the places left (每月活动汇总, to publish)
— as JSON, or exported to a CSV, JSON Lines, xlsx or PDF file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import (
    ChineseOption,
    fail,
    in_existing_folder,
    print_json,
    say,
)
from ledger.domain.messages import Message

app = typer.Typer()


@app.command()
def calendar(
    ctx: typer.Context,
    month: Annotated[
        str, typer.Option(help="The month of the activities' start, YYYY-MM (CST).")
    ],
    venue: Annotated[
        str | None,
        typer.Option(help="A venue id: it and the venues under it (default: all)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Ledger position, or recording time with offset: read the "
            "ledger as it was then (default: now).",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            callback=in_existing_folder,
            help="Write a .pdf to publish, or a .csv, .jsonl or .xlsx, "
            "instead of JSON.",
        ),
    ] = None,
    chinese_headers: ChineseOption = False,
) -> None:
    """The month's published activities by venue and date, with places left."""
    from ledger.api.cli.exporting import export_rows
    from ledger.reads.queries import (
        InvalidReadError,
        NotFoundError,
        check_month,
        parse_as_of,
    )
    from ledger.services.calendar import (
        CALENDAR_COLUMNS,
        CALENDAR_SHEET,
        calendar_rows,
        calendar_source,
        write_calendar_pdf,
    )
    from ledger.services.exports import check_export_path

    try:
        check_month("--month", month)
        if export is not None:
            check_export_path(export, also=(".pdf",))
        answer = components_of(ctx).reads.activity_calendar(
            month, venue, parse_as_of(as_of, "--as-of")
        )
    except NotFoundError as error:
        fail(error, 4)
    except (InvalidReadError, ValueError) as error:
        fail(error, 2)
    if export is None:
        print_json(answer)
    elif export.suffix.lower() == ".pdf":
        write_calendar_pdf(export, answer)
        say(
            "wrote the calendar of {count} activities to {path}",
            count=answer.activities,
            path=export,
        )
    else:
        export_rows(
            export,
            calendar_rows(answer),
            CALENDAR_COLUMNS,
            calendar_source(answer),
            sheet=CALENDAR_SHEET,
            chinese_headers=chinese_headers,
            what=Message("activities"),
        )
