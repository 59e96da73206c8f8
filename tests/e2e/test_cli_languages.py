"""The command line speaks the reader's language: Chinese when the locale
says Chinese or says nothing (C, POSIX, unset), English when it says
English. Import rejection reports keep the code and give the reason in that
language; ``query --format table|csv`` shows hours with one decimal, rates
in per cent and venue names (docs/i18n.md)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.bootstrap import open_ledger
from ledger.domain.messages import language_from_environment
from ledger.store.event_store import Database
from tests.factories import (
    KEY_DIRECTORIES,
    T0,
    activity,
    line,
    record_all,
    small_city,
    submission,
)

# A wide terminal, so that a table's headers are read whole.
CHINESE = {"LANG": "zh_CN.UTF-8", "COLUMNS": "200"}
ENGLISH = {"LANG": "en_US.UTF-8", "COLUMNS": "200"}


def ledger_cli(database: Database, environment: dict[str, str], *arguments: str) -> Any:
    """``ledger --db URL ARGUMENTS…`` under the locale ``environment``."""
    keys = {"LEDGER_KEY_DIRECTORY": str(KEY_DIRECTORIES[database.url])}
    return CliRunner().invoke(
        app, ["--db", database.url, *arguments], env={**keys, **environment}
    )


@pytest.fixture
def city(database: Database, key_directory: Path) -> Database:
    """The small city, with 95 approved minutes of V1 at A1 (in S1)."""
    record_all(
        open_ledger(database, key_directory),
        [
            *small_city(),
            activity("A1", venue_id="S1"),
            submission("sign_up", activity_id="A1", volunteer_id="V1"),
            submission(
                "check_in", session_id="V1-A1", volunteer_id="V1", activity_id="A1"
            ),
            submission("check_out", at=T0 + timedelta(minutes=95), session_id="V1-A1"),
            submission(
                "approve_session", at=T0 + timedelta(hours=4), session_id="V1-A1"
            ),
        ],
    )
    return database


def rejected_lines(
    database: Database, environment: dict[str, str], tmp_path: Path
) -> list[dict[str, Any]]:
    """Import a file whose two lines are refused, one by a rule and one as
    malformed, and read its rejection report."""
    source = tmp_path / "lines.jsonl"
    lines = [
        line("sign_up", activity_id="A1", volunteer_id="V1"),
        {**line("sign_up", activity_id="A1"), "at": "2024-03-01T09:00:00"},
    ]
    source.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    result = ledger_cli(database, environment, "import", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "accepted=0 duplicate=0 rejected=2"
    report = source.with_name("lines.jsonl.rejected.jsonl").read_bytes()
    return sorted(
        (orjson.loads(x) for x in report.splitlines()), key=lambda r: r["line"]
    )


def test_import_rejections_are_told_in_chinese_under_a_chinese_locale(
    city: Database, tmp_path: Path
) -> None:
    rule, malformed = rejected_lines(city, CHINESE, tmp_path)
    assert rule["code"] == "already_signed_up"
    assert rule["reason"] == "志愿者“V1”已报名活动“A1”"
    assert malformed["code"] == "invalid_time"
    assert malformed["reason"] == (
        "sign_up.at: 2024-03-01T09:00:00 没有时区偏移，请加上，如 +08:00; "
        "sign_up.volunteer_id: 为必填项"
    )


def test_import_rejections_are_told_in_english_under_an_english_locale(
    city: Database, tmp_path: Path
) -> None:
    rule, malformed = rejected_lines(city, ENGLISH, tmp_path)
    assert rule["code"] == "already_signed_up"
    assert rule["reason"] == "volunteer 'V1' is already signed up for 'A1'"
    assert malformed["code"] == "invalid_time"
    assert malformed["reason"] == (
        "sign_up.at: 2024-03-01T09:00:00 has no UTC offset; add one, like +08:00; "
        "sign_up.volunteer_id: is required"
    )


@pytest.mark.parametrize(
    ("environment", "language"),
    [
        ({}, "zh_CN"),
        ({"LANG": "C.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "POSIX"}, "zh_CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "zh_CN:en"}, "zh_CN"),
        ({"LANG": "fr_FR.UTF-8"}, "zh_CN"),
    ],
)
def test_the_locale_chooses_the_language_chinese_first(
    environment: dict[str, str], language: str
) -> None:
    assert language_from_environment(environment) == language


def test_query_hours_as_a_table_shows_hours_with_one_decimal(city: Database) -> None:
    assert ledger_cli(city, CHINESE, "project").exit_code == 0
    result = ledger_cli(city, CHINESE, "query", "hours", "V1", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "志愿者 V1" in result.stdout
    assert "签到时长(小时)" in result.stdout and "1.6" in result.stdout  # 95 min
    assert "2024年时长(小时)" in result.stdout
    english = ledger_cli(city, ENGLISH, "query", "hours", "V1", "--format", "table")
    assert "verified hours" in english.stdout and "1.6" in english.stdout


def test_query_activity_as_csv_has_venue_names_and_a_total(city: Database) -> None:
    assert ledger_cli(city, ENGLISH, "project").exit_code == 0
    result = ledger_cli(
        city, ENGLISH, "query", "activity", "I1", "--from", "2024-03", "--to",
        "2024-03", "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header[:3] == ["venue", "venue name", "month"]
    assert rows[0][:3] == ["I1", "venue I1", "2024-03"]
    assert rows[-1][2] == "total"
    hours = header.index("volunteer hours")
    assert [row[hours] for row in rows] == ["1.6", "1.6"]


def test_query_fulfilment_as_a_table_shows_rates_in_per_cent(city: Database) -> None:
    assert ledger_cli(city, CHINESE, "project").exit_code == 0
    result = ledger_cli(city, CHINESE, "query", "fulfilment", "C", "--format", "table")
    assert result.exit_code == 0, result.output
    assert "实现率" in result.stdout and "合计" in result.stdout
    assert "—" in result.stdout  # no order posted: no rate
    assert "阵地 C venue C" in result.stdout


def test_query_stays_json_by_default(city: Database) -> None:
    assert ledger_cli(city, CHINESE, "project").exit_code == 0
    result = ledger_cli(city, CHINESE, "query", "hours", "V1")
    assert orjson.loads(result.stdout)["volunteer_id"] == "V1"


def test_an_unknown_volunteer_is_told_in_chinese(city: Database) -> None:
    assert ledger_cli(city, CHINESE, "project").exit_code == 0
    result = ledger_cli(city, CHINESE, "query", "hours", "NOPE")
    assert result.exit_code == 4
    assert result.stderr.strip() == "志愿者“NOPE”未登记"


@pytest.mark.parametrize(
    ("environment", "told"),
    [
        (CHINESE, "{path} 处没有台账；`ledger import` 或 `ledger demo` 可创建台账"),
        (ENGLISH, "no ledger at {path}; `ledger import` or `ledger demo` creates one"),
    ],
)
def test_a_read_of_no_ledger_is_refused_in_the_readers_language(
    tmp_path: Path, environment: dict[str, str], told: str
) -> None:
    path = tmp_path / "mistyped.db"
    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{path}", "verify"], env=environment
    )
    assert result.exit_code == 4
    assert result.stderr.strip() == told.format(path=path)
    assert not path.exists()


@pytest.mark.parametrize(
    ("environment", "told"),
    [
        (CHINESE, "--until 的值“2024-03-01T09:00”应带时区偏移，如 +08:00"),
        (ENGLISH, "--until '2024-03-01T09:00' needs a UTC offset"),
    ],
)
def test_a_malformed_option_is_refused_by_its_name_in_the_readers_language(
    city: Database, environment: dict[str, str], told: str
) -> None:
    arguments = ("audit", "events", "--until", "2024-03-01T09:00")
    result = ledger_cli(city, environment, *arguments)
    assert result.exit_code == 2
    assert result.stderr.strip() == told


@pytest.mark.parametrize(
    ("environment", "told"),
    [
        (CHINESE, "--expires 应为日期 YYYY-MM-DD 或时间，而不是“soon”"),
        (ENGLISH, "--expires must be a day YYYY-MM-DD or a time, not 'soon'"),
    ],
)
def test_a_cli_refusal_of_its_own_is_told_in_the_readers_language(
    city: Database, environment: dict[str, str], told: str
) -> None:
    arguments = ("keys", "create", "--role", "admin", "--expires", "soon")
    result = ledger_cli(city, environment, *arguments)
    assert result.exit_code == 2
    assert result.stderr.strip() == told


def test_an_output_in_a_missing_folder_is_refused_in_chinese(
    city: Database, tmp_path: Path
) -> None:
    export = tmp_path / "missing" / "events.csv"
    result = ledger_cli(city, CHINESE, "audit", "events", "--export", str(export))
    assert result.exit_code == 7
    assert result.stderr.strip() == (
        f"--export：文件夹 {export.parent} 不存在；请先创建"
    )


def test_an_unusable_database_url_is_refused_in_chinese() -> None:
    result = CliRunner().invoke(
        app, ["--db", "nosuch://nobody@nowhere/x", "verify"], env=CHINESE
    )
    assert result.exit_code == 6
    assert result.stderr.strip() == (
        "台账无法使用此数据库地址（协议 nosuch）：请给出 "
        "postgresql://USER@HOST/NAME 或 sqlite:///PATH"
    )


# --- the command line's own words: usage errors, help, result lines ----------


@pytest.mark.parametrize(
    ("arguments", "chinese", "english"),
    [
        (
            ("query", "hours"),
            "缺少参数 VOLUNTEER_ID（用法见 `ledger query hours --help`）",
            "the argument VOLUNTEER_ID is missing "
            "(`ledger query hours --help` shows how)",
        ),
        (
            ("frobnicate",),
            "没有命令 frobnicate（用法见 `ledger --help`）",
            "there is no command frobnicate (`ledger --help` shows how)",
        ),
        (
            ("imprt", "city.jsonl"),
            "没有命令 imprt；是否想用 'import'？（用法见 `ledger --help`）",
            "there is no command imprt; did you mean 'import'? "
            "(`ledger --help` shows how)",
        ),
        (
            ("query", "hours", "V1", "--bogus"),
            "没有选项 --bogus（用法见 `ledger query hours --help`）",
            "there is no option --bogus (`ledger query hours --help` shows how)",
        ),
        (
            ("query", "hours", "V1", "--format", "pdf"),
            "--format：'pdf' 不是可选值之一：'json', 'table', 'csv'"
            "（用法见 `ledger query hours --help`）",
            "--format: 'pdf' is not one of 'json', 'table', 'csv' "
            "(`ledger query hours --help` shows how)",
        ),
        (
            ("audit", "events", "--after", "-1"),
            "--after：应不小于 0（用法见 `ledger audit events --help`）",
            "--after: should be at least 0 (`ledger audit events --help` shows how)",
        ),
        (
            ("demo", "--scale", "big"),
            "--scale：应为数字（用法见 `ledger demo --help`）",
            "--scale: should be a number (`ledger demo --help` shows how)",
        ),
        (
            ("keys", "create"),
            "缺少选项 --role（用法见 `ledger keys create --help`）",
            "the option --role is missing (`ledger keys create --help` shows how)",
        ),
    ],
    ids=[
        "missing argument",
        "unknown verb",
        "mistyped verb",
        "unknown option",
        "bad choice",
        "out of range",
        "not a number",
        "missing option",
    ],
)
def test_a_command_line_that_cannot_be_read_is_refused_in_one_line_of_each_language(
    arguments: tuple[str, ...], chinese: str, english: str
) -> None:
    for environment, told in ((CHINESE, chinese), (ENGLISH, english)):
        result = CliRunner().invoke(
            app, list(arguments), env=environment, prog_name="ledger"
        )
        assert result.exit_code == 2
        assert result.stderr.strip() == told


def test_the_help_of_a_verb_is_in_the_readers_language() -> None:
    chinese = CliRunner().invoke(app, ["query", "hours", "--help"], env=CHINESE)
    assert chinese.exit_code == 0
    assert "志愿者经审核的服务时长" in chinese.stdout
    assert "业务日期 YYYY-MM-DD" in chinese.stdout
    assert "选项" in chinese.stdout and "[默认：json]" in chinese.stdout
    assert "显示本帮助并退出" in chinese.stdout
    english = CliRunner().invoke(app, ["query", "hours", "--help"], env=ENGLISH)
    assert "A volunteer's approved hours." in english.stdout
    assert "Business date YYYY-MM-DD" in english.stdout
    assert "Options" in english.stdout and "[default: json]" in english.stdout


@pytest.mark.parametrize(
    ("environment", "exported", "chain"),
    [
        (CHINESE, "已导出 12 条事件到 {path}", "哈希链：正常，12 个事件"),
        (ENGLISH, "exported 12 events to {path}", "chain: ok, 12 events"),
    ],
)
def test_result_lines_are_told_in_the_readers_language(
    city: Database,
    tmp_path: Path,
    environment: dict[str, str],
    exported: str,
    chain: str,
) -> None:
    path = tmp_path / "events.jsonl"
    arguments = ("audit", "events", "--export", str(path))
    result = ledger_cli(city, environment, *arguments)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == exported.format(path=path)
    assert ledger_cli(city, environment, "project").exit_code == 0
    verified = ledger_cli(city, environment, "verify")
    assert verified.stdout.startswith(chain), verified.output


@pytest.mark.parametrize(
    ("environment", "told"),
    [
        (CHINESE, "证明无效：{path} 中没有台账证明"),
        (ENGLISH, "certificate does NOT verify: {path} carries no ledger certificate"),
    ],
)
def test_a_certificate_refused_is_told_in_the_readers_language(
    city: Database, tmp_path: Path, environment: dict[str, str], told: str
) -> None:
    page = tmp_path / "not-a-certificate.html"
    page.write_text("<p>兹证明</p>", encoding="utf-8")
    assert ledger_cli(city, environment, "public-key").exit_code == 0
    key = tmp_path / "ledger.pem"
    key.write_text(ledger_cli(city, environment, "public-key").stdout)
    arguments = ("verify-certificate", str(page), "--public-key", str(key))
    result = ledger_cli(city, environment, *arguments)
    assert result.exit_code == 1
    assert result.stdout.strip() == told.format(path=page)


@pytest.mark.parametrize(
    ("environment", "told"),
    [
        (CHINESE, "请导出为 .csv, .jsonl 或 .xlsx，而不是“.txt”"),
        (ENGLISH, "export to .csv, .jsonl or .xlsx, not '.txt'"),
    ],
)
def test_an_export_to_an_unknown_file_type_is_refused_in_the_readers_language(
    city: Database, tmp_path: Path, environment: dict[str, str], told: str
) -> None:
    path = tmp_path / "events.txt"
    result = ledger_cli(city, environment, "audit", "events", "--export", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == told


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        (CHINESE, "dispatch_order: dispatch_order 须且只能有 venue_id 或 team_id 之一"),
        (ENGLISH, "dispatch_order: dispatch_order needs exactly one of venue_id or "
         "team_id"),
    ],
)  # fmt: skip
def test_a_command_models_own_check_is_a_rejection_in_the_readers_language(
    city: Database, tmp_path: Path, environment: dict[str, str], reason: str
) -> None:
    source = tmp_path / "dispatch.jsonl"
    both = line("dispatch_order", order_id="O1", venue_id="S1", team_id="T1")
    source.write_bytes(orjson.dumps(both) + b"\n")
    result = ledger_cli(city, environment, "import", str(source))
    assert result.stdout.strip().splitlines()[-1] == "accepted=0 duplicate=0 rejected=1"
    report = source.with_name("dispatch.jsonl.rejected.jsonl").read_bytes()
    (rejected,) = report.splitlines()
    assert orjson.loads(rejected)["reason"] == reason
