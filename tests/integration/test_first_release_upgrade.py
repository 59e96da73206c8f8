"""A ledger made by the release before this one (schema revision 0004) opens
in this one, upgraded in place by revision 0005, on real SQLite and
PostgreSQL: its events gain the caller and fingerprint
columns (their chain unchanged), its idempotency keys move into the key
spaces of the sources that sent them, and its ID-number claims — plain
SHA-256 then — are made again with the ledger's keyed digest. It verifies
afterwards, and its rules work as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from ledger.application.ledger import Ledger, Outcome
from ledger.bootstrap import open_database, open_ledger
from ledger.domain.volunteers import Volunteer
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ledger.store.event_store import (
    SCHEMA_VERSION_TABLE,
    Database,
    claims_table,
    data_keys_table,
    events_table,
    head_position,
    idempotency_keys_table,
    properties_table,
)
from ledger.store.integrity import verify_ledger
from tests.factories import activity, record_all, small_city, submission

# The first release's idempotency keys: one global space, no content.
FIRST_RELEASE_KEYS = sa.Table(
    idempotency_keys_table.name,
    sa.MetaData(),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
)


def as_the_first_release_left_it(database: Database, ledger: Ledger) -> None:
    """Rewrite the ledger into what the first release stored for the same
    commands: events without caller and fingerprint (chained without them),
    keys in one space, ID-number claims as plain SHA-256, no properties,
    personal data in plaintext and no data keys."""
    e, k = events_table.c, idempotency_keys_table.c
    streams = [Volunteer.create_id(volunteer_id) for volunteer_id in ("V1", "V2")]
    id_numbers = {
        stream: volunteer.id_number
        for stream, volunteer in ledger.load_aggregates(streams).items()
        if isinstance(volunteer, Volunteer)
    }
    with database.writing() as conn:
        previous = GENESIS_HASH
        rows = conn.execute(sa.select(events_table).order_by(e.position)).all()
        for row in rows:
            payload = ledger.vault.open_payload(
                row.topic, row.stream_id, orjson.loads(row.payload)
            )
            values = {
                **row._mapping,
                "payload": orjson.dumps(payload).decode(),
                "caller": None,
                "fingerprint": None,
            }
            previous = chain_hash(previous, [values[name] for name in CHAINED_FIELDS])
            conn.execute(
                events_table.update()
                .where(e.position == row.position)
                .values(
                    payload=values["payload"],
                    caller=None,
                    fingerprint=None,
                    chain_hash=previous,
                )
            )
        for column in ("caller", "fingerprint"):
            conn.exec_driver_sql(
                f"ALTER TABLE {events_table.name} DROP COLUMN {column}"
            )
        keys = conn.execute(sa.select(k.key, k.first_position, k.last_position)).all()
        idempotency_keys_table.drop(conn)
        FIRST_RELEASE_KEYS.create(conn)
        conn.execute(FIRST_RELEASE_KEYS.insert(), [row._asdict() for row in keys])
        for stream, number in id_numbers.items():
            plain = hashlib.sha256(f"id_number:{number}".encode())
            conn.execute(
                claims_table.update()
                .where(
                    claims_table.c.kind == "id_number",
                    claims_table.c.stream_id == str(stream),
                )
                .values(value=plain.hexdigest())
            )
        properties_table.drop(conn)
        data_keys_table.drop(conn)
        for projection in ALL_PROJECTIONS:  # the roll-ups of revisions 0007-0008
            for kept in projection.kept_tables:
                kept.drop(conn)
        # the schema revision of the release before caller-bound keys
        conn.exec_driver_sql(f"UPDATE {SCHEMA_VERSION_TABLE} SET version_num = '0004'")


@pytest.fixture
def first_release_ledger(ledger: Ledger, database: Database) -> Database:
    """A first-release ledger: a small city and two keyed sign-ups."""
    record_all(
        ledger,
        [
            *small_city(),
            activity("A1"),
            submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1"),
            submission("sign_up", activity_id="A1", volunteer_id="V2", key="k-2"),
        ],
    )
    as_the_first_release_left_it(database, ledger)
    database.dispose()
    return database


def test_a_first_release_ledger_is_upgraded_when_opened_and_verifies(
    first_release_ledger: Database, tmp_path: Path
) -> None:
    # When the first release's ledger is opened by this one
    database = open_database(first_release_ledger.url)
    ledger = open_ledger(database, tmp_path / "keys-after-upgrade")

    # Then its chain, claims and keys verify against its events
    audit = verify_ledger(database, None, ledger)
    assert audit.chain.ok, audit.chain.problem
    assert [(d.table, d.problem) for d in audit.derived if not d.ok] == []

    # And its ID-number claims are keyed digests now, which the duplicate-ID
    # rule finds
    with database.reading() as conn:
        stored = set(
            conn.execute(
                sa.select(claims_table.c.value).where(
                    claims_table.c.kind == "id_number"
                )
            ).scalars()
        )
    v1 = ledger.load_aggregates([Volunteer.create_id("V1")])[Volunteer.create_id("V1")]
    assert isinstance(v1, Volunteer)
    assert ledger.id_number_digest(v1.id_number) in stored
    assert hashlib.sha256(f"id_number:{v1.id_number}".encode()).hexdigest() not in (
        stored
    )
    again = ledger.execute(
        submission(
            "register_volunteer", volunteer_id="V9", name="x", id_number=v1.id_number
        )
    )
    assert again.error is not None and again.error.code == "duplicate_id_number"

    # And a key accepted then is the sending source's: retried from it, a
    # duplicate with its first positions; free in the importer's space
    with database.reading() as conn:
        keys = {
            row.key: (row.caller, row.fingerprint, row.first_position)
            for row in conn.execute(sa.select(idempotency_keys_table))
        }
    assert keys["k-1"][:2] == ("cli", None)
    retried = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    )
    assert retried.outcome is Outcome.DUPLICATE
    assert retried.first_position == keys["k-1"][2]

    # And new commands are recorded beside the old ones, and all verifies
    accepted = ledger.execute(
        submission("cancel_sign_up", activity_id="A1", volunteer_id="V2", key="k-3")
    )
    assert accepted.outcome is Outcome.ACCEPTED
    assert verify_ledger(database, None, ledger).ok
    database.dispose()


def test_a_volunteer_the_first_release_registered_cannot_be_forgotten_in_place(
    first_release_ledger: Database, tmp_path: Path
) -> None:
    database = open_database(first_release_ledger.url)
    ledger = open_ledger(database, tmp_path / "keys-after-upgrade")
    with database.reading() as conn:
        before = head_position(conn)

    refused = ledger.execute(
        submission("forget_volunteer", volunteer_id="V1", reason="asked to be")
    )

    assert refused.outcome is Outcome.REJECTED
    assert refused.error is not None
    assert refused.error.code == "personal_data_not_sealed"
    assert "docs/personal-data.md" in str(refused.error)
    with database.reading() as conn:
        assert head_position(conn) == before
    database.dispose()
