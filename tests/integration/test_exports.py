"""CSV, JSON Lines and xlsx exports, on real SQLite and PostgreSQL, of audit
queries and of a venue's activity and fulfilment reads: every matching row
(streamed past the largest page), English or Chinese headers and sheet
names, names beside ids, every row citing the ledger position and chain
hash it reflects, personal data masked. The files are read back (xlsx with
openpyxl: the query sheet first, widths, frozen header, autofilter and
number formats)."""

from __future__ import annotations

import codecs
import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook

from ledger.api.cli.exporting import PROGRESS_FROM
from ledger.application.ledger import Ledger
from ledger.domain.privacy import mask_id_number, mask_phone
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.reads.audit import AuditQuery, find_events
from ledger.reads.bounds import MAX_PAGE
from ledger.reads.queries import LedgerReads, VenueQuery
from ledger.services.exports import (
    AUDIT_EVENT_COLUMNS,
    ExportSource,
    audit_event_rows,
    write_export,
)
from ledger.store.event_store import Database
from tests.factories import (
    KEY_DIRECTORIES,
    T0,
    id_number,
    record_all,
    small_city,
    submission,
)
from tests.integration.projection_helpers import DAY, chain_hash_at, run_cli
from tests.integration.test_audit_queries import (
    HEAD,
    V3_ID_NUMBER,
    V3_PHONE,
    record_audited_city,
)

AUDIT_HEADERS = {
    "english": [
        "position",
        "event",
        "subjects",
        "venue name",
        "team name",
        "actor",
        "role",
        "occurred at",
        "recorded at",
        "source",
        "details",
        "event chain hash",
        "ledger position",
        "chain hash",
    ],
    "chinese": [
        "位置",
        "事件",
        "涉及对象",
        "阵地名称",
        "队伍名称",
        "操作人",
        "角色",
        "发生时间",
        "记录时间",
        "来源",
        "详情",
        "事件链哈希",
        "账本位置",
        "链哈希",
    ],
}
ACTIVITY_HEADERS = {
    "english": [
        "venue",
        "venue name",
        "month",
        "activities",
        "sessions",
        "volunteers",
        "verified hours",
        "make-up hours",
        "volunteer hours",
        "ledger position",
        "chain hash",
    ],
    "chinese": [
        "阵地",
        "阵地名称",
        "月份",
        "活动数",
        "服务人次",
        "志愿者人数",
        "签到时长(小时)",
        "补录时长(小时)",
        "服务总时长(小时)",
        "账本位置",
        "链哈希",
    ],
}
FULFILMENT_HEADERS = {
    "english": [
        "venue",
        "venue name",
        "month",
        "posted",
        "dispatched",
        "accepted",
        "fulfilled",
        "withdrawn",
        "rejected",
        "expired",
        "open",
        "fulfilment rate",
        "ratings",
        "satisfaction",
        "ledger position",
        "chain hash",
    ],
    "chinese": [
        "阵地",
        "阵地名称",
        "月份",
        "点单数",
        "派单数",
        "接单数",
        "销单数",
        "撤单数",
        "驳回数",
        "过期数",
        "未完成",
        "实现率",
        "评单数",
        "满意度",
        "账本位置",
        "链哈希",
    ],
}
EVENTS_SHEET = {"english": "events", "chinese": "事件"}
MONTHS_SHEET = {"english": "months", "chinese": "月度"}
QUERY_SHEET = {"english": "query", "chinese": "查询"}
# How the query sheet labels the ledger state and the rows written.
STATED = {
    "english": ("ledger position", "chain hash", "rows"),
    "chinese": ("账本位置", "链哈希", "行数"),
}

FORMATS = [
    pytest.param("csv", "english", id="csv-english"),
    pytest.param("csv", "chinese", id="csv-chinese"),
    pytest.param("xlsx", "english", id="xlsx-english"),
    pytest.param("xlsx", "chinese", id="xlsx-chinese"),
]


@pytest.fixture
def city(ledger: Ledger, database: Database) -> Database:
    """The audited city (28 events, V3 with ID and phone numbers), projected."""
    record_audited_city(ledger)
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()
    return database


def read_back(path: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """An export's headers, and its rows as dicts by header (an xlsx's data
    sheet is its second, after the query sheet)."""
    table: list[list[Any]]
    if path.suffix == ".csv":
        assert path.read_bytes().startswith(codecs.BOM_UTF8)  # Excel reads UTF-8
        with path.open(encoding="utf-8-sig", newline="") as file:
            table = list(csv.reader(file))
    else:
        sheet = load_workbook(path).worksheets[1]
        table = [list(row) for row in sheet.iter_rows(values_only=True)]
    header, *rows = table
    return header, [dict(zip(header, row, strict=True)) for row in rows]


def xlsx_query(path: Path) -> dict[str, Any]:
    """What an xlsx export's first sheet states, by label (its title first)."""
    workbook = load_workbook(path)
    assert len(workbook.worksheets) == 2
    title, *pairs = workbook.worksheets[0].iter_rows(values_only=True)
    return {"title": title[0], **{label: value for label, value in pairs}}


def same(cell: Any, value: Any) -> bool:
    """An exported cell holds ``value`` (CSV holds text, xlsx holds numbers)."""
    if value is None:
        return cell in (None, "")
    if isinstance(value, int | float):
        return float(cell) == pytest.approx(float(value))
    return str(cell) == str(value)


def export_options(path: Path, headers: str) -> list[str]:
    return [
        "--export",
        str(path),
        *(["--chinese-headers"] if headers == "chinese" else []),
    ]


def assert_cites(
    rows: list[dict[str, Any]], headers: list[str], position: int, chain_hash: str
) -> None:
    """Every row states the ledger position and chain hash the export reflects."""
    position_header, hash_header = headers[-2:]
    for row in rows:
        assert same(row[position_header], position)
        assert row[hash_header] == chain_hash


def assert_xlsx_layout(
    path: Path,
    headers: str,
    data_sheet: dict[str, str],
    position: int,
    chain_hash: str,
    rows: int,
) -> None:
    """The query sheet first, stating the ledger state and the rows; then
    the data, its header bold and frozen, filtered, every column wide enough
    for its header."""
    workbook = load_workbook(path)
    about, data = workbook.worksheets
    assert (about.title, data.title) == (QUERY_SHEET[headers], data_sheet[headers])
    stated = xlsx_query(path)
    assert stated["title"] == data_sheet[headers]
    position_label, hash_label, rows_label = STATED[headers]
    assert (stated[position_label], stated[hash_label]) == (position, chain_hash)
    assert stated[rows_label] == rows
    assert data.freeze_panes == "A2"
    # printed on A4 landscape, the header row on every page
    assert (data.page_setup.paperSize, data.page_setup.orientation) == (9, "landscape")
    assert data.print_title_rows == "$1:$1"
    last = data.cell(row=1, column=data.max_column).column_letter
    assert data.auto_filter.ref == f"A1:{last}{rows + 1}"
    for header in data[1]:
        assert header.font.bold
        width = data.column_dimensions[header.column_letter].width
        assert width >= len(str(header.value)), header.value


# --- an audit answer ---------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "headers"), FORMATS)
def test_an_audit_answer_exports_each_event_citing_its_position_and_chain_hash(
    city: Database, tmp_path: Path, suffix: str, headers: str
) -> None:
    # When every event is exported from `ledger audit events`
    path = tmp_path / f"audit.{suffix}"
    outcome = run_cli(
        city, "audit", "events", "--limit", "1000", *export_options(path, headers)
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"exported {HEAD} events to {path}" in outcome.stdout

    # Then the file has the headers asked for, and one row per event in
    # ledger order, each with the event's own chain hash
    header, rows = read_back(path)
    assert header == AUDIT_HEADERS[headers]
    position, event, *_, event_hash = AUDIT_HEADERS[headers][:12]
    assert [int(row[position]) for row in rows] == list(range(1, HEAD + 1))
    for row in rows:
        assert row[event_hash] == chain_hash_at(city, int(row[position]))
    assert rows[27][event] == "Volunteer.SessionVoided"
    venue_name, team_name = AUDIT_HEADERS[headers][3:5]
    assert (rows[0][venue_name], rows[4][team_name]) == ("venue C", "team 1")

    # And every row cites the ledger state the whole export reflects
    head_hash = chain_hash_at(city, HEAD)
    assert_cites(rows, header, HEAD, head_hash)
    if suffix == "xlsx":
        assert_xlsx_layout(path, headers, EVENTS_SHEET, HEAD, head_hash, HEAD)

    # And V3's ID and phone numbers appear only masked
    details = AUDIT_HEADERS[headers][10]
    registered = rows[22][details]
    assert f"id_number={mask_id_number(V3_ID_NUMBER)}" in registered
    assert "phone=138****5678" in registered
    cells = [str(cell) for row in rows for cell in row.values()]
    assert not any(V3_ID_NUMBER in cell or V3_PHONE in cell for cell in cells)


def test_an_audit_export_states_who_did_what_to_whom(
    city: Database, tmp_path: Path
) -> None:
    path = tmp_path / "voids.csv"
    outcome = run_cli(
        city,
        "audit",
        "events",
        "--type",
        "Volunteer.SessionVoided",
        "--export",
        str(path),
    )
    assert outcome.exit_code == 0, outcome.output
    _, [voided] = read_back(path)
    assert voided["subjects"] == "activity:A1 session:S-V2 venue:S1 volunteer:V2"
    assert (voided["actor"], voided["role"]) == ("inspector-1", "inspector")
    assert voided["occurred at"] == (T0 + 5 * DAY).isoformat()
    assert voided["source"] == "cli"
    assert "fraud=True" in voided["details"]
    assert "reason=checked in on behalf of someone who never came" in voided["details"]


def test_an_audit_export_shows_personal_data_only_when_revealed(
    city: Database, tmp_path: Path
) -> None:
    path = tmp_path / "v3.xlsx"
    outcome = run_cli(
        city,
        "audit",
        "events",
        "--subject",
        "volunteer:V3",
        "--reveal-personal-data",
        "--export",
        str(path),
    )
    assert outcome.exit_code == 0, outcome.output
    _, [registered] = read_back(path)
    assert f"id_number={V3_ID_NUMBER}" in registered["details"]
    assert f"phone={V3_PHONE}" in registered["details"]


def test_an_audit_export_as_of_an_earlier_position_cites_that_position(
    city: Database, tmp_path: Path
) -> None:
    path = tmp_path / "early.csv"
    outcome = run_cli(city, "audit", "events", "--as-of", "13", "--export", str(path))
    assert outcome.exit_code == 0, outcome.output
    header, rows = read_back(path)
    assert [int(row["position"]) for row in rows] == list(range(1, 14))
    assert_cites(rows, header, 13, chain_hash_at(city, 13))


# --- every matching event, past the largest page --------------------------------

MANY = MAX_PAGE + 150  # more volunteers registered than an answer's largest page


@pytest.fixture
def crowded(ledger: Ledger, database: Database) -> Database:
    """A small city and 1,150 more volunteers: 1,157 registrations that an
    export has to read in two pages."""
    registrations = [
        submission(
            "register_volunteer",
            volunteer_id=f"M{serial:04d}",
            name=f"志愿者{serial}",
            id_number=id_number(serial, birth=f"1985{1 + serial // 1000:02d}01"),
            phone=f"139{serial:08d}",
        )
        for serial in range(MANY)
    ]
    record_all(ledger, [*small_city(), *registrations])
    return database


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "xlsx"])
def test_an_audit_export_writes_every_matching_event_not_one_page(
    crowded: Database, tmp_path: Path, suffix: str
) -> None:
    # When every registration is exported, more than the largest page
    path = tmp_path / f"registered.{suffix}"
    outcome = run_cli(
        crowded,
        "audit",
        "events",
        "--type",
        "Volunteer.Registered",
        "--export",
        str(path),
    )
    assert outcome.exit_code == 0, outcome.output

    # Then every one of them is in the file, once, in ledger order
    registered = MANY + 2
    assert f"exported {registered:,} events to {path}" in outcome.stdout
    if suffix == "jsonl":
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        positions = [row["position"] for row in rows]
        # the details stay an object, personal data masked
        assert rows[-1]["payload"]["phone"] == mask_phone(f"139{MANY - 1:08d}")
        assert rows[-1]["as_of_position"] == registered + 5
    else:
        _, table = read_back(path)
        positions = [int(row["position"]) for row in table]
    assert positions == [6, 7, *range(8, 8 + MANY)]
    if suffix == "xlsx":
        stated = xlsx_query(path)
        assert stated["type"] == "Volunteer.Registered"
        assert stated["rows"] == registered
        assert stated["personal data"] == "masked"


def test_an_audit_export_capped_by_limit_says_how_many_matched(
    crowded: Database, tmp_path: Path
) -> None:
    path = tmp_path / "first.csv"
    outcome = run_cli(
        crowded,
        "audit",
        "events",
        "--type",
        "Volunteer.Registered",
        "--limit",
        "10",
        "--export",
        str(path),
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"10 of {MANY + 2:,} matching events, as --limit asked" in outcome.stdout
    _, rows = read_back(path)
    assert len(rows) == 10


def test_a_long_export_shows_its_progress_on_a_terminal(
    ledger: Ledger, database: Database, tmp_path: Path
) -> None:
    # Given more registrations than an export shows progress from
    record_all(
        ledger,
        [
            submission(
                "register_volunteer",
                volunteer_id=f"P{serial:05d}",
                name=f"志愿者{serial}",
                id_number=id_number(serial, birth=f"1970{1 + serial // 1000:02d}01"),
            )
            for serial in range(PROGRESS_FROM)
        ],
    )
    # When they are exported with standard error on a terminal
    path = tmp_path / "registered.csv"
    outcome = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.api.cli.app",
            "--db",
            database.url,
            "audit",
            "events",
            "--type",
            "Volunteer.Registered",
            "--export",
            str(path),
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "TTY_COMPATIBLE": "1",
            "COLUMNS": "100",
            "LANG": "en_US.UTF-8",
            # the ledger's keys: its registrations open with its master key
            "LEDGER_KEY_DIRECTORY": str(KEY_DIRECTORIES[database.url]),
        },
        check=False,
    )
    # Then the export says how far it has got, there, and only its result
    # goes to standard output
    assert outcome.returncode == 0, outcome.stderr
    assert "exporting events" in outcome.stderr
    assert f"/{PROGRESS_FROM}" in outcome.stderr
    assert outcome.stdout == f"exported {PROGRESS_FROM:,} events to {path}\n"


def test_an_audit_answer_without_export_is_still_one_page(crowded: Database) -> None:
    outcome = run_cli(crowded, "audit", "events", "--type", "Volunteer.Registered")
    assert outcome.exit_code == 0, outcome.output
    page = orjson.loads(outcome.stdout)
    assert len(page["events"]) == 100
    assert page["next_after"] == page["events"][-1]["position"]


# --- venue reads -------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "headers"), FORMATS)
def test_a_venue_activity_read_exports_its_months_citing_the_ledger_state(
    city: Database, tmp_path: Path, suffix: str, headers: str
) -> None:
    path = tmp_path / f"activity.{suffix}"
    outcome = run_cli(city, "query", "activity", "C", *export_options(path, headers))
    assert outcome.exit_code == 0, outcome.output
    read = LedgerReads(city).venue_activity(VenueQuery("C"))
    assert f"exported {len(read.by_month)} months to {path}" in outcome.stdout

    header, rows = read_back(path)
    assert header == ACTIVITY_HEADERS[headers]
    # March 2024 at C's subtree: A1, and S-V1's 135 corrected minutes (S-V2
    # was voided)
    assert list(read.by_month) == ["2024-03"]
    assert (read.by_month["2024-03"].verified_minutes, len(rows)) == (135, 1)
    for row, (month, figures) in zip(rows, read.by_month.items(), strict=True):
        values = list(row.values())
        assert values[:3] == ["C", "venue C", month]
        expected = [getattr(figures, key) for key in ACTIVITY_KEYS]
        # hours: exact in an xlsx (shown to one decimal), rounded in a CSV
        hours = [minutes / 60 for minutes in expected[3:]]
        expected[3:] = [round(h, 1) for h in hours] if suffix == "csv" else hours
        assert all(same(v, e) for v, e in zip(values[3:9], expected, strict=True))
    assert_cites(rows, header, read.position, read.chain_hash)
    assert (read.position, read.chain_hash) == (HEAD, chain_hash_at(city, HEAD))
    if suffix == "xlsx":
        assert_xlsx_layout(path, headers, MONTHS_SHEET, HEAD, read.chain_hash, 1)
        # Hours to one decimal: 135 minutes are 2.25 hours, shown as 2.3
        verified_hours = load_workbook(path).worksheets[1]["G2"]
        assert (verified_hours.value, verified_hours.number_format) == (2.25, "0.0")
    else:
        assert rows[0][header[6]] == "2.2"  # 2.25 rounded half to even


ACTIVITY_KEYS = [
    "activities",
    "sessions",
    "volunteers",
    "verified_minutes",
    "makeup_minutes",
    "volunteer_minutes",
]
FULFILMENT_KEYS = [
    "posted",
    "dispatched",
    "accepted",
    "fulfilled",
    "withdrawn",
    "rejected",
    "expired",
    "open",
    "rate",
    "ratings",
    "satisfaction",
]


@pytest.mark.parametrize(("suffix", "headers"), FORMATS)
def test_a_venue_fulfilment_read_exports_its_months_citing_the_ledger_state(
    city: Database, tmp_path: Path, suffix: str, headers: str
) -> None:
    path = tmp_path / f"fulfilment.{suffix}"
    outcome = run_cli(city, "query", "fulfilment", "C", *export_options(path, headers))
    assert outcome.exit_code == 0, outcome.output
    read = LedgerReads(city).venue_fulfilment(VenueQuery("C"))

    header, rows = read_back(path)
    assert header == FULFILMENT_HEADERS[headers]
    # March 2024: O1 fulfilled and rated 5, O2 withdrawn
    march = read.by_month["2024-03"]
    assert (march.posted, march.fulfilled, march.withdrawn) == (2, 1, 1)
    assert (march.rate, march.satisfaction) == (1.0, 1.0)
    assert len(rows) == len(read.by_month) == 1
    for row, (month, figures) in zip(rows, read.by_month.items(), strict=True):
        values = list(row.values())
        assert values[:3] == ["C", "venue C", month]
        expected = [getattr(figures, key) for key in FULFILMENT_KEYS]
        assert all(same(v, e) for v, e in zip(values[3:14], expected, strict=True))
    assert_cites(rows, header, HEAD, chain_hash_at(city, HEAD))
    if suffix == "xlsx":
        assert_xlsx_layout(path, headers, MONTHS_SHEET, HEAD, read.chain_hash, 1)
        # Rates as percentages
        data = load_workbook(path).worksheets[1]
        rate, satisfaction = data["L2"], data["N2"]
        assert (rate.value, rate.number_format) == (1.0, "0.0%")
        assert (satisfaction.value, satisfaction.number_format) == (1.0, "0.0%")


def test_a_venue_read_exported_as_of_an_earlier_position_cites_that_position(
    city: Database, tmp_path: Path
) -> None:
    # As of position 20, S-V1 still counted its original 120 minutes
    path = tmp_path / "activity-then.xlsx"
    outcome = run_cli(
        city, "query", "activity", "C", "--as-of", "20", "--export", str(path)
    )
    assert outcome.exit_code == 0, outcome.output
    header, [march] = read_back(path)
    assert march["verified hours"] == 2
    assert_cites([march], header, 20, chain_hash_at(city, 20))


def test_an_export_is_csv_jsonl_or_xlsx(database: Database, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"export to \.csv, \.jsonl or \.xlsx"):
        write_export(
            tmp_path / "audit.txt", [], AUDIT_EVENT_COLUMNS, ExportSource([], 0, "")
        )


def test_the_cli_refuses_an_export_to_an_unsupported_file_type(
    database: Database, tmp_path: Path
) -> None:
    outcome = run_cli(database, "audit", "events", "--export", str(tmp_path / "a.txt"))
    assert isinstance(outcome.exception, SystemExit), outcome.exception
    assert outcome.exit_code == 2
    assert "export to .csv, .jsonl or .xlsx" in outcome.output


# --- values that spreadsheets treat specially ---------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","open")'


def test_a_value_that_looks_like_a_formula_is_exported_as_text(
    ledger: Ledger, database: Database, tmp_path: Path
) -> None:
    record_all(
        ledger,
        [
            submission(
                "register_team",
                team_id="T9",
                name="team 9",
                level="corps",
                actor={"id": FORMULA, "role": "venue_staff"},
            )
        ],
    )
    path = tmp_path / "audit.xlsx"
    page = find_events(database, AuditQuery())
    write_export(
        path,
        audit_event_rows(page.events),
        AUDIT_EVENT_COLUMNS,
        ExportSource([], page.position, page.chain_hash),
    )
    actor = load_workbook(path).worksheets[1]["F2"]
    assert actor.value == FORMULA
    assert actor.data_type == "s"


def test_a_reason_with_a_control_character_still_exports_to_xlsx(
    ledger: Ledger, database: Database, tmp_path: Path
) -> None:
    record_all(
        ledger,
        [
            submission("register_venue", venue_id="C", name="centre", level="centre"),
            submission(
                "post_order",
                order_id="O9",
                kind="wish",
                venue_id="C",
                category="health",
                description="a ramp",
            ),
            submission("withdraw_order", order_id="O9", reason="moved\x1faway"),
        ],
    )
    path = tmp_path / "audit.xlsx"
    page = find_events(database, AuditQuery(subject=("order", "O9")))
    write_export(
        path,
        audit_event_rows(page.events),
        AUDIT_EVENT_COLUMNS,
        ExportSource([], page.position, page.chain_hash),
    )
    _, rows = read_back(path)
    assert "moved" in rows[-1]["details"] and "away" in rows[-1]["details"]
