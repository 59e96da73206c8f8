"""``ledger query … --format table|csv``: a read for people, in the
reader's language (docs/i18n.md).

JSON stays the default, for scripts. A table shows minutes as hours with one
decimal and rates as percentages, venue names beside their ids, headers in
the current language; CSV carries the same rows as numbers (hours to one
decimal, rates as fractions), for a spreadsheet.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ledger.domain.messages import CHINESE, current_language, translate
from ledger.reads.answers import VolunteerHours
from ledger.services.exports import HOURS, PERCENT, Column, MonthlyAnswer, monthly_rows

TOTAL = "total"
# Columns of words, set flush left; figures are set flush right.
TEXT_KEYS = frozenset({"venue_id", "venue_name", "month", "figure"})
HOURS_ROWS = (
    Column("verified_hours", "verified hours", "签到时长(小时)", number_format=HOURS),
    Column("makeup_hours", "make-up hours", "补录时长(小时)", number_format=HOURS),
    Column("total_hours", "total hours", "服务总时长(小时)", number_format=HOURS),
    Column("sessions", "sessions", "服务次数"),
    Column("stars", "stars", "星级"),
    Column("last_service_date", "last service", "最近服务日期"),
    Column("position", "ledger position", "台账位置"),
)


def _chinese() -> bool:
    return current_language() == CHINESE


def _number(value: Any, column: Column) -> Any:
    """A cell as a number for CSV: hours to one decimal, rates unrounded."""
    if value is None or column.number_format != HOURS:
        return value
    return round(value, 1)


def _text(value: Any, column: Column) -> str:
    """A cell as people read it: hours to one decimal, rates as percent."""
    if value is None:
        return "—"
    if column.number_format == HOURS:
        return f"{value:,.1f}"
    if column.number_format == PERCENT:
        return f"{value:.1%}"
    return str(value)


def month_rows_with_total(read: MonthlyAnswer, venue_name: str) -> list[dict[str, Any]]:
    """The months of a venue read and, last, the whole period's figures."""
    total = {
        **read.model_dump(exclude={"by_month", "by_category"}),
        "venue_name": venue_name,
        "month": translate(TOTAL),
    }
    for measure in ("verified", "makeup", "volunteer"):
        if f"{measure}_minutes" in total:
            total[f"{measure}_hours"] = total[f"{measure}_minutes"] / 60
    return [*monthly_rows(read, venue_name), total]


def hours_figures(read: VolunteerHours) -> list[tuple[Column, Any]]:
    """A volunteer's figures, one per row, then the hours of each year."""
    figures = read.model_dump()
    for measure in ("verified", "makeup", "total"):
        figures[f"{measure}_hours"] = figures[f"{measure}_minutes"] / 60
    rows = [(column, figures[column.key]) for column in HOURS_ROWS]
    for year, minutes in sorted(read.by_year.items()):
        year_column = Column(year, f"hours in {year}", f"{year}年时长(小时)")
        rows.append((replace(year_column, number_format=HOURS), minutes / 60))
    return rows


FIGURE = Column("figure", "figure", "项目")
VALUE = Column("value", "value", "数值")


def figures_as_rows(
    figures: Sequence[tuple[Column, Any]], as_text: bool
) -> list[dict[str, Any]]:
    """Figures as rows of ``FIGURE`` and ``VALUE``, each value formatted by
    its own column (as text for a table, as a number for CSV)."""
    cell = _text if as_text else _number
    return [
        {"figure": c.header(_chinese()), "value": cell(value, c)}
        for c, value in figures
    ]


def print_table(
    title: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]
) -> None:
    """Rows as a rich table on standard output, headers in the reader's
    language."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table

    cells = [[_text(row.get(c.key), c) for c in columns] for row in rows]
    table = Table(title=title)
    for index, column in enumerate(columns):
        widest = max((cell_len(line[index]) for line in cells), default=1)
        table.add_column(
            column.header(_chinese()),
            justify="left" if column.key in TEXT_KEYS else "right",
            overflow="fold",  # a narrow terminal wraps a header, never cuts it
            # A figure, a month or an id is never broken over two lines.
            min_width=None if column.key in ("venue_name", "figure") else widest,
        )
    for line in cells:
        table.add_row(*line)
    Console(soft_wrap=True).print(table)


def print_csv(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    """Rows as CSV on standard output, headers in the reader's language."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(column.header(_chinese()) for column in columns)
    for row in rows:
        writer.writerow(_number(row.get(c.key), c) for c in columns)
