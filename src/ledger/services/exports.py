"""Exports of audit answers and projection reads to CSV and xlsx.

Every exported row states the ledger position and chain hash the export
reflects, so a spreadsheet can be tied to the exact ledger state it came
from. Column headers are English by default, Chinese on request. Personal
data arrives here already masked unless the caller may see it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from ledger.reads.answers import AuditPage, VenueActivity, VenueFulfilment

# The venue reads, whose months export as rows.
MonthlyAnswer = VenueActivity | VenueFulfilment


@dataclass(frozen=True)
class Column:
    key: str
    english: str
    chinese: str


AS_OF_COLUMNS = (
    Column("as_of_position", "ledger position", "账本位置"),
    Column("as_of_chain_hash", "chain hash", "链哈希"),
)

AUDIT_EVENT_COLUMNS = (
    Column("position", "position", "位置"),
    Column("type", "event", "事件"),
    Column("subjects", "subjects", "涉及对象"),
    Column("actor_id", "actor", "操作人"),
    Column("actor_role", "role", "角色"),
    Column("occurred_at", "occurred at", "发生时间"),
    Column("recorded_at", "recorded at", "记录时间"),
    Column("source", "source", "来源"),
    Column("payload", "details", "详情"),
    Column("chain_hash", "event chain hash", "事件链哈希"),
)

MONTHLY_ACTIVITY_COLUMNS = (
    Column("venue_id", "venue", "阵地"),
    Column("month", "month", "月份"),
    Column("activities", "activities", "活动数"),
    Column("sessions", "sessions", "服务人次"),
    Column("volunteers", "volunteers", "志愿者人数"),
    Column("verified_minutes", "verified minutes", "签到时长(分钟)"),
    Column("makeup_minutes", "make-up minutes", "补录时长(分钟)"),
    Column("volunteer_minutes", "volunteer minutes", "服务总时长(分钟)"),
)

MONTHLY_FULFILMENT_COLUMNS = (
    Column("venue_id", "venue", "阵地"),
    Column("month", "month", "月份"),
    Column("posted", "posted", "点单数"),
    Column("dispatched", "dispatched", "派单数"),
    Column("accepted", "accepted", "接单数"),
    Column("fulfilled", "fulfilled", "销单数"),
    Column("withdrawn", "withdrawn", "撤单数"),
    Column("rejected", "rejected", "驳回数"),
    Column("expired", "expired", "过期数"),
    Column("open", "open", "未完成"),
    Column("rate", "fulfilment rate", "实现率"),
    Column("ratings", "ratings", "评单数"),
    Column("satisfaction", "satisfaction", "满意度"),
)


def audit_event_rows(page: AuditPage) -> list[dict[str, Any]]:
    """Flatten an audit answer's events into export rows."""
    return [
        {
            **event.model_dump(),
            "actor_id": event.actor.id,
            "actor_role": event.actor.role,
            "subjects": " ".join(event.subjects),
            "payload": _compact(event.payload),
        }
        for event in page.events
    ]


def monthly_rows(read: MonthlyAnswer) -> list[dict[str, Any]]:
    """A venue read's ``by_month`` as rows."""
    return [
        {"venue_id": read.venue_id, "month": month, **figures.model_dump()}
        for month, figures in read.by_month.items()
    ]


def write_export(
    path: Path,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    position: int,
    chain_hash: str,
    chinese_headers: bool = False,
) -> None:
    """Write ``rows`` as CSV or xlsx (by the file's suffix)."""
    every_column = (*columns, *AS_OF_COLUMNS)
    headers = [c.chinese if chinese_headers else c.english for c in every_column]
    cited = {"as_of_position": position, "as_of_chain_hash": chain_hash}
    table = [
        [_printable({**row, **cited}.get(c.key)) for c in every_column] for row in rows
    ]
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(path, headers, table, position, chain_hash, chinese_headers)
    elif path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8-sig") as file:
            writer = csv.writer(file)
            writer.writerow(headers)
            writer.writerows([[_csv_text(value) for value in row] for row in table])
    else:
        raise ValueError(f"export to .csv or .xlsx, not '{path.suffix}'")


def _write_xlsx(
    path: Path,
    headers: list[str],
    table: list[list[Any]],
    position: int,
    chain_hash: str,
    chinese_headers: bool,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "数据" if chinese_headers else "data"
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text stays text, even if it starts with "="
    source = workbook.create_sheet("来源" if chinese_headers else "source")
    source.append(["账本位置" if chinese_headers else "ledger position", position])
    source.append(["链哈希" if chinese_headers else "chain hash", chain_hash])
    workbook.save(path)


# Ids and reasons are free text from other systems: a value starting like a
# formula must stay text when a spreadsheet opens the file (formula injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _printable(value: Any) -> Any:
    """Text without the control characters a spreadsheet cannot hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def _csv_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _compact(payload: dict[str, Any]) -> str:
    return "; ".join(f"{name}={value}" for name, value in payload.items())
