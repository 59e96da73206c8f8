"""The honours roster (表彰名单) an honours run writes, on real SQLite and
PostgreSQL: the volunteers newly reaching each level, highest first, with
their counted hours, benefits and points; ID and phone numbers masked
unless revealed; read back with openpyxl."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from openpyxl import load_workbook

from ledger.domain.privacy import ERASED, mask_id_number, mask_phone
from ledger.services.honours import load_rule_set
from tests.factories import id_number, submission
from tests.integration.test_honours import CHINA, MARCH_2024, Town, town

__all__ = ["town"]  # the fixture, shared with the honours tests

# Counted minutes: 1★ and a half hour, 3★, 5★, and no star at all.
MINUTES = {"K1": 6_030, "K3": 36_000, "K5": 90_000, "K0": 59}
PHONES = {volunteer: f"1390000{serial:04d}" for serial, volunteer in enumerate(MINUTES)}
ID_NUMBERS = {volunteer: id_number(600 + n) for n, volunteer in enumerate(MINUTES)}
ROSTER_HEADERS = {
    "english": [
        "stars reached",
        "level",
        "volunteer",
        "name",
        "ID number",
        "phone",
        "counted hours",
        "benefits granted",
        "points credited",
        "total points",
        "ledger position",
        "chain hash",
    ],
    "chinese": [
        "新达星级",
        "星级",
        "志愿者编号",
        "姓名",
        "身份证号",
        "手机号",
        "计入时长(小时)",
        "嘉许礼遇",
        "新增积分",
        "积分合计",
        "账本位置",
        "链哈希",
    ],
}


@pytest.fixture
def honoured(town: Town) -> Town:
    """Four volunteers with ID and phone numbers and approved make-up hours."""
    town.record(
        [
            submission(
                "register_volunteer",
                datetime(2020, 1, 1, tzinfo=CHINA),
                volunteer_id=volunteer,
                name=f"志愿者{volunteer}",
                id_number=ID_NUMBERS[volunteer],
                phone=PHONES[volunteer],
            )
            for volunteer in MINUTES
        ]
    )
    town.activity("LONG", MARCH_2024, hours=1_600)
    for volunteer, minutes in MINUTES.items():
        town.makeup(volunteer, "LONG", minutes)
    return town


def roster_of(path: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The roster workbook, and its rows by header."""
    workbook = load_workbook(path)
    header, *rows = workbook.worksheets[1].iter_rows(values_only=True)
    return workbook, [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("headers", ["english", "chinese"])
def test_an_honours_run_writes_the_volunteers_newly_reaching_each_level(
    honoured: Town, tmp_path: Path, headers: str
) -> None:
    # When the Kunshan run goes, writing its roster
    path = tmp_path / "roster.xlsx"
    chinese = ["--chinese-headers"] if headers == "chinese" else []
    lines = honoured.honours(
        "--as-of", "2024-12-31", "--rules", "kunshan", "--roster", str(path), *chinese
    )
    assert f"exported 3 volunteers newly reaching a level to {path}" in lines

    # Then it lists those newly reaching a level, highest first, K0 not at all
    workbook, rows = roster_of(path)
    about, data = workbook.worksheets
    assert data.title == ("roster" if headers == "english" else "表彰名单")
    assert [cell.value for cell in data[1]] == ROSTER_HEADERS[headers]
    english = [
        dict(zip(ROSTER_HEADERS["english"], row.values(), strict=True)) for row in rows
    ]
    assert [
        (r["volunteer"], r["stars reached"], r["level"], r["name"]) for r in english
    ] == [
        ("K5", 5, "★★★★★", "志愿者K5"),
        ("K3", 3, "★★★", "志愿者K3"),
        ("K1", 1, "★", "志愿者K1"),
    ]
    # With their counted hours, shown to one decimal
    assert [r["counted hours"] for r in english] == [1_500, 600, 100.5]
    assert data["G2"].number_format == "0.0"
    # And the benefits now granted, and the points credited
    tiers = {
        b.stars: b.benefit
        for b in load_rule_set("kunshan", date(2024, 12, 31)).benefits
    }
    assert english[0]["benefits granted"] == "；".join([tiers[3], tiers[4], tiers[5]])
    assert english[1]["benefits granted"] == tiers[3]
    assert english[2]["benefits granted"] is None  # 1★ brings no benefit here
    assert [r["points credited"] for r in english] == [15_000, 6_000, 1_005]
    # And ID and phone numbers only masked
    for row in english:
        volunteer = row["volunteer"]
        assert row["ID number"] == mask_id_number(ID_NUMBERS[volunteer])
        assert row["phone"] == mask_phone(PHONES[volunteer])
    # And the first sheet states the run and the ledger state it read
    stated = {
        label: value for label, value, *_ in list(about.iter_rows(values_only=True))[1:]
    }
    personal = "个人信息" if headers == "chinese" else "personal data"
    assert stated[personal] == ("已遮盖" if headers == "chinese" else "masked")
    assert stated["规则" if headers == "chinese" else "rules"] == "kunshan@1"
    as_of_day = "截至日期" if headers == "chinese" else "as of day"
    assert stated[as_of_day] == "2024-12-31"


def test_the_roster_shows_id_and_phone_numbers_only_when_revealed(
    honoured: Town, tmp_path: Path
) -> None:
    path = tmp_path / "roster.xlsx"
    honoured.honours(
        "--as-of",
        "2024-12-31",
        "--rules",
        "kunshan",
        "--dry-run",
        "--roster",
        str(path),
        "--reveal-personal-data",
    )
    _, rows = roster_of(path)
    assert {(r["volunteer"], r["ID number"], r["phone"]) for r in rows} == {
        (volunteer, ID_NUMBERS[volunteer], PHONES[volunteer])
        for volunteer in ("K1", "K3", "K5")
    }


def test_a_roster_revealing_numbers_is_recorded_as_a_read_of_them(
    honoured: Town, tmp_path: Path
) -> None:
    for reveal in ([], ["--reveal-personal-data"]):
        honoured.honours(
            *("--as-of", "2024-12-31", "--rules", "kunshan", "--dry-run"),
            *("--roster", str(tmp_path / "roster.xlsx"), *reveal),
        )

    listed = honoured.cli("audit", "personal-data-reads")
    (read,) = orjson.loads(listed.stdout)["reads"]
    assert read["read"] == "honours roster"
    assert read["volunteer_ids"] == ["K1", "K3", "K5"]


def test_a_roster_shows_a_forgotten_volunteer_by_id_with_the_marker(
    honoured: Town, tmp_path: Path
) -> None:
    forgotten = honoured.cli("forget", "K3", "--reason", "asked to be forgotten")
    assert forgotten.exit_code == 0, forgotten.output
    path = tmp_path / "roster.xlsx"

    honoured.honours(
        *("--as-of", "2024-12-31", "--rules", "kunshan", "--dry-run"),
        *("--roster", str(path), "--reveal-personal-data"),
    )

    _, rows = roster_of(path)
    (k3,) = [row for row in rows if row["volunteer"] == "K3"]
    assert k3["name"] == k3["ID number"] == k3["phone"] == ERASED
    assert k3["counted hours"] == MINUTES["K3"] / 60


def test_a_run_with_nothing_new_writes_an_empty_roster(
    honoured: Town, tmp_path: Path
) -> None:
    honoured.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    path = tmp_path / "again.csv"
    lines = honoured.honours(
        "--as-of", "2024-12-31", "--rules", "kunshan", "--roster", str(path)
    )
    assert f"exported 0 volunteers newly reaching a level to {path}" in lines
    assert (
        path.read_text(encoding="utf-8-sig")
        .splitlines()[0]
        .startswith("stars reached,level,volunteer")
    )


def test_a_roster_to_an_unknown_file_type_is_refused_before_the_run(
    honoured: Town, tmp_path: Path
) -> None:
    outcome = honoured.cli(
        "honours",
        "--as-of",
        "2024-12-31",
        "--rules",
        "kunshan",
        "--roster",
        str(tmp_path / "roster.doc"),
    )
    assert outcome.exit_code == 2
    assert "export to .csv, .jsonl or .xlsx" in outcome.output
    assert honoured.awards() == []
