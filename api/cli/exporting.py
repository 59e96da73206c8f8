"""Exports from the command line: every row written, streamed, with a
progress bar on a terminal for long ones, and one line saying how many rows
went to which file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ledger.api.cli.output import error_console, fail, say
from ledger.domain.messages import Message, translate
from ledger.reads.audit import subject_names
from ledger.services.exports import (
    MONTHS,
    Column,
    ExportSource,
    MonthlyAnswer,
    Sheet,
    monthly_rows,
    monthly_source,
    write_export,
)
from ledger.store.event_store import Database

# Fewer rows than this are written before a progress bar would show.
PROGRESS_FROM = 5_000


def export_rows(
    path: Path,
    rows: Iterable[dict[str, Any]],
    columns: Sequence[Column],
    source: ExportSource,
    *,
    sheet: Sheet,
    chinese_headers: bool,
    what: Message,
    total: int | None = None,
) -> int:
    """Write every one of ``rows`` to ``path`` and say how many, showing
    progress on a terminal when ``total`` is large."""
    with _progress(what, total) as advance:
        try:
            written = write_export(
                path,
                rows,
                columns,
                source,
                sheet=sheet,
                chinese_headers=chinese_headers,
                on_row=advance,
            )
        except ValueError as error:
            fail(error, 2)
    say("exported {count} {what} to {path}", count=f"{written:,}", what=what, path=path)
    return written


@contextmanager
def _progress(what: Message, total: int | None) -> Iterator[Callable[[], None] | None]:
    if total is None or total < PROGRESS_FROM or not error_console().is_terminal:
        yield None
        return
    with Progress(
        TextColumn(escape(translate("exporting {what}", {"what": what}))),
        BarColumn(),
        MofNCompleteColumn(),
        console=error_console(),
        transient=True,
    ) as progress:
        task = progress.add_task(str(what), total=total)
        yield lambda: progress.advance(task)


def export_months(
    database: Database,
    read: MonthlyAnswer,
    path: Path,
    columns: Sequence[Column],
    chinese_headers: bool,
) -> None:
    """Export a venue read's months, the venue's name beside its id."""
    name = subject_names(database, read.position).get(f"venue:{read.venue_id}", "")
    export_rows(
        path,
        monthly_rows(read, name),
        columns,
        monthly_source(read),
        sheet=MONTHS,
        chinese_headers=chinese_headers,
        what=Message("months"),
    )
