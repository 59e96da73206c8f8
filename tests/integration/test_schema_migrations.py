"""Schema versions: a ledger written by release bb41d98 (kept in
tests/fixtures, made by that release) is upgraded in place the first time
this release opens it, or refused until ``ledger migrate`` when a setting
says so; the revisions make exactly the schema the code defines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.api.http.access import (
    Caller,
    Role,
    create_key,
    find_caller,
    list_keys,
    revoke_key,
)
from ledger.bootstrap import LEDGER_SCHEMA, open_database, write_schema_revision
from ledger.store.event_store import (
    SCHEMA_VERSION_TABLE,
    Database,
    normalise_database_url,
)
from ledger.store.schema import HEAD_REVISION, MIGRATION_LOCK, head_revision

RELEASE = Path(__file__).parents[1] / "fixtures" / "release-bb41d98"
CITY = RELEASE / "city.jsonl"
IMPORTED_BY_RELEASE = 700
runner = CliRunner()
LEDGER_PROCESS = (sys.executable, "-m", "ledger.api.cli.app")


@pytest.fixture(autouse=True)
def key_directory_of_the_test(key_directory: Path) -> Iterator[None]:
    """The ledgers of a test keep their key material (the ID-number secret)
    in its key directory: one a ledger in PostgreSQL must be told of."""
    KEY_DIRECTORIES.append(key_directory)
    yield
    KEY_DIRECTORIES.pop()


KEY_DIRECTORIES: list[Path] = []


def ledger(url: str, *arguments: str, **environment: str) -> tuple[int, str]:
    """Run a ``ledger`` verb on the database at ``url`` in an English
    locale: exit code, output."""
    keys = {"LEDGER_KEY_DIRECTORY": str(KEY_DIRECTORIES[-1]), "LANG": "en_US.UTF-8"}
    result = runner.invoke(app, ["--db", url, *arguments], env={**keys, **environment})
    return result.exit_code, result.output


def restore_release_ledger(url: str) -> None:
    """Put the ledger release bb41d98 made into the empty database at ``url``."""
    target = sa.make_url(normalise_database_url(url))
    if target.get_backend_name() == "sqlite":
        shutil.copyfile(RELEASE / "ledger.db", target.database or "")
        return
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("loading the release's PostgreSQL dump needs psql")
    libpq = target.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(
        [
            psql,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(RELEASE / "ledger-postgres.sql"),
            libpq,
        ],
        check=True,
        capture_output=True,
    )


def lines_after_the_release(tmp_path: Path) -> Path:
    rest = tmp_path / "rest.jsonl"
    lines = CITY.read_bytes().splitlines(keepends=True)
    rest.write_bytes(b"".join(lines[IMPORTED_BY_RELEASE:]))
    return rest


def recorded_revisions(url: str) -> list[str] | None:
    """The rows of the version table (None when there is no such table)."""
    database = Database(url)
    try:
        with database.reading() as conn:
            if not sa.inspect(conn).has_table(SCHEMA_VERSION_TABLE):
                return None
            rows = conn.exec_driver_sql(
                f"SELECT version_num FROM {SCHEMA_VERSION_TABLE}"
            )
            return [row[0] for row in rows]
    finally:
        database.dispose()


def without_chain_hashes(document: str) -> object:
    """A read's JSON without its chain hash: the same events recorded at
    other moments chain differently, and their figures must not."""
    answer = orjson.loads(document)
    answer.pop("chain_hash", None)
    return answer


READS = (
    ("query", "hours", "V0000001"),
    ("query", "activity", "KS-C", "--from", "2024-01", "--to", "2024-12"),
    ("query", "fulfilment", "KS-C", "--from", "2024-01", "--to", "2024-12"),
    # revision 0002's calendar, projected from the release's events too
    ("calendar", "--month", "2024-03"),
)


def release_pending() -> str:
    """What upgrading the release's ledger applies: recording it as 0001,
    then every later revision (numbered one after another)."""
    later = [f"{number:04d}" for number in range(2, int(head_revision()) + 1)]
    return ", ".join(["record it as 0001", *later])


def test_a_ledger_of_release_bb41d98_is_upgraded_when_first_opened_and_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    # Given the ledger release bb41d98 wrote: 700 lines, projected, no version
    restore_release_ledger(database_url)
    assert recorded_revisions(database_url) is None

    # When this release imports the rest of the city into it
    code, output = ledger(
        database_url, "import", str(lines_after_the_release(tmp_path))
    )

    # Then the ledger was recorded as the release's revision and upgraded,
    # and every line after the release's was accepted
    assert code == 0, output
    assert output.splitlines()[-1] == "accepted=323 duplicate=0 rejected=0"
    assert recorded_revisions(database_url) == [head_revision()]

    # And it projects, verifies, and reads as a ledger this release made
    # from the whole city
    assert ledger(database_url, "project")[0] == 0
    code, output = ledger(database_url, "verify")
    assert code == 0, output
    assert "chain: ok, 1023 events" in output
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert ledger(fresh, "import", str(CITY))[0] == 0
    assert ledger(fresh, "project")[0] == 0
    for read in READS:
        upgraded, made_fresh = ledger(database_url, *read), ledger(fresh, *read)
        assert upgraded[0] == made_fresh[0] == 0
        assert without_chain_hashes(upgraded[1]) == without_chain_hashes(made_fresh[1])


def test_with_auto_migrate_off_an_old_ledger_is_refused_until_ledger_migrate(
    database_url: str,
) -> None:
    # Given the release's ledger, and a site that migrates by hand
    restore_release_ledger(database_url)
    by_hand = {"LEDGER_AUTO_MIGRATE": "false"}

    # When a verb opens it, it is refused in one line naming `ledger migrate`,
    # and the ledger is left as it was
    code, output = ledger(database_url, "query", "hours", "V0000001", **by_hand)
    assert code == 8  # ExitCode.SCHEMA_NOT_CURRENT (docs/cli.md)
    assert len(output.strip().splitlines()) == 1
    assert "run `ledger migrate` first" in output
    assert recorded_revisions(database_url) is None

    # When `ledger migrate --check` asks, it reports the upgrade pending
    code, output = ledger(database_url, "migrate", "--check", **by_hand)
    assert (code, output.strip()) == (
        1,
        "schema at unversioned (a ledger of release bb41d98); this release "
        f"needs {head_revision()}; pending: {release_pending()}",
    )
    assert recorded_revisions(database_url) is None

    # When `ledger migrate` runs, then the verb is served
    code, output = ledger(database_url, "migrate", **by_hand)
    assert code == 0, output
    assert output.splitlines()[-1] == f"schema now at {head_revision()}"
    assert ledger(database_url, "migrate", "--check", **by_hand)[0] == 0
    code, output = ledger(database_url, "query", "hours", "V0000001", **by_hand)
    assert code == 0, output


def wait_until_both_wait_for_the_lock(
    database: Database, processes: list[subprocess.Popen[str]]
) -> None:
    """On PostgreSQL, until the server shows both waiting for the advisory
    lock; SQLite shows no waiters: long enough for both to have started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(process.poll() is None for process in processes)
        if database.is_sqlite:
            time.sleep(5)
            return
        with database.reading() as conn:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND NOT granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ).scalar()
        if waiting == len(processes):
            return
        time.sleep(0.1)
    raise AssertionError("the processes never waited for the migration lock")


def test_two_processes_opening_an_old_ledger_at_once_upgrade_it_once(
    database_url: str,
) -> None:
    # Given the release's ledger, and its migration lock held for now
    restore_release_ledger(database_url)
    database = Database(database_url)
    with database.writing() as conn:
        if not database.is_sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")

        # When two processes set out to migrate it, and both wait for the lock
        both = [
            subprocess.Popen(
                [*LEDGER_PROCESS, "--db", database_url, "migrate"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": "", "LANGUAGE": ""},
            )
            for _ in range(2)
        ]
        wait_until_both_wait_for_the_lock(database, both)
    database.dispose()
    outputs = [process.communicate(timeout=120) for process in both]

    # Then both succeed; one found the release's ledger and upgraded it, the
    # other found it done; one version is recorded
    assert [process.returncode for process in both] == [0, 0], outputs
    found = sorted(out.splitlines()[0] for out, _ in outputs)
    assert found == [
        f"was: schema at {head_revision()}; this release needs {head_revision()}; "
        "pending: nothing",
        "was: schema at unversioned (a ledger of release bb41d98); this release "
        f"needs {head_revision()}; pending: {release_pending()}",
    ]
    assert recorded_revisions(database_url) == [head_revision()]


def test_the_revisions_make_exactly_the_schema_the_code_defines(
    database: Database,
) -> None:
    # Given a new database, made by the revisions
    with database.reading() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}),
            LEDGER_SCHEMA[0].metadata,
        )
    # Then it differs in nothing from the tables the code defines
    assert differences == []
    assert recorded_revisions(database.url) == [head_revision()]


def test_an_unversioned_ledger_unlike_the_release_is_refused(
    database_url: str,
) -> None:
    # Given a ledger of the release with one of its tables missing
    restore_release_ledger(database_url)
    database = Database(database_url)
    with database.writing() as conn:
        conn.exec_driver_sql("DROP TABLE proj_venue_tree_entries")
    database.dispose()

    # When this release opens it, it refuses in one line and changes nothing
    code, output = ledger(database_url, "query", "hours", "V0000001")
    assert code == 8  # ExitCode.SCHEMA_NOT_CURRENT (docs/cli.md)
    assert len(output.strip().splitlines()) == 1
    assert "are not those of release bb41d98" in output
    assert "proj_venue_tree_entries" in output
    assert recorded_revisions(database_url) is None


def test_a_ledger_of_a_newer_release_is_refused(database_url: str) -> None:
    # Given a ledger whose schema a newer release upgraded
    open_database(database_url).dispose()
    database = Database(database_url)
    with database.writing() as conn:
        conn.exec_driver_sql(f"UPDATE {SCHEMA_VERSION_TABLE} SET version_num = '9999'")
    database.dispose()

    # When this release opens it, it refuses in one line
    code, output = ledger(database_url, "import", str(CITY))
    assert code == 8  # ExitCode.SCHEMA_NOT_CURRENT (docs/cli.md)
    assert len(output.strip().splitlines()) == 1
    assert "revision 9999, which this release does not know" in output


def test_a_new_revision_written_for_unchanged_tables_holds_no_operation() -> None:
    # When a developer writes a revision while the code's tables are the
    # revisions' schema
    written = write_schema_revision("nothing changed")
    try:
        text = written.read_text()
    finally:
        written.unlink()
    # Then it follows the last one, and has nothing to do
    assert written.name == f"{int(head_revision()) + 1:04d}_nothing_changed.py"
    assert f"down_revision = {head_revision()!r}" in text
    upgrade = text.split("def upgrade() -> None:")[1]
    assert "pass" in upgrade
    assert "op." not in upgrade


def test_revision_0002_gives_the_release_keys_their_use_expiry_and_revocation(
    database_url: str,
) -> None:
    # Given the release's ledger, whose one admin key has none of them
    restore_release_ledger(database_url)
    # When this release opens it
    database = open_database(database_url)
    try:
        # Then the old key is listed, never used, without expiry, and revocable
        (old,) = list_keys(database)
        assert (old.role, old.last_used_at, old.expires_at, old.revoked_at) == (
            "admin",
            None,
            None,
            None,
        )
        assert revoke_key(database, old.prefix).revoked_at is not None
        # And new keys are made and found as in a new ledger
        key = create_key(database, "auditor")
        caller = find_caller(database, key)
        assert isinstance(caller, Caller) and caller.role is Role.AUDITOR
    finally:
        database.dispose()


def test_the_revision_a_ledger_is_found_current_at_is_the_newest() -> None:
    # Opening a ledger compares its recorded revision with HEAD_REVISION
    # without loading Alembic; a new revision must move it too.
    assert head_revision() == HEAD_REVISION
