"""Backup and restore (docs/operations.md): ``ledger backup`` copies a
running ledger consistently while a writer appends, with its key material
beside it, and the copy, restored as the documentation says, verifies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.bootstrap import open_database
from ledger.services.synthetic_city import write_city
from ledger.store.backup import keys_beside
from ledger.store.event_store import Database, head_position, normalise_database_url
from ledger.store.integrity import SIGNING_KEY_FILE

runner = CliRunner()
LEDGER_PROCESS = (sys.executable, "-m", "ledger.api.cli.app")
SIGNED_BEFORE_WRITING = 300


def ledger(url: str, *arguments: str, **environment: str) -> tuple[int, str]:
    """``ledger --db URL ARGUMENTS…`` in an English locale (the messages'
    languages are tested in tests/e2e/test_cli_languages.py)."""
    environment = {"LANG": "en_US.UTF-8", **environment}
    result = runner.invoke(app, ["--db", url, *arguments], env=environment)
    return result.exit_code, result.output


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def libpq(url: str) -> str:
    """``url`` as PostgreSQL's own tools take it."""
    return (
        sa.make_url(normalise_database_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def restored_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Where a backup of the ledger at ``database_url`` is restored: a
    SQLite file in a directory of its own, or a new PostgreSQL database."""
    if is_sqlite(database_url):
        (tmp_path / "restored").mkdir()
        yield f"sqlite:///{tmp_path / 'restored' / 'ledger.db'}"
        return
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.skip(f"a PostgreSQL backup needs {tool}")
    url = sa.make_url(normalise_database_url(database_url))
    name = f"restored_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def restore(backup: Path, url: str) -> dict[str, str]:
    """Restore ``backup`` to ``url`` as docs/operations.md says; returns the
    settings the restored ledger runs with (where its keys are)."""
    if is_sqlite(url):
        target = Path(sa.make_url(url).database or "")
        shutil.copyfile(backup, target)
        shutil.copytree(keys_beside(backup), keys_beside(target))
        return {}
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={libpq(url)}", str(backup)],
        check=True,
        capture_output=True,
    )
    return {"LEDGER_KEY_DIRECTORY": str(keys_beside(backup))}


def head_of(url: str) -> int:
    database = Database(url)
    try:
        with database.reading() as conn:
            return head_position(conn)
    finally:
        database.dispose()


def test_a_backup_taken_while_a_writer_appends_restores_to_a_ledger_that_verifies(
    database_url: str, restored_url: str, tmp_path: Path
) -> None:
    # Given a projected ledger with a signed checkpoint (its key directory beside a
    # SQLite file; configured for PostgreSQL)
    settings = (
        {}
        if is_sqlite(database_url)
        else {"LEDGER_KEY_DIRECTORY": str(tmp_path / "keys")}
    )
    city = tmp_path / "city.jsonl"
    total = write_city(city, scale=0.0005)
    lines = city.read_bytes().splitlines(keepends=True)
    (tmp_path / "first.jsonl").write_bytes(b"".join(lines[:SIGNED_BEFORE_WRITING]))
    (tmp_path / "rest.jsonl").write_bytes(b"".join(lines[SIGNED_BEFORE_WRITING:]))
    assert (
        ledger(database_url, "import", str(tmp_path / "first.jsonl"), **settings)[0]
        == 0
    )
    assert ledger(database_url, "project", **settings)[0] == 0
    code, output = ledger(database_url, "checkpoint", **settings)
    assert code == 0, output

    # And a writer appending the rest of the city
    writer = subprocess.Popen(
        [*LEDGER_PROCESS, "--db", database_url, "import", str(tmp_path / "rest.jsonl")],
        env={**os.environ, **settings},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while head_of(database_url) <= SIGNED_BEFORE_WRITING:
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)

    # When the ledger is backed up while the writer goes on
    backup = (
        tmp_path
        / "backups"
        / ("ledger.db" if is_sqlite(database_url) else "ledger.dump")
    )
    backup.parent.mkdir()
    code, output = ledger(database_url, "backup", str(backup), **settings)
    _, errors = writer.communicate(timeout=300)
    assert writer.returncode == 0, errors
    assert code == 0, output

    # Then it names the backup last, with the key material copied beside it
    assert output.splitlines()[-1] == str(backup)
    assert (keys_beside(backup) / SIGNING_KEY_FILE).stat().st_mode & 0o077 == 0

    # And restored elsewhere, it holds the ledger up to a position the writer
    # had committed, short of its end, and verifies with its own keys
    restored_settings = restore(backup, restored_url)
    held = head_of(restored_url)
    assert SIGNED_BEFORE_WRITING < held < total
    code, output = ledger(restored_url, "verify", **restored_settings)
    assert code == 0, output
    assert f"chain: ok, {held} events" in output
    assert f"checkpoint at position {SIGNED_BEFORE_WRITING}: ok" in output


def test_a_sqlite_backup_says_where_its_position_ends(tmp_path: Path) -> None:
    # Given a SQLite ledger of a few lines, never signed
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    city = tmp_path / "city.jsonl"
    write_city(city, scale=0.0001)
    first = city.read_bytes().splitlines(keepends=True)[:20]
    (tmp_path / "first.jsonl").write_bytes(b"".join(first))
    assert ledger(url, "import", str(tmp_path / "first.jsonl"))[0] == 0

    # When it is backed up
    code, output = ledger(url, "backup", str(tmp_path / "copy.db"))

    # Then the backup says how far it holds, and copies the key material
    # the import made (the secret its ID numbers are digested with)
    assert code == 0, output
    assert output.splitlines() == [
        "backed up by sqlite online backup, up to position 20",
        f"key material copied from {tmp_path / 'ledger.keys'} to "
        f"{tmp_path / 'copy.keys'}",
        str(tmp_path / "copy.db"),
    ]


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    # Given a ledger, and a file where the backup would go
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_database(url).dispose()
    kept = tmp_path / "kept.db"
    kept.write_bytes(b"an earlier backup")

    # When a backup is asked to go there, it is refused in one line
    code, output = ledger(url, "backup", str(kept))
    assert code == 1
    assert output.strip() == f"{kept} exists already: choose a new backup name"
    assert kept.read_bytes() == b"an earlier backup"


@pytest.mark.postgres
def test_without_pg_dump_a_postgres_backup_points_to_the_procedure(
    empty_postgres_url: str, tmp_path: Path
) -> None:
    # Given a PostgreSQL ledger on a host where pg_dump is not installed
    keys = str(tmp_path / "keys")
    open_database(empty_postgres_url).dispose()

    # When it is backed up, it refuses in one line naming the documentation
    code, output = ledger(
        empty_postgres_url,
        "backup",
        str(tmp_path / "ledger.dump"),
        LEDGER_KEY_DIRECTORY=keys,
        PATH=str(tmp_path),
    )
    assert code == 1
    assert output.strip() == (
        "pg_dump is not installed here: back up a PostgreSQL ledger as "
        "docs/operations.md says"
    )
    assert not (tmp_path / "ledger.dump").exists()
