"""The composition root: one schema, listed in one place, and settings read
once and handed on whole."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.bootstrap import LEDGER_SCHEMA, open_database
from ledger.settings import LedgerSettings
from ledger.store.event_store import SCHEMA_VERSION_TABLE, Database, metadata

SCHEMA_TABLES = {table.name for table in LEDGER_SCHEMA}


def test_a_new_database_holds_exactly_the_tables_of_the_schema_and_its_version(
    database: Database,
) -> None:
    tables = set(sa.inspect(database.engine).get_table_names())
    assert tables == SCHEMA_TABLES | {SCHEMA_VERSION_TABLE}


def test_the_schema_lists_every_table_the_cli_and_the_api_define() -> None:
    # Given every module that defines a table imported, as the entry points do
    for entry_point in ("ledger.api.cli.app", "ledger.api.http.app"):
        importlib.import_module(entry_point)
    # Then each of their tables is in the schema, and only those
    assert set(metadata.tables) == SCHEMA_TABLES


def test_settings_handed_on_as_an_environment_read_back_the_same(
    tmp_path: Path,
) -> None:
    settings = LedgerSettings(
        database_url="postgresql://elsewhere/ledger",
        key_directory=tmp_path / "keys",
        certificate_contact="0512-12345678",
        cors_origins=["https://dash.example", "http://127.0.0.1:8080"],
        ready_max_lag_seconds=2.5,
        metrics_directory=tmp_path / "metrics",
    )
    read_back = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ledger.settings import LedgerSettings; "
            "print(LedgerSettings().model_dump_json())",
        ],
        env=settings.as_environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert read_back.strip() == settings.model_dump_json()


def test_a_command_that_needs_no_database_leaves_none_behind(tmp_path: Path) -> None:
    # Given a checkpoint, its public key and the exported events of a ledger
    source = f"sqlite:///{tmp_path / 'source.db'}"
    open_database(source).dispose()
    runner = CliRunner()
    for arguments in (
        ["checkpoint", "--out", str(tmp_path / "checkpoint.json")],
        ["checkpoint", "--public-key-out", str(tmp_path / "key.pem")],
        ["export-events", str(tmp_path / "events.jsonl")],
    ):
        assert runner.invoke(app, ["--db", source, *arguments]).exit_code == 0
    # When they are verified by a command given another database
    elsewhere = tmp_path / "elsewhere.db"
    outcome = runner.invoke(
        app,
        [
            "--db",
            f"sqlite:///{elsewhere}",
            "verify-export",
            str(tmp_path / "events.jsonl"),
            "--checkpoint",
            str(tmp_path / "checkpoint.json"),
            "--public-key",
            str(tmp_path / "key.pem"),
        ],
    )
    # Then the check passes without opening, or creating, that database
    assert outcome.exit_code == 0, outcome.output
    assert not elsewhere.exists()
