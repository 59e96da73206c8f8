"""Exports of audit answers, projection reads, honours rosters and the
activity calendar to CSV, JSON Lines and xlsx.

An export writes every row it is given, streamed: rows arrive as an
iterable (an audit query's pages, say) and go straight to the file, so
memory stays constant however many there are (xlsx in openpyxl's
write-only mode). Every exported row states the ledger position and chain
hash the export reflects; an xlsx opens on a sheet stating the query asked,
that position and chain hash, and the rows written, and its data sheet has
column widths, a frozen header, an autofilter and number formats (hours to
one decimal, rates as percentages). Headers (and sheet names) are English
by default, Chinese on request. Personal data arrives here already masked
unless the caller may see it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.domain.messages import TranslatedError
from ledger.reads.answers import AuditEvent, VenueActivity, VenueFulfilment

# The venue reads, whose months export as rows.
MonthlyAnswer = VenueActivity | VenueFulfilment

# xlsx number formats: hours to one decimal, rates as percentages.
HOURS = "0.0"
PERCENT = "0.0%"
EXPORT_SUFFIXES = (".csv", ".jsonl", ".xlsx")


@dataclass(frozen=True)
class Column:
    """A column of an export: the row's key, its English and Chinese
    headers, its width in an xlsx (in characters; a CJK character counts
    two) and its xlsx number format, if any."""

    key: str
    english: str
    chinese: str
    width: int = 12
    number_format: str | None = None

    def header(self, chinese: bool) -> str:
        return self.chinese if chinese else self.english


@dataclass(frozen=True)
class Sheet:
    """What an export's data sheet is called, in English and in Chinese."""

    english: str
    chinese: str

    def name(self, chinese: bool) -> str:
        return self.chinese if chinese else self.english


@dataclass(frozen=True)
class ExportSource:
    """What an export reflects: the query as asked (label, value pairs, in
    English), and the ledger position and chain hash it was read at."""

    query: Sequence[tuple[str, str | int]]
    position: int
    chain_hash: str


AS_OF_COLUMNS = (
    Column("as_of_position", "ledger position", "账本位置", 10),
    Column("as_of_chain_hash", "chain hash", "链哈希", 66),
)

AUDIT_EVENTS = Sheet("events", "事件")
AUDIT_EVENT_COLUMNS = (
    Column("position", "position", "位置", 10),
    Column("type", "event", "事件", 30),
    Column("subjects", "subjects", "涉及对象", 40),
    Column("venue_names", "venue name", "阵地名称", 24),
    Column("team_names", "team name", "队伍名称", 24),
    Column("actor_id", "actor", "操作人", 16),
    Column("actor_role", "role", "角色", 12),
    Column("occurred_at", "occurred at", "发生时间", 26),
    Column("recorded_at", "recorded at", "记录时间", 28),
    Column("source", "source", "来源", 8),
    Column("payload", "details", "详情", 60),
    Column("chain_hash", "event chain hash", "事件链哈希", 66),
)

MONTHS = Sheet("months", "月度")
MONTHLY_ACTIVITY_COLUMNS = (
    Column("venue_id", "venue", "阵地", 12),
    Column("venue_name", "venue name", "阵地名称", 24),
    Column("month", "month", "月份", 9),
    Column("activities", "activities", "活动数", 10),
    Column("sessions", "sessions", "服务人次", 10),
    Column("volunteers", "volunteers", "志愿者人数", 12),
    Column("verified_hours", "verified hours", "签到时长(小时)", 15, HOURS),
    Column("makeup_hours", "make-up hours", "补录时长(小时)", 15, HOURS),
    Column("volunteer_hours", "volunteer hours", "服务总时长(小时)", 17, HOURS),
)

MONTHLY_FULFILMENT_COLUMNS = (
    Column("venue_id", "venue", "阵地", 12),
    Column("venue_name", "venue name", "阵地名称", 24),
    Column("month", "month", "月份", 9),
    Column("posted", "posted", "点单数"),
    Column("dispatched", "dispatched", "派单数"),
    Column("accepted", "accepted", "接单数"),
    Column("fulfilled", "fulfilled", "销单数"),
    Column("withdrawn", "withdrawn", "撤单数"),
    Column("rejected", "rejected", "驳回数"),
    Column("expired", "expired", "过期数"),
    Column("open", "open", "未完成"),
    Column("rate", "fulfilment rate", "实现率", 16, PERCENT),
    Column("ratings", "ratings", "评单数"),
    Column("satisfaction", "satisfaction", "满意度", 13, PERCENT),
)


def audit_event_rows(
    events: Iterable[AuditEvent], names: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Audit events as export rows, the names of the venues and teams they
    concern (``names``: by ``KIND:ID``) beside their ids."""
    known = names or {}
    for event in events:
        yield {
            **event.model_dump(),
            "actor_id": event.actor.id,
            "actor_role": event.actor.role,
            "venue_names": _named(event.subjects, "venue:", known),
            "team_names": _named(event.subjects, "team:", known),
        }


def monthly_rows(read: MonthlyAnswer, venue_name: str = "") -> list[dict[str, Any]]:
    """A venue read's ``by_month`` as rows, minutes in hours."""
    rows = []
    for month, figures in read.by_month.items():
        row = {
            "venue_id": read.venue_id,
            "venue_name": venue_name,
            "month": month,
            **figures.model_dump(),
        }
        for measure in ("verified", "makeup", "volunteer"):
            if f"{measure}_minutes" in row:
                row[f"{measure}_hours"] = row[f"{measure}_minutes"] / 60
        rows.append(row)
    return rows


def monthly_source(read: MonthlyAnswer) -> ExportSource:
    """What a venue read's export reflects: the read as asked, and where."""
    asked = [
        ("venue", read.venue_id),
        ("subtree", "yes" if read.subtree else "no"),
        ("from", read.from_month or "-"),
        ("to", read.to_month or "-"),
    ]
    if isinstance(read, VenueFulfilment):
        asked.append(("kind", read.kind or "wish, service"))
    return ExportSource(asked, read.position, read.chain_hash)


class ExportPathError(TranslatedError, ValueError):
    """An export was asked for a file type no export writes."""


def check_export_path(path: Path, also: Sequence[str] = ()) -> None:
    """Refuse, before anything is read, a file type no export writes (nor
    any of the suffixes ``also`` names, e.g. ``.pdf``)."""
    suffixes = (*EXPORT_SUFFIXES, *also)
    if path.suffix.lower() not in suffixes:
        *others, last = suffixes
        raise ExportPathError(
            "export to {suffixes} or {last}, not '{given}'",
            suffixes=", ".join(others),
            last=last,
            given=path.suffix or path.name,
        )


def write_export(
    path: Path,
    rows: Iterable[dict[str, Any]],
    columns: Sequence[Column],
    source: ExportSource,
    *,
    sheet: Sheet = Sheet("data", "数据"),
    chinese_headers: bool = False,
    on_row: Callable[[], None] | None = None,
) -> int:
    """Write every one of ``rows`` as CSV, JSON Lines or xlsx (by the file's
    suffix), streamed, each citing ``source``; call ``on_row`` after each
    (a progress bar); return how many were written."""
    check_export_path(path)
    every_column = (*columns, *AS_OF_COLUMNS)
    cited = {"as_of_position": source.position, "as_of_chain_hash": source.chain_hash}

    def cited_rows() -> Iterator[dict[str, Any]]:
        for row in rows:
            yield {**row, **cited}
            if on_row is not None:
                on_row()

    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _write_xlsx(
            path, cited_rows(), every_column, source, sheet, chinese_headers
        )
    if suffix == ".jsonl":
        with path.open("wb") as binary:
            return _write_jsonl(binary, cited_rows(), every_column)
    # UTF-8 with a BOM, so that Excel opens a CSV's Chinese correctly
    with path.open("w", newline="", encoding="utf-8-sig") as text:
        return _write_csv(text, cited_rows(), every_column, chinese_headers)


def _write_jsonl(
    file: IO[bytes], rows: Iterator[dict[str, Any]], columns: Sequence[Column]
) -> int:
    """One JSON object per row, by column key, values as they are (an
    event's details stay an object)."""
    written = 0
    for row in rows:
        file.write(orjson.dumps({c.key: row.get(c.key) for c in columns}) + b"\n")
        written += 1
    return written


def _write_csv(
    file: IO[str],
    rows: Iterator[dict[str, Any]],
    columns: Sequence[Column],
    chinese_headers: bool,
) -> int:
    writer = csv.writer(file)
    writer.writerow([c.header(chinese_headers) for c in columns])
    written = 0
    for row in rows:
        writer.writerow([_csv_text(row.get(c.key), c) for c in columns])
        written += 1
    return written


# The widest sheet (in character widths) still read comfortably when shrunk
# to one landscape A4 page; a wider one (an audit export, with its hashes)
# prints over several pages wide at full size instead.
PRINTABLE_WIDTH = 240


def _print_on_a4(worksheet: Any, *, fit_width: bool, title_row: bool = False) -> None:
    """Print setup for 文明办 staff who print: A4 landscape, all columns on
    one page wide when ``fit_width``, the header row on every page."""
    worksheet.page_setup.paperSize = "9"  # A4, in ECMA-376's paper codes
    worksheet.page_setup.orientation = "landscape"
    if fit_width:
        worksheet.sheet_properties.pageSetUpPr.fitToPage = True
        worksheet.page_setup.fitToWidth = 1
        worksheet.page_setup.fitToHeight = 0
    if title_row:
        worksheet.print_title_rows = "1:1"


def _write_xlsx(
    path: Path,
    rows: Iterator[dict[str, Any]],
    columns: Sequence[Column],
    source: ExportSource,
    sheet: Sheet,
    chinese: bool,
) -> int:
    # Imported here: openpyxl costs start-up time every other command saves.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    about = workbook.create_sheet("查询" if chinese else "query")
    data = workbook.create_sheet(sheet.name(chinese))
    bold = Font(bold=True)
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = 70
    widths = [
        max(column.width, _display_width(column.header(chinese)) + 2)
        for column in columns
    ]
    for index, width in enumerate(widths, start=1):
        data.column_dimensions[get_column_letter(index)].width = width
    data.freeze_panes = "A2"
    _print_on_a4(about, fit_width=True)
    _print_on_a4(data, fit_width=sum(widths) <= PRINTABLE_WIDTH, title_row=True)

    def cell(worksheet: Any, value: Any, number_format: str | None = None) -> Any:
        written = WriteOnlyCell(worksheet, value=value)
        if isinstance(value, str):
            written.data_type = "s"  # text stays text, even if it starts with "="
        if number_format is not None:
            written.number_format = number_format
        return written

    headers = []
    for column in columns:
        header = cell(data, column.header(chinese))
        header.font = bold
        headers.append(header)
    data.append(headers)
    written = 0
    for row in rows:
        values = []
        for column in columns:
            value = _cell(row.get(column.key))
            # Only cells with a format, or text a spreadsheet would take for
            # a formula, need a cell of their own: plain values go faster.
            if column.number_format is not None or (
                isinstance(value, str) and value.startswith("=")
            ):
                value = cell(data, value, column.number_format)
            values.append(value)
        data.append(values)
        written += 1
    data.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{written + 1}"

    title = cell(about, sheet.name(chinese))
    title.font = bold
    about.append([title])
    stated = [
        *source.query,
        ("ledger position", source.position),
        ("chain hash", source.chain_hash),
        ("rows", written),
    ]
    for label, value in stated:
        if chinese:
            label = _QUERY_LABELS_ZH.get(label, label)
            value = (
                _QUERY_VALUES_ZH.get(value, value) if isinstance(value, str) else value
            )
        about.append([cell(about, label), cell(about, value)])
    workbook.save(path)
    return written


# How a query's parameters are labelled on a Chinese query sheet.
_QUERY_LABELS_ZH = {
    "subject": "涉及对象",
    "actor": "操作人",
    "type": "事件类型",
    "since": "业务时间起",
    "until": "业务时间止",
    "recorded since": "记录时间起",
    "recorded until": "记录时间止",
    "after": "起始位置之后",
    "as of": "截至位置",
    "as of day": "截至日期",
    "venue": "阵地",
    "subtree": "含下级",
    "from": "起始月份",
    "to": "截止月份",
    "kind": "类型",
    "month": "月份",
    "rules": "规则",
    "read at": "读取位置",
    "limit": "条数上限",
    "personal data": "个人信息",
    "ledger position": "账本位置",
    "chain hash": "链哈希",
    "rows": "行数",
}

# The words a query sheet states as values, on a Chinese one.
_QUERY_VALUES_ZH = {"masked": "已遮盖", "revealed": "已显示（管理员）"}

# Ids and reasons are free text from other systems: a value starting like a
# formula must stay text when a spreadsheet opens the file (formula injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The control characters an xlsx cannot hold (openpyxl's own pattern, kept
# here so that a CSV export does not import openpyxl).
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _cell(value: Any) -> Any:
    """A value as a spreadsheet cell holds it: details compacted, lists
    joined, text without the control characters a spreadsheet cannot hold.
    (Hours stay exact: an xlsx shows them to one decimal, a CSV rounds.)"""
    if isinstance(value, dict):
        value = "; ".join(f"{name}={item}" for name, item in value.items())
    elif isinstance(value, list | tuple):
        value = " ".join(str(item) for item in value)
    if isinstance(value, str):
        return _ILLEGAL.sub("", value)
    return value


def _csv_text(value: Any, column: Column) -> Any:
    """A value as a CSV cell: hours rounded to one decimal, and text that a
    spreadsheet would take for a formula quoted."""
    value = _cell(value)
    if column.number_format == HOURS and isinstance(value, float):
        return round(value, 1)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _named(subjects: Sequence[str], kind: str, names: dict[str, str]) -> str:
    return " ".join(
        names.get(subject, subject[len(kind) :])
        for subject in subjects
        if subject.startswith(kind)
    )


def _display_width(text: str) -> int:
    """How many character cells ``text`` takes: CJK characters two."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)
