"""The monthly activity calendar (每月活动汇总), on real SQLite and
PostgreSQL: every venue's published activities of a month in a subtree, by
venue and date, times in China Standard Time, with the places left; as of
an earlier position; exported to xlsx and PDF; served at ``GET /calendar``
to any key, naming no one; and replayed by ``verify``."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook
from reportlab.pdfbase.ttfonts import TTFont

from ledger.application.ledger import Ledger
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.reads.queries import InvalidReadError, LedgerReads, NotFoundError
from ledger.services.certificates import SHIPPED_FONT
from ledger.store.event_store import Database
from tests.e2e.http_helpers import is_problem, open_api
from tests.factories import T0, activity, record_all, small_city, submission
from tests.integration.projection_helpers import chain_hash_at, run_cli

DAY = timedelta(days=1)
# 17:00 UTC on 31 March is 01:00 on 1 April in China: an April activity.
APRIL_FIRST_CST = datetime(2024, 3, 31, 17, 0, tzinfo=UTC)

# Positions: small_city 1-7, the activities 8-11, then the sign-ups.
ACTIVITIES_PUBLISHED = 11


def sign_up(activity_id: str, volunteer_id: str, at: datetime) -> Any:
    return submission("sign_up", at, activity_id=activity_id, volunteer_id=volunteer_id)


@pytest.fixture
def town(ledger: Ledger, database: Database) -> Database:
    """C → I1 → S1 → P1 (small_city), and four activities: A1 at S1 on
    1 March (10 places; V1 signed up, then cancelled), A2 at P1 on 15 March
    (2 places, both taken), A3 at I1 starting 1 April in China (31 March in
    UTC), A4 at S1 in February."""
    record_all(
        ledger,
        [
            *small_city(),
            activity("A1", "S1", starts_at=T0, capacity=10),
            activity("A2", "P1", starts_at=T0 + 14 * DAY, hours=2, capacity=2),
            activity("A3", "I1", starts_at=APRIL_FIRST_CST, category="theory"),
            activity("A4", "S1", starts_at=T0 - 14 * DAY),
            sign_up("A1", "V1", T0 - 2 * DAY),
            sign_up("A2", "V1", T0 + 8 * DAY),
            sign_up("A2", "V2", T0 + 8 * DAY),
            submission("cancel_sign_up", T0 - DAY, activity_id="A1", volunteer_id="V1"),
        ],
    )
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()
    return database


def listed(calendar: Any) -> list[tuple[str, str, str, int, int]]:
    """(venue, activity, date, signed up, places left) in the order listed."""
    return [
        (
            venue["venue_id"],
            item["activity_id"],
            item["date"],
            item["signed_up"],
            item["places_left"],
        )
        for venue in calendar["venues"]
        for item in venue["activities"]
    ]


def test_the_calendar_lists_a_months_activities_by_venue_and_date(
    town: Database,
) -> None:
    # When March's calendar of the whole city is asked for
    outcome = run_cli(town, "calendar", "--month", "2024-03")
    assert outcome.exit_code == 0, outcome.output
    calendar = orjson.loads(outcome.stdout)

    # Then it lists the activities starting in March (China time) by venue
    # in the tree's order, with the places each has left
    assert listed(calendar) == [
        ("S1", "A1", "2024-03-01", 0, 10),
        ("P1", "A2", "2024-03-15", 2, 0),
    ]
    assert (calendar["activities"], calendar["capacity"]) == (2, 12)
    assert calendar["places_left"] == 10
    station, point = calendar["venues"]
    assert station["place"] == "venue I1 / venue S1"
    assert point["place"] == "venue I1 / venue S1 / venue P1"
    [a1] = station["activities"]
    assert (a1["title"], a1["category"], a1["category_name"]) == (
        "activity A1",
        "culture",
        "文化服务",
    )
    assert a1["starts_at"] == "2024-03-01T09:00:00+08:00"
    assert a1["ends_at"] == "2024-03-01T12:00:00+08:00"
    head = ACTIVITIES_PUBLISHED + 4
    assert (calendar["position"], calendar["chain_hash"]) == (
        head,
        chain_hash_at(town, head),
    )
    # And nothing in it names a volunteer
    assert "V1" not in outcome.stdout and "张三" not in outcome.stdout


def test_an_activity_belongs_to_the_month_it_starts_in_china(town: Database) -> None:
    april = LedgerReads(town).activity_calendar("2024-04")
    [institute] = april.venues
    [a3] = institute.activities
    assert (institute.venue_id, a3.activity_id, a3.date) == ("I1", "A3", "2024-04-01")
    assert a3.starts_at == "2024-04-01T01:00:00+08:00"
    assert a3.category_name == "理论宣讲"


def test_the_calendar_of_a_venue_covers_its_subtree_only(town: Database) -> None:
    reads = LedgerReads(town)
    station = reads.activity_calendar("2024-03", "S1")
    assert [v.venue_id for v in station.venues] == ["S1", "P1"]
    point = reads.activity_calendar("2024-03", "P1")
    assert [a.activity_id for v in point.venues for a in v.activities] == ["A2"]
    assert reads.activity_calendar("2024-05", "C").venues == []


def test_the_calendar_as_of_an_earlier_position_has_every_place_free(
    town: Database,
) -> None:
    before = LedgerReads(town).activity_calendar("2024-03", as_of=ACTIVITIES_PUBLISHED)
    assert [
        (a.signed_up, a.places_left) for v in before.venues for a in v.activities
    ] == [
        (0, 10),
        (0, 2),
    ]
    assert before.position == ACTIVITIES_PUBLISHED


def test_the_calendar_refuses_a_malformed_month_and_an_unknown_venue(
    town: Database,
) -> None:
    reads = LedgerReads(town)
    with pytest.raises(InvalidReadError, match="month must be a month YYYY-MM"):
        reads.activity_calendar("2024-3")
    with pytest.raises(NotFoundError, match="venue 'X9' is not registered"):
        reads.activity_calendar("2024-03", "X9")
    outcome = run_cli(town, "calendar", "--month", "March")
    assert outcome.exit_code == 2
    outcome = run_cli(town, "calendar", "--month", "2024-03", "--venue", "X9")
    assert outcome.exit_code == 4


def test_verify_replays_the_calendar(town: Database) -> None:
    results = {r.name: r for r in ProjectionEngine(town, ALL_PROJECTIONS).verify()}
    assert results["activity_calendar"].ok


@pytest.mark.parametrize("headers", ["english", "chinese"])
def test_the_calendar_exports_to_xlsx_by_venue_and_date(
    town: Database, tmp_path: Path, headers: str
) -> None:
    path = tmp_path / "calendar.xlsx"
    chinese = ["--chinese-headers"] if headers == "chinese" else []
    outcome = run_cli(
        town, "calendar", "--month", "2024-03", "--export", str(path), *chinese
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"exported 2 activities to {path}" in outcome.stdout
    about, data = load_workbook(path).worksheets
    assert (about.title, data.title) == (
        ("query", "calendar") if headers == "english" else ("查询", "活动安排")
    )
    header, *rows = [list(row) for row in data.iter_rows(values_only=True)]
    assert header[:5] == (
        ["venue", "place", "date", "time (CST)", "activity"]
        if headers == "english"
        else ["阵地", "地点", "日期", "时间", "活动"]
    )
    assert [row[:4] for row in rows] == [
        ["S1", "venue I1 / venue S1", "2024-03-01", "09:00-12:00"],
        ["P1", "venue I1 / venue S1 / venue P1", "2024-03-15", "09:00-11:00"],
    ]
    assert [row[7:10] for row in rows] == [[10, 0, 10], [2, 2, 0]]
    assert data.freeze_panes == "A2"


def test_the_calendar_exports_to_a_pdf_to_publish(
    town: Database, tmp_path: Path
) -> None:
    path = tmp_path / "calendar.pdf"
    outcome = run_cli(town, "calendar", "--month", "2024-03", "--export", str(path))
    assert outcome.exit_code == 0, outcome.output
    assert f"wrote the calendar of 2 activities to {path}" in outcome.stdout
    assert path.read_bytes().startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=False
    )
    if text.returncode == 0:  # poppler-utils installed
        assert "2024年3月" in text.stdout and "09:00-11:00" in text.stdout
        # And the shipped font has a glyph for every character drawn
        glyphs = TTFont("shipped", str(SHIPPED_FONT)).face.charToGlyph
        drawn = {char for char in text.stdout if not char.isspace()}
        assert {char for char in drawn if ord(char) not in glyphs} == set()


def test_the_cli_refuses_a_calendar_export_to_an_unknown_file_type(
    town: Database, tmp_path: Path
) -> None:
    outcome = run_cli(
        town, "calendar", "--month", "2024-03", "--export", str(tmp_path / "c.doc")
    )
    assert outcome.exit_code == 2
    assert "export to .csv, .jsonl, .xlsx or .pdf" in outcome.output


def test_any_key_reads_the_calendar_over_http_and_it_names_no_one(
    database_url: str, tmp_path: Path
) -> None:
    with open_api(database_url, tmp_path) as api:
        response = api.get("/calendar", "dashboard", month="2024-03", venue="I1")
        assert response.status_code == 200, response.text
        calendar = response.json()
        # The API's city: A1 at S1, V1 signed up (A2 at S2 is outside I1)
        assert listed(calendar) == [("S1", "A1", "2024-03-01", 1, 9)]
        assert "V1" not in response.text and "张三" not in response.text
        assert calendar["position"] == api.head()
        assert api.get("/calendar", "no key", month="2024-03").status_code == 401
        assert is_problem(
            api.get("/calendar", "dashboard", month="2024-03", venue="X9"),
            404,
            "not_found",
        )
        assert api.get("/calendar", "dashboard", month="2024-3").status_code in (
            400,
            422,
        )
