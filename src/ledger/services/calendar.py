"""The monthly activity calendar as a document to publish (对外发布): rows
for a CSV or xlsx export, and an A4 PDF listing each venue's activities by
date, with the ledger position and chain hash it was read at.

The calendar holds no personal data: sign-ups are counted, never named.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.reads.answers import ActivityCalendar
from ledger.services.certificates import SHIPPED_FONT
from ledger.services.exports import Column, ExportSource, Sheet

CALENDAR_SHEET = Sheet("calendar", "活动安排")
CALENDAR_COLUMNS = (
    Column("venue_id", "venue", "阵地", 12),
    Column("place", "place", "地点", 40),
    Column("date", "date", "日期", 11),
    Column("time", "time (CST)", "时间", 13),
    Column("title", "activity", "活动", 36),
    Column("category_name", "platform", "平台", 14),
    Column("activity_id", "activity id", "活动编号", 12),
    Column("capacity", "places", "名额", 8),
    Column("signed_up", "signed up", "已报名", 9),
    Column("places_left", "places left", "剩余名额", 10),
)


def calendar_rows(calendar: ActivityCalendar) -> Iterator[dict[str, Any]]:
    """One row per activity, by venue and date."""
    for venue in calendar.venues:
        for activity in venue.activities:
            yield {
                "venue_id": venue.venue_id,
                "place": venue.place,
                **activity.model_dump(),
                "time": _time_of(activity.starts_at, activity.ends_at),
            }


def calendar_source(calendar: ActivityCalendar) -> ExportSource:
    """What a calendar export reflects: the month, the venue, and where."""
    return ExportSource(
        [("month", calendar.month), ("venue", calendar.venue_id or "-")],
        calendar.position,
        calendar.chain_hash,
    )


def write_calendar_pdf(path: Path, calendar: ActivityCalendar) -> None:
    """The calendar as an A4 document: a title, then each venue's place and
    a table of its activities (date, time, activity, platform, places)."""
    # Imported here: reportlab costs start-up time every other command saves.
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font = _shipped_font()
    title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24)
    heading = ParagraphStyle("heading", fontName=font, fontSize=12, leading=16)
    small = ParagraphStyle("small", fontName=font, fontSize=8, leading=11)
    cell = ParagraphStyle("cell", fontName=font, fontSize=9, leading=12)
    year, month = calendar.month.split("-")
    story: list[Any] = [
        Paragraph(f"{year}年{int(month)}月 新时代文明实践活动安排", title),
        Paragraph(
            f"{calendar.activities} 项活动，共 {calendar.capacity} 个名额，"
            f"剩余 {calendar.places_left} 个 · 时间为北京时间 · "
            f"账本位置 {calendar.position} · 链哈希 {calendar.chain_hash[:16]}…",
            small,
        ),
        Spacer(1, 6 * mm),
    ]
    headers = ["日期", "时间", "活动", "平台", "名额", "已报名", "剩余"]
    widths = [24 * mm, 26 * mm, 62 * mm, 28 * mm, 14 * mm, 14 * mm, 14 * mm]
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), font, 9),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#b22222")),
            ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.whitesmoke]),
        ]
    )
    for venue in calendar.venues:
        table = Table(
            [
                headers,
                *(
                    [
                        activity.date,
                        _time_of(activity.starts_at, activity.ends_at),
                        Paragraph(activity.title, cell),
                        activity.category_name,
                        activity.capacity,
                        activity.signed_up,
                        activity.places_left,
                    ]
                    for activity in venue.activities
                ),
            ],
            colWidths=widths,
            repeatRows=1,
        )
        table.setStyle(style)
        story.append(
            KeepTogether(
                [Paragraph(f"{venue.place}（{venue.venue_id}）", heading), table]
            )
        )
        story.append(Spacer(1, 5 * mm))
    if not calendar.venues:
        story.append(Paragraph("本月暂无发布的活动。", heading))
    document = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{calendar.month} 活动安排",
        initialFontName=font,  # not Helvetica: every font the PDF names is embedded
    )
    document.build(story)


def _shipped_font() -> str:
    """The CJK font shipped with the package (GB 2312), registered once:
    embedded in the PDF, it prints the same in every reader."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    name = f"Calendar-{SHIPPED_FONT.stem}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(SHIPPED_FONT)))
    return name


def _time_of(starts_at: str, ends_at: str) -> str:
    """``09:00-12:00`` (China Standard Time, as the answer gives it; a
    hyphen: the shipped font, GB 2312, has no en dash)."""
    start, end = datetime.fromisoformat(starts_at), datetime.fromisoformat(ends_at)
    if start.date() == end.date():
        return f"{start:%H:%M}-{end:%H:%M}"
    return f"{start:%H:%M}-{end:%m-%d %H:%M}"
