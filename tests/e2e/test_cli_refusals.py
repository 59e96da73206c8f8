"""The command line refuses in one line, with the exit code docs/cli.md
lists, never a traceback: keys listed and revoked, keys scoped to what the
ledger holds, an import report that would overwrite its input, a report
that cannot be written, a busy ledger, a database that cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.api.cli.output import ExitCode
from ledger.bootstrap import open_database, open_ledger
from ledger.store.event_store import Database, WaitLimits, head_position
from tests.factories import KEY_DIRECTORIES, line, record_all, register_venue


@pytest.fixture
def database(database_url: str, key_directory: Path) -> Iterator[Database]:
    db = open_database(database_url)
    record_all(open_ledger(db, key_directory), [register_venue("C", "centre", None)])
    KEY_DIRECTORIES[db.url] = key_directory
    yield db
    del KEY_DIRECTORIES[db.url]
    db.dispose()


def ledger_cli(database: Database, *arguments: str, **env: str) -> Any:
    """``ledger --db URL ARGUMENTS…`` with ``env`` set, as a person runs it."""
    keys = {"LEDGER_KEY_DIRECTORY": str(KEY_DIRECTORIES[database.url])}
    return CliRunner().invoke(
        app, ["--db", database.url, *arguments], env={**keys, **env}
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


def test_an_import_whose_report_cannot_be_written_says_so_in_one_line(
    database: Database, interchange: Path, tmp_path: Path
) -> None:
    before = head(database)
    nowhere = tmp_path / "no-such-folder" / "report.jsonl"
    refused = ledger_cli(database, "import", str(interchange), "--report", str(nowhere))
    assert one_line_refusal(refused, ExitCode.FILE_ERROR), refused.output
    assert str(nowhere) in refused.stderr
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


@pytest.mark.parametrize("verb", [("keys", "list"), ("import", "lines.jsonl")])
def test_an_unreachable_database_exits_in_one_line(
    database_url: str, tmp_path: Path, interchange: Path, verb: tuple[str, ...]
) -> None:
    url = unreachable(database_url, tmp_path)
    arguments = [str(interchange) if a == "lines.jsonl" else a for a in verb]
    result = CliRunner().invoke(app, ["--db", url, *arguments])
    assert one_line_refusal(result, ExitCode.DATABASE_UNAVAILABLE), result.output
    assert "cannot be" in result.stderr
    assert result.stdout == ""
