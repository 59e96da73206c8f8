"""The command line refuses in one line, with the exit code docs/cli.md
lists, never a traceback: keys listed and revoked, keys scoped to what the
ledger holds, an import report that would overwrite its input, a report
that cannot be written, a busy ledger, a database that cannot be reached
or is misspelt, a read of a database holding no ledger, a demo city into a
ledger in use, an output file in a folder that does not exist, a malformed
option named as given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.api.cli.output import ExitCode
from ledger.bootstrap import open_database, open_ledger
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import Database, WaitLimits, head_position
from ledger.store.schema import schema_status
from tests.certificate_helpers import ISSUER_ENVIRONMENT
from tests.factories import (
    KEY_DIRECTORIES,
    T0,
    activity,
    id_number,
    line,
    record_all,
    register_venue,
    submission,
)

# The refusals are checked in English here; in Chinese in test_cli_languages.py.
ENGLISH = {"LANG": "en_US.UTF-8"}


@pytest.fixture
def database(database_url: str, key_directory: Path) -> Iterator[Database]:
    db = open_database(database_url)
    record_all(open_ledger(db, key_directory), [register_venue("C", "centre", None)])
    KEY_DIRECTORIES[db.url] = key_directory
    yield db
    del KEY_DIRECTORIES[db.url]
    db.dispose()


def ledger_cli(database: Database, *arguments: str, **env: str) -> Any:
    """``ledger --db URL ARGUMENTS…`` with ``env`` set, as a person runs it,
    in an English locale unless ``env`` names another (the refusals' words
    in each language: tests/e2e/test_cli_languages.py)."""
    keys = {"LEDGER_KEY_DIRECTORY": str(KEY_DIRECTORIES[database.url])}
    return CliRunner().invoke(
        app, ["--db", database.url, *arguments], env={**keys, **ENGLISH, **env}
    )


def one_line_refusal(result: Any, code: ExitCode) -> bool:
    """The command exited with ``code`` after saying why in one line."""
    return bool(
        result.exit_code == code and len(result.stderr.strip().splitlines()) == 1
    )


def created_key(database: Database, *options: str) -> str:
    result = ledger_cli(database, "keys", "create", *options)
    assert result.exit_code == 0, result.output
    key: str = result.stdout.strip().splitlines()[-1]
    return key


def head(database: Database) -> int:
    with database.reading() as conn:
        return head_position(conn)


# --- keys ------------------------------------------------------------------


def test_keys_list_shows_each_key_by_prefix_and_never_the_key(
    database: Database,
) -> None:
    admin = created_key(database, "--role", "admin")
    staff = created_key(
        database, "--role", "venue_staff", "--venue", "C", "--expires", "2099-12-31"
    )
    listed = ledger_cli(database, "keys", "list")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.strip().splitlines()
    assert header.split() == [
        "prefix", "role", "scope", "created", "last", "used", "expires", "revoked"
    ]  # fmt: skip
    by_prefix = {row.split()[0]: row.split() for row in rows}
    assert set(by_prefix) == {admin[:12], staff[:12]}
    assert by_prefix[admin[:12]][1:3] == ["admin", "-"]
    assert by_prefix[admin[:12]][4:] == ["never", "never", "-"]
    # The last day of use is China time: the key works to its end.
    assert by_prefix[staff[:12]][1:3] == ["venue_staff", "venue:C"]
    assert by_prefix[staff[:12]][5] == "2099-12-31T16:00:00.000000Z"
    assert admin not in listed.stdout and staff not in listed.stdout


def test_keys_revoke_by_prefix_marks_the_key_revoked(database: Database) -> None:
    key = created_key(database, "--role", "auditor")
    revoked = ledger_cli(database, "keys", "revoke", key[:10])
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.startswith(f"revoked {key[:12]} (auditor) at ")
    row = next(
        r for r in ledger_cli(database, "keys", "list").stdout.splitlines()
        if r.startswith(key[:12])
    )  # fmt: skip
    assert row.split()[-1].endswith("Z")


def test_keys_revoke_refuses_a_prefix_of_several_keys(database: Database) -> None:
    created_key(database, "--role", "auditor")
    created_key(database, "--role", "dashboard")
    refused = ledger_cli(database, "keys", "revoke", "wml_")
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert "2 keys" in refused.stderr
    listed = ledger_cli(database, "keys", "list").stdout.strip().splitlines()[1:]
    assert [row.split()[-1] for row in listed] == ["-", "-"]


def test_keys_revoke_of_no_key_is_not_found(database: Database) -> None:
    refused = ledger_cli(database, "keys", "revoke", "wml_nothing")
    assert one_line_refusal(refused, ExitCode.NOT_FOUND), refused.output


@pytest.mark.parametrize(
    "options",
    [
        ("--role", "venue_staff", "--venue", "NOWHERE"),
        ("--role", "volunteer", "--volunteer", "NOBODY"),
        # A venue's id is not a volunteer's.
        ("--role", "volunteer", "--volunteer", "C"),
    ],
)
def test_a_key_cannot_be_scoped_to_what_the_ledger_does_not_hold(
    database: Database, options: tuple[str, ...]
) -> None:
    refused = ledger_cli(database, "keys", "create", *options)
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert "recorded" in refused.stderr
    assert ledger_cli(database, "keys", "list").stdout.strip().count("\n") == 0


@pytest.mark.parametrize("expires", ["2001-01-01", "2020-05-01T00:00:00+08:00", "soon"])
def test_a_key_cannot_expire_in_the_past_or_at_no_time(
    database: Database, expires: str
) -> None:
    refused = ledger_cli(
        database, "keys", "create", "--role", "admin", "--expires", expires
    )
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output


# --- reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ("query", "hours", "V1", "--as-of", "0001-01-01T00:00:00+08:00"),
        ("query", "activity", "C", "--as-of", "9" * 30),
        ("query", "explain-activity", "C", "--after", str(2**63)),
        ("audit", "events", "--since", "9999-12-31T23:59:59-14:00"),
        ("audit", "events", "--after", str(2**63)),
        ("audit", "session", "S1", "--as-of", str(2**63)),
    ],
)
def test_a_read_outside_what_a_ledger_holds_is_refused_without_a_traceback(
    database: Database, arguments: tuple[str, ...]
) -> None:
    # (Typer refuses an option out of its range in its own box, also exit 2.)
    refused = ledger_cli(database, *arguments)
    assert refused.exit_code == ExitCode.BAD_INPUT, refused.output
    assert isinstance(refused.exception, SystemExit), refused.exception


# --- import reports ----------------------------------------------------------


@pytest.fixture
def interchange(tmp_path: Path) -> Path:
    """A file of two lines: one accepted, one rejected (its parent unknown)."""
    path = tmp_path / "lines.jsonl"
    lines = [
        line("register_venue", venue_id=v, name=v, level=level, parent_id=parent)
        for v, level, parent in (("I1", "institute", "C"), ("S9", "station", "X"))
    ]
    path.write_bytes(b"".join(orjson.dumps(each) + b"\n" for each in lines))
    return path


def test_an_import_whose_report_is_its_input_is_refused_before_reading(
    database: Database, interchange: Path
) -> None:
    content = interchange.read_bytes()
    before = head(database)
    for report in (interchange, interchange.parent / "." / interchange.name):
        refused = ledger_cli(
            database, "import", str(interchange), "--report", str(report)
        )
        assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert interchange.read_bytes() == content
    assert head(database) == before


def test_an_import_on_a_full_disk_says_so_in_one_line(
    database: Database, interchange: Path
) -> None:
    # /dev/full opens, and every write to it fails as on a full disk.
    full = ledger_cli(database, "import", str(interchange), "--report", "/dev/full")
    assert one_line_refusal(full, ExitCode.FILE_ERROR), full.output
    assert "No space left on device" in full.stderr


# --- the database ------------------------------------------------------------


def test_an_import_while_another_writer_holds_the_lock_exits_busy(
    database: Database, interchange: Path
) -> None:
    before = head(database)
    other_writer = Database(database.url, WaitLimits(lock_seconds=30))
    with other_writer.appending():
        busy = ledger_cli(
            database, "import", str(interchange), LEDGER_LOCK_WAIT_SECONDS="0.5"
        )
    other_writer.dispose()
    assert one_line_refusal(busy, ExitCode.LEDGER_BUSY), busy.output
    assert "retry" in busy.stderr
    assert head(database) == before
    retried = ledger_cli(database, "import", str(interchange))
    assert retried.stdout.strip().splitlines()[-1] == (
        "accepted=1 duplicate=0 rejected=1"
    )


def unreachable(url: str, tmp_path: Path) -> str:
    """A URL like ``url`` whose database cannot be reached."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'ledger.db'}"
    return parsed.set(port=1).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "verb", [("keys", "create", "--role", "admin"), ("import", "lines.jsonl")]
)
def test_an_unreachable_database_exits_in_one_line(
    database_url: str, tmp_path: Path, interchange: Path, verb: tuple[str, ...]
) -> None:
    url = unreachable(database_url, tmp_path)
    arguments = [str(interchange) if a == "lines.jsonl" else a for a in verb]
    result = CliRunner().invoke(app, ["--db", url, *arguments], env=ENGLISH)
    assert one_line_refusal(result, ExitCode.DATABASE_UNAVAILABLE), result.output
    assert "cannot be" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url", ["postgresq://postgres@127.0.0.1/test", "sqlite//ledger.db", "ledger.db"]
)
def test_a_misspelt_database_url_exits_in_one_line(url: str) -> None:
    result = CliRunner().invoke(app, ["--db", url, "query", "hours", "V1"], env=ENGLISH)
    assert one_line_refusal(result, ExitCode.DATABASE_UNAVAILABLE), result.output
    assert "postgresql://" in result.stderr


@pytest.mark.parametrize("verb", [("query", "hours", "V1"), ("demo",)], ids=" ".join)
def test_a_relative_key_directory_is_refused_in_one_line(
    database: Database, verb: tuple[str, ...]
) -> None:
    result = ledger_cli(database, *verb, LEDGER_KEY_DIRECTORY="keys")
    assert one_line_refusal(result, ExitCode.CHECK_FAILED), result.output
    assert "LEDGER_KEY_DIRECTORY must be an absolute path" in result.stderr


READ_VERBS = [
    ("query", "hours", "V1"),
    ("query", "activity", "C"),
    ("audit", "events"),
    ("audit", "session", "S1"),
    ("verify",),
    ("certificate", "V1"),
    ("calendar", "--month", "2024-03"),
    ("project",),
    ("honours", "--as-of", "2024-12-31", "--rules", "national"),
    ("keys", "list"),
    ("checkpoint",),
    ("export-events", "events.jsonl"),
]


def holds_no_ledger(url: str) -> bool:
    """Nothing was made at ``url``: no SQLite file, no tables."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return not Path(parsed.database or "").exists()
    database = Database(url)
    try:
        return schema_status(database).is_new
    finally:
        database.dispose()


@pytest.mark.parametrize("verb", READ_VERBS, ids=" ".join)
def test_a_read_of_a_database_without_a_ledger_is_refused_and_makes_none(
    database_url: str, tmp_path: Path, verb: tuple[str, ...]
) -> None:
    arguments = [str(tmp_path / a) if a.endswith(".jsonl") else a for a in verb]
    result = CliRunner().invoke(
        app,
        ["--db", database_url, *arguments],
        env={
            "LEDGER_KEY_DIRECTORY": str(tmp_path / "keys"),
            **ISSUER_ENVIRONMENT,
            **ENGLISH,
        },
    )
    assert one_line_refusal(result, ExitCode.NOT_FOUND), result.output
    assert "no ledger at" in result.stderr
    assert "`ledger import` or `ledger demo` creates one" in result.stderr
    assert holds_no_ledger(database_url)


def test_a_read_of_a_sqlite_file_in_a_missing_folder_names_the_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "no-such-folder" / "ledger.db"
    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{path}", "verify"], env=ENGLISH
    )
    assert one_line_refusal(result, ExitCode.NOT_FOUND), result.output
    assert f"no ledger at {path}" in result.stderr
    assert not path.parent.exists()


def test_an_import_makes_the_ledger_a_read_then_finds(
    database_url: str, tmp_path: Path, interchange: Path
) -> None:
    keys = {"LEDGER_KEY_DIRECTORY": str(tmp_path / "keys")}
    imported = CliRunner().invoke(
        app, ["--db", database_url, "import", str(interchange)], env=keys
    )
    assert imported.exit_code == 0, imported.output
    listed = CliRunner().invoke(app, ["--db", database_url, "keys", "list"], env=keys)
    assert listed.exit_code == 0, listed.output


def test_a_key_can_be_made_before_the_first_import(
    database_url: str, tmp_path: Path
) -> None:
    created = CliRunner().invoke(
        app,
        ["--db", database_url, "keys", "create", "--role", "admin"],
        env={"LEDGER_KEY_DIRECTORY": str(tmp_path / "keys")},
    )
    assert created.exit_code == 0, created.output


def test_demo_refuses_a_ledger_that_holds_events(database: Database) -> None:
    before = head(database)
    refused = ledger_cli(database, "demo", "--scale", "0.0001")
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert "--force" in refused.stderr
    assert head(database) == before


@pytest.mark.parametrize("strict", [False, True])
def test_a_strict_import_with_rejected_lines_exits_3_after_importing_the_rest(
    database: Database, interchange: Path, strict: bool
) -> None:
    before = head(database)
    options = ["--strict"] if strict else []
    result = ledger_cli(database, "import", str(interchange), *options)
    assert result.exit_code == (ExitCode.NEEDS_ATTENTION if strict else ExitCode.OK)
    assert result.stdout.strip().splitlines()[-1] == (
        "accepted=1 duplicate=0 rejected=1"
    )
    assert head(database) > before


def test_a_strict_import_without_rejected_lines_exits_0(
    database: Database, tmp_path: Path
) -> None:
    clean = tmp_path / "clean.jsonl"
    venue = line("register_venue", venue_id="I1", name="I1", level="institute")
    clean.write_bytes(orjson.dumps({**venue, "parent_id": "C"}) + b"\n")
    result = ledger_cli(database, "import", str(clean), "--strict")
    assert result.exit_code == ExitCode.OK, result.output


@pytest.mark.parametrize(
    ("option", "arguments"),
    [
        ("--export", ("query", "activity", "C", "--export", "{out}.xlsx")),
        ("--export", ("audit", "events", "--export", "{out}.csv")),
        ("--export", ("calendar", "--month", "2024-03", "--export", "{out}.pdf")),
        ("--out", ("certificate", "V1", "--out", "{out}.pdf")),
        ("--roster", ("honours", "--as-of", "2024-12-31", "--rules", "national",
                      "--roster", "{out}.xlsx")),
        ("--out", ("checkpoint", "--out", "{out}.json")),
        ("--public-key-out", ("checkpoint", "--public-key-out", "{out}.pem")),
        ("OUT", ("export-events", "{out}.jsonl")),
        ("FILE", ("backup", "{out}.backup")),
        ("--report", ("import", "{file}", "--report", "{out}.jsonl")),
    ],
)  # fmt: skip
def test_an_output_in_a_missing_folder_is_refused_before_anything_is_read(
    database: Database,
    interchange: Path,
    tmp_path: Path,
    option: str,
    arguments: tuple[str, ...],
) -> None:
    before = head(database)
    out = tmp_path / "no-such-folder" / "out"
    given = [a.format(out=out, file=interchange) for a in arguments]
    refused = ledger_cli(database, *given)
    assert one_line_refusal(refused, ExitCode.FILE_ERROR), refused.output
    assert refused.stderr.startswith(f"{option}: the folder {out.parent} ")
    assert head(database) == before
    assert not out.parent.exists()


@pytest.mark.parametrize(
    ("option", "arguments"),
    [
        ("--since", ("audit", "events", "--since", "yesterday")),
        ("--until", ("audit", "events", "--until", "2024-03-01")),
        ("--recorded-since", ("audit", "events", "--recorded-since", "x")),
        ("--recorded-until", ("audit", "events", "--recorded-until", "x")),
        ("--as-of", ("query", "hours", "V1", "--as-of", "yesterday")),
        ("--through", ("query", "hours", "V1", "--through", "2024-3-1")),
        ("--from", ("query", "activity", "C", "--from", "2024-13")),
        ("--to", ("query", "fulfilment", "C", "--to", "March")),
        ("--as-of", ("query", "explain-activity", "C", "--as-of", "x")),
        ("--month", ("calendar", "--month", "2024-3")),
        ("--as-of", ("calendar", "--month", "2024-03", "--as-of", "x")),
        ("--as-of", ("certificate", "V1", "--as-of", "2024-02-30")),
        ("--as-of", ("honours", "--as-of", "someday", "--rules", "national")),
    ],
)
def test_a_malformed_option_is_refused_by_the_name_it_was_given(
    database: Database, option: str, arguments: tuple[str, ...]
) -> None:
    refused = ledger_cli(database, *arguments)
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert refused.stderr.startswith(f"{option} "), refused.stderr
    assert "as_of" not in refused.stderr


def test_query_hours_through_counts_service_dated_up_to_that_day(
    database: Database, key_directory: Path
) -> None:
    march_10 = T0 + timedelta(days=9)
    record_all(
        open_ledger(database, key_directory),
        [
            register_venue("I1", "institute", "C"),
            register_venue("S1", "station", "I1"),
            submission(
                "register_volunteer", volunteer_id="V1", name="张三",
                id_number=id_number(),
            ),
            activity("A1", "S1", T0),
            activity("A2", "S1", march_10),
            *(
                step
                for session, activity_id, at, minutes in (
                    ("M1", "A1", T0, 60),
                    ("M2", "A2", march_10, 90),
                )
                for step in (
                    submission(
                        "record_makeup_hours", at, session_id=session,
                        volunteer_id="V1", activity_id=activity_id,
                        minutes=minutes, reason="补录: paper sheet",
                    ),
                    submission(
                        "approve_session", at + timedelta(minutes=1),
                        session_id=session,
                    ),
                )
            ),
        ],
    )  # fmt: skip
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()

    def total(*options: str) -> int:
        result = ledger_cli(database, "query", "hours", "V1", *options)
        assert result.exit_code == 0, result.output
        minutes: int = orjson.loads(result.stdout)["total_minutes"]
        return minutes

    assert total() == 150
    assert total("--through", "2024-03-09") == 60
    assert total("--through", "2024-03-10") == 150
    assert total("--through", "2024-02-29") == 0


def test_a_migration_check_of_a_sqlite_file_that_is_not_there_makes_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mistyped.db"
    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{path}", "migrate", "--check"], env=ENGLISH
    )
    assert one_line_refusal(result, ExitCode.NOT_FOUND), result.output
    assert f"no ledger at {path}" in result.stderr
    assert not path.exists()


@pytest.mark.parametrize(
    ("option", "arguments", "target"),
    [
        ("--report", ("import", "{file}", "--report", "{target}"), "database"),
        ("--out", ("certificate", "V1", "--out", "{target}"), "database"),
        ("--export", ("audit", "events", "--export", "{target}"), "database"),
        ("--public-key-out", ("checkpoint", "--public-key-out", "{target}"), "key"),
        ("--report", ("import", "{file}", "--report", "{target}"), "secret"),
        ("--out", ("checkpoint", "--out", "{target}"), "key directory"),
    ],
)
def test_an_output_onto_the_ledgers_own_files_is_refused_and_they_stay_whole(
    database: Database,
    interchange: Path,
    option: str,
    arguments: tuple[str, ...],
    target: str,
) -> None:
    keys = KEY_DIRECTORIES[database.url]
    own = {
        "database": Path(database.sqlite_file) if database.sqlite_file else None,
        "key": keys / "signing-key.pem",
        "secret": keys / "id-number-secret",
        "key directory": keys / "checkpoint.json",
    }[target]
    if own is None:
        pytest.skip("a PostgreSQL ledger has no database file to overwrite")
    if target == "key":
        assert ledger_cli(database, "checkpoint").exit_code == 0  # makes the key
    before = own.read_bytes() if own.exists() else None
    given = [a.format(target=own, file=interchange) for a in arguments]
    refused = ledger_cli(database, *given)
    assert one_line_refusal(refused, ExitCode.BAD_INPUT), refused.output
    assert refused.stderr.startswith(f"{option}: {own} is "), refused.stderr
    assert (own.read_bytes() if own.exists() else None) == before


@pytest.mark.parametrize(
    "arguments",
    [("query", "hours", "V1"), ("verify",), ("import", "{file}")],
)
def test_a_file_that_is_not_a_database_is_refused_in_one_line_and_left_alone(
    tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("志愿服务 notes, not a ledger\n" * 50, encoding="utf-8")
    before = not_a_database.read_bytes()
    given = [a.format(file=not_a_database) for a in arguments]
    refused = CliRunner().invoke(
        app, ["--db", f"sqlite:///{not_a_database}", *given], env=ENGLISH
    )
    assert one_line_refusal(refused, ExitCode.DATABASE_UNAVAILABLE), refused.output
    assert "is not a ledger's database" in refused.stderr
    assert not_a_database.read_bytes() == before


def test_a_backup_of_a_path_without_a_ledger_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    refused = CliRunner().invoke(
        app, ["--db", f"sqlite:///{missing}", "backup", str(tmp_path / "copy.db")]
    )
    assert one_line_refusal(refused, ExitCode.NOT_FOUND), refused.output
    assert not missing.exists() and not (tmp_path / "copy.db").exists()
