"""ID numbers are looked up by a keyed digest (CONTRACT §1.4): HMAC-SHA256
under a secret of the ledger, kept in its key directory beside the signing
key, on real SQLite and PostgreSQL. The claims table holds no digest anyone
can recompute from a guessed number without that secret, the duplicate-ID
rule works through it, and a ledger whose secret is missing refuses to
write rather than start over with a new one."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ledger.api.cli.app import app
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.bootstrap import LEDGER_SCHEMA, open_database, open_ledger
from ledger.store.event_store import Database, claims_table
from ledger.store.integrity import (
    ID_NUMBER_SECRET_FILE,
    KEY_DIRECTORY_SETTING,
    KeyMaterialError,
)
from tests.factories import id_number, line, record_all, submission


def registration(volunteer_id: str, number: str) -> Submission:
    return submission(
        "register_volunteer", volunteer_id=volunteer_id, name="张三", id_number=number
    )


def id_number_claims(database: Database) -> set[str]:
    c = claims_table.c
    with database.reading() as conn:
        return set(
            conn.execute(sa.select(c.value).where(c.kind == "id_number")).scalars()
        )


def plain_digests(number: str) -> set[str]:
    """What an unkeyed digest of ``number`` could be: anyone can compute it."""
    return {
        hashlib.sha256(text.encode()).hexdigest()
        for text in (number, f"id_number:{number}")
    }


def test_the_claims_table_holds_no_plain_sha256_of_any_id_number(
    ledger: Ledger, database: Database
) -> None:
    numbers = [id_number() for _ in range(3)]
    record_all(
        ledger,
        [registration(f"V{n}", number) for n, number in enumerate(numbers)],
    )

    claims = id_number_claims(database)

    assert len(claims) == 3
    assert not claims & set().union(*map(plain_digests, numbers))
    assert not any(number in claim for claim in claims for number in numbers)


def test_the_duplicate_id_number_rule_works_through_the_keyed_digest(
    ledger: Ledger,
) -> None:
    number = id_number()
    record_all(
        ledger,
        [registration("V1", number)],
    )
    # the same number as written on another form: lower-case x, spaces around
    again = f" {number.lower()} "
    result = ledger.execute(
        submission("register_volunteer", volunteer_id="V2", name="b", id_number=again)
    )
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and result.error.code == "duplicate_id_number"


def test_a_ledger_with_another_secret_digests_the_same_number_otherwise(
    database_url: str, tmp_path: Path
) -> None:
    number = id_number()
    digests = []
    for keys in ("keys-of-one-ledger", "keys-of-another"):
        # a ledger made anew in the same place, with a key directory of its own
        database = Database(database_url)
        database.drop_schema(LEDGER_SCHEMA)
        database.dispose()
        database = open_database(database_url)
        ledger = open_ledger(database, tmp_path / keys)
        record_all(
            ledger,
            [registration("V1", number)],
        )
        digests.append(id_number_claims(database))
        database.dispose()

    assert len(digests[0]) == len(digests[1]) == 1
    assert digests[0] != digests[1]


def test_the_secret_is_made_on_first_need_for_its_owner_only(
    ledger: Ledger, key_directory: Path
) -> None:
    secret = key_directory / ID_NUMBER_SECRET_FILE
    assert stat.S_IMODE(key_directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(bytes.fromhex(secret.read_text())) == 32


def test_a_ledger_whose_secret_is_missing_refuses_to_write(
    ledger: Ledger, database: Database, tmp_path: Path
) -> None:
    # Given a ledger whose ID numbers were digested with its secret
    record_all(
        ledger,
        [registration("V1", id_number())],
    )
    # And a key directory that holds other key material but not that secret
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "signing-key.pem").write_text("another ledger's key")

    # When the ledger is opened with it, it refuses, saying what to do
    with pytest.raises(KeyMaterialError, match=ID_NUMBER_SECRET_FILE):
        open_ledger(database, elsewhere)

    # And `ledger import` refuses in one line, writing nothing
    assert_import_refused(database, elsewhere, tmp_path, naming=ID_NUMBER_SECRET_FILE)
    assert sorted(path.name for path in elsewhere.iterdir()) == ["signing-key.pem"]


def assert_import_refused(
    database: Database, keys: Path, tmp_path: Path, *, naming: str
) -> None:
    """``ledger import`` with the key directory ``keys`` exits 1 in one line
    that names ``naming``, with no traceback."""
    lines = tmp_path / "lines.jsonl"
    team = line("register_team", team_id="T1", name="t", level="corps", parent_id=None)
    lines.write_bytes(orjson.dumps(team) + b"\n")
    outcome = CliRunner().invoke(
        app,
        ["--db", database.url, "import", str(lines)],
        env={KEY_DIRECTORY_SETTING: str(keys)},
    )
    assert outcome.exit_code == 1
    assert naming in outcome.output
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)


def test_a_key_directory_with_another_secret_is_refused_and_changes_nothing(
    ledger: Ledger, database: Database, key_directory: Path, tmp_path: Path
) -> None:
    # Given a ledger whose ID numbers were digested with its secret
    number = id_number()
    record_all(
        ledger,
        [registration("V1", number)],
    )
    claims = id_number_claims(database)
    # And another key directory holding another secret (the same PostgreSQL
    # database reached by another host name finds keys of another name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ID_NUMBER_SECRET_FILE).write_text(bytes(range(32)).hex())

    # When the ledger is opened with it, it refuses, naming the setting
    with pytest.raises(KeyMaterialError, match=KEY_DIRECTORY_SETTING):
        open_ledger(database, elsewhere)

    # And `ledger import` refuses in one line, writing nothing
    assert_import_refused(database, elsewhere, tmp_path, naming=KEY_DIRECTORY_SETTING)
    # And `ledger serve` refuses to start, in one line
    served = CliRunner().invoke(
        app,
        ["--db", database.url, "serve", "--port", "1"],
        env={KEY_DIRECTORY_SETTING: str(elsewhere)},
    )
    assert served.exit_code == 1
    assert KEY_DIRECTORY_SETTING in served.output
    assert served.exception is None or isinstance(served.exception, SystemExit)

    # Then nothing was digested again: the ledger with its own secret still
    # refuses the same ID number, and opens again as it did
    assert id_number_claims(database) == claims
    again = ledger.execute(registration("V2", number))
    assert again.outcome is Outcome.REJECTED
    assert again.error is not None and again.error.code == "duplicate_id_number"
    reopened = open_ledger(database, key_directory)
    assert reopened.execute(registration("V3", number)).outcome is Outcome.REJECTED
