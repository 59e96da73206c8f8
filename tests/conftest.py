"""Databases for the tests: a real SQLite file, and real PostgreSQL.

PostgreSQL is found through ``LEDGER_TEST_POSTGRES_URL`` (a URL with rights
to create databases, e.g. ``postgresql://postgres@127.0.0.1:5432/test``).
The suite creates its own database there, empties it between tests and
drops it at the end. Without the variable, PostgreSQL tests are skipped
with that reason; ``.ci/run`` always sets it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.application.ledger import Ledger
from ledger.bootstrap import LEDGER_SCHEMA, open_database, open_ledger
from ledger.store.event_store import Database, normalise_database_url
from tests.factories import KEY_DIRECTORIES

POSTGRES_URL_VARIABLE = "LEDGER_TEST_POSTGRES_URL"


@pytest.fixture(scope="session", autouse=True)
def user_data_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's data directory, where a server database's keys go when no
    key directory is configured: the session's own, for this process and
    the processes it starts, never the real one."""
    directory = tmp_path_factory.mktemp("user-data")
    os.environ["XDG_DATA_HOME"] = str(directory)
    return directory


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    admin_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not admin_url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE} (see README)")
    admin = sa.create_engine(
        normalise_database_url(admin_url), isolation_level="AUTOCOMMIT"
    )
    name = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(normalise_database_url(admin_url)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database, emptied of every ledger table."""
    database = Database(postgres_url)
    database.drop_schema(LEDGER_SCHEMA)
    database.dispose()
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty ledger database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


@pytest.fixture
def database(database_url: str, key_directory: Path) -> Iterator[Database]:
    """The ledger database; a CLI run on it is told its key directory."""
    db = open_database(database_url)
    KEY_DIRECTORIES[db.url] = key_directory
    yield db
    del KEY_DIRECTORIES[db.url]
    db.dispose()


@pytest.fixture
def key_directory(tmp_path: Path) -> Path:
    """The test ledger's key directory: its ID-number secret, its signing
    key. CLI runs in a test name the same directory, so they use the same."""
    return tmp_path / "keys"


@pytest.fixture
def ledger(database: Database, key_directory: Path) -> Ledger:
    return open_ledger(database, key_directory)
