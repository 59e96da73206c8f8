"""Integrity on real SQLite and PostgreSQL: tampering made directly in the
database is found by the hash chain, by signed checkpoints and by
`ledger verify`, each naming the first bad position; and a checkpoint can be
verified by someone holding nothing but the public key and the exported
events.

What the chain alone cannot see, and what a checkpoint adds:

- deleting the *last* events leaves a shorter chain that is still intact:
  only a checkpoint signed before the deletion (at a position now missing)
  shows it;
- appending a forged event with a correctly computed hash is
  indistinguishable from a real append (nothing signs the future): no check
  finds it, and the next checkpoint would sign it;
- rewriting history and recomputing every hash after it leaves an intact
  chain: a checkpoint signed before the rewrite no longer matches. The chain
  cannot say *which* event was rewritten, only that it lies between the last
  checkpoint that still holds and the first one that does not.
"""

from __future__ import annotations

import shutil
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from ledger.api.cli.app import app
from ledger.application.ledger import Ledger
from ledger.bootstrap import open_database, open_ledger
from ledger.domain.teams import Team
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.chain import CHAINED_FIELDS, chain_hash
from ledger.store.event_store import (
    Database,
    event_subjects_table,
    events_table,
    head_position,
    utc_text,
)
from ledger.store.integrity import (
    ID_NUMBER_SECRET_FILE,
    KEY_DIRECTORY_SETTING,
    NO_PUBLIC_KEY,
    SIGNING_KEY_FILE,
    Checkpoint,
    KeyMaterialError,
    checkpoints_table,
    export_events,
    key_id,
    last_verification,
    list_checkpoints,
    load_or_create_signing_key,
    load_public_key,
    public_key_pem,
    read_checkpoint,
    sign_checkpoint,
    verify_chain,
    verify_exported_events,
    verify_ledger,
)
from tests.factories import T0, record_all, submission
from tests.integration.projection_helpers import (
    chain_hash_at,
    chained_values,
    served_city,
)

HEAD = 22  # served_city records one event per command
FORGED_TEAM = "T-FORGED"
EARLY = 13  # its first thirteen: the venues, people, activity and V1's approval


# --- the CLI, with the ledger's key material in a temporary directory ----------


@pytest.fixture
def key_directory(tmp_path: Path) -> Path:
    return tmp_path / "kept-keys"


def ledger_cli(
    database: Database | None, key_directory: Path | None, *arguments: str
) -> Result:
    """Run `ledger` (on ``database``, if any) with the key material in
    ``key_directory`` (unset: where the ledger keeps it by default), in an
    English locale (tests/e2e/test_cli_languages.py tests the languages)."""
    database_option = ["--db", database.url] if database is not None else []
    directory = None if key_directory is None else str(key_directory)
    return CliRunner().invoke(
        app,
        [*database_option, *arguments],
        env={KEY_DIRECTORY_SETTING: directory, "LANG": "en_US.UTF-8"},
    )


def key_file(key_directory: Path) -> Path:
    return key_directory / SIGNING_KEY_FILE


def exited_cleanly_with(outcome: Result, code: int) -> bool:
    """The CLI chose its exit code (it did not crash)."""
    crashed = outcome.exception is not None and not isinstance(
        outcome.exception, SystemExit
    )
    return outcome.exit_code == code and not crashed


# --- a served city, projected -----------------------------------------------------


def record_city(ledger: Ledger, upto: int = HEAD, start: int = 0) -> None:
    record_all(ledger, served_city()[start:upto])


def project(database: Database) -> None:
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()


@pytest.fixture
def city(ledger: Ledger, database: Database) -> Database:
    """The served city, recorded and projected (so `ledger verify` has its
    projections to compare)."""
    record_city(ledger)
    project(database)
    return database


@pytest.fixture
def key(key_directory: Path) -> Ed25519PrivateKey:
    return load_or_create_signing_key(key_directory / SIGNING_KEY_FILE)


# --- tampering, made directly in the database ---------------------------------------


def stored_row(database: Database, position: int) -> dict[str, Any]:
    with database.reading() as conn:
        row = conn.execute(
            sa.select(events_table).where(events_table.c.position == position)
        ).one()
        return dict(row._mapping)


def update_row(database: Database, position: int, **values: Any) -> None:
    with database.writing() as conn:
        conn.execute(
            events_table.update()
            .where(events_table.c.position == position)
            .values(**values)
        )


def edit_payload(database: Database, position: int, **changes: Any) -> None:
    payload = orjson.loads(stored_row(database, position)["payload"])
    update_row(
        database, position, payload=orjson.dumps({**payload, **changes}).decode()
    )


def delete_row(database: Database, position: int) -> None:
    with database.writing() as conn:
        conn.execute(events_table.delete().where(events_table.c.position == position))


def swap_positions(database: Database, first: int, second: int) -> None:
    with database.writing() as conn:
        t = events_table.c
        for old, new in ((first, 0), (second, first), (0, second)):
            conn.execute(
                events_table.update().where(t.position == old).values(position=new)
            )


def swap_payloads(database: Database, first: int, second: int) -> None:
    one, other = stored_row(database, first), stored_row(database, second)
    update_row(database, first, payload=other["payload"])
    update_row(database, second, payload=one["payload"])


def forged_row(position: int, previous_hash: str) -> dict[str, Any]:
    """A team registration nobody made, complete (it decodes as a real one
    would), chained onto ``previous_hash``."""
    payload = {
        "timestamp": {"_type_": "datetime_iso", "_data_": T0.isoformat()},
        "originator_topic": "Team",
        "team_id": FORGED_TEAM,
        "name": "ghost team",
        "level": "corps",
        "parent_id": None,
    }
    row: dict[str, Any] = {
        "position": position,
        "stream_id": str(Team.create_id(FORGED_TEAM)),
        "stream_version": 1,
        "topic": "Team.Registered",
        "payload": orjson.dumps(payload).decode(),
        "actor_id": "intruder",
        "actor_role": "admin",
        "occurred_at": T0.isoformat(),
        "occurred_utc": utc_text(T0),
        "recorded_at": utc_text(T0),
        "source": "cli",
        "idempotency_key": None,
        "correlation_id": uuid.uuid4().hex,
    }
    row["chain_hash"] = chain_hash(previous_hash, chained_values(row))
    return row


def insert_before(database: Database, position: int) -> None:
    """Move every event from ``position`` on one place up and store a forged
    event, chained onto the one before it, in the gap."""
    previous_hash = chain_hash_at(database, position - 1)
    t = events_table.c
    with database.writing() as conn:
        # in two steps, so no position is ever held twice
        conn.execute(
            events_table.update()
            .where(t.position >= position)
            .values(position=-t.position)
        )
        conn.execute(
            events_table.update().where(t.position < 0).values(position=1 - t.position)
        )
        conn.execute(events_table.insert(), [forged_row(position, previous_hash)])


def append_forged(
    database: Database, *, chained: bool, with_its_subject: bool = False
) -> int:
    """Store a forged event after the head. A careful forger chains it
    (``chained``; otherwise the head's hash is copied) and writes the subject
    row its append would have written (``with_its_subject``)."""
    with database.reading() as conn:
        position = head_position(conn) + 1
    previous = chain_hash_at(database, position - 1)
    row = forged_row(position, previous)
    if not chained:
        row["chain_hash"] = previous
    with database.writing() as conn:
        conn.execute(events_table.insert(), [row])
        if with_its_subject:
            conn.execute(
                event_subjects_table.insert(),
                [{"kind": "team", "subject_id": FORGED_TEAM, "position": position}],
            )
    return position


def append_unchained(database: Database) -> None:
    append_forged(database, chained=False)


def rechain_from(database: Database, position: int) -> None:
    """Recompute every chain hash from ``position`` on, as a careful forger would."""
    previous = chain_hash_at(database, position - 1)
    with database.writing() as conn:
        rows = conn.execute(
            sa.select(events_table)
            .where(events_table.c.position >= position)
            .order_by(events_table.c.position)
        ).all()
        for row in rows:
            previous = chain_hash(previous, chained_values(row._mapping))
            conn.execute(
                events_table.update()
                .where(events_table.c.position == row.position)
                .values(chain_hash=previous)
            )


@dataclass(frozen=True)
class Tampering:
    tamper: Callable[[Database], None]
    first_bad_position: int
    problem: str


ALTERED = "does not match its chain hash"

TAMPERINGS = {
    # V1's approved minutes (position 13) inflated from 120 to 480
    "payload edited": Tampering(
        lambda db: edit_payload(db, 13, minutes=480), 13, ALTERED
    ),
    # who approved V1's session rewritten
    "actor edited": Tampering(
        lambda db: update_row(db, 13, actor_id="supervisor-9"), 13, ALTERED
    ),
    # order O1's posting (16) made to look recorded months earlier
    "recorded_at edited": Tampering(
        lambda db: update_row(db, 16, recorded_at="2024-01-01T00:00:00.000000Z"),
        16,
        ALTERED,
    ),
    "middle row deleted": Tampering(
        lambda db: delete_row(db, 9), 9, "position 9 is missing"
    ),
    # a forged event chained onto 10 takes position 11; the check-in that
    # was at 11 now sits at 12, where its hash no longer fits
    "row inserted in the middle": Tampering(
        lambda db: insert_before(db, 11), 12, ALTERED
    ),
    "row appended with a wrong hash": Tampering(append_unchained, HEAD + 1, ALTERED),
    # the two sign-ups (9, 10) trade places
    "positions swapped": Tampering(lambda db: swap_positions(db, 9, 10), 9, ALTERED),
    # the two check-outs (12: 120 minutes, 15: 150 minutes) trade payloads
    "payloads swapped": Tampering(lambda db: swap_payloads(db, 12, 15), 12, ALTERED),
}


# --- tampering is found at its first bad position ------------------------------------


def noted_verification(database: Database) -> tuple[bool, int] | None:
    """The last verification's outcome and the head it checked, as noted."""
    with database.reading() as conn:
        noted = last_verification(conn)
    return (noted.ok, noted.position) if noted else None


def test_an_untouched_ledger_verifies(
    ledger: Ledger, city: Database, key: Ed25519PrivateKey, key_directory: Path
) -> None:
    chain = verify_chain(city)
    assert chain.ok and chain.first_bad_position is None
    assert (chain.checked, chain.head_position) == (HEAD, HEAD)
    assert chain.head_hash == chain_hash_at(city, HEAD)
    signed = sign_checkpoint(city, key)
    audit = verify_ledger(city, key.public_key(), ledger)
    assert audit.ok and [c.checkpoint for c in audit.checkpoints] == [signed]

    outcome = ledger_cli(city, key_directory, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert f"chain: ok, {HEAD} events, head {chain.head_hash}" in outcome.stdout
    assert f"checkpoint at position {HEAD}: ok" in outcome.stdout
    # And the verification is noted, for a server to report (/metrics)
    assert noted_verification(city) == (True, HEAD)


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampering_is_found_at_the_first_bad_position(
    ledger: Ledger,
    city: Database,
    key: Ed25519PrivateKey,
    key_directory: Path,
    tampering: Tampering,
) -> None:
    # Given a checkpoint signed at the head
    sign_checkpoint(city, key)

    # When a row is tampered with directly in the database
    tampering.tamper(city)

    # Then the chain stops at the first bad position, the events before it intact
    bad = tampering.first_bad_position
    chain = verify_chain(city)
    assert not chain.ok
    assert chain.first_bad_position == bad
    assert tampering.problem in (chain.problem or "")
    assert f"position {bad}" in (chain.problem or "")
    assert (chain.checked, chain.head_position) == (bad - 1, bad - 1)

    # And the whole audit fails with the same diagnosis
    audit = verify_ledger(city, key.public_key(), ledger)
    assert not audit.ok
    assert audit.chain == chain

    # And `ledger verify` exits non-zero, naming that position
    outcome = ledger_cli(city, key_directory, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"chain: BROKEN at position {bad}: {chain.problem}" in outcome.stdout
    assert noted_verification(city) == (False, bad - 1)


def test_deleting_the_last_event_is_caught_only_by_a_checkpoint_signed_before(
    ledger: Ledger, city: Database, key: Ed25519PrivateKey, key_directory: Path
) -> None:
    # Given a checkpoint signed at the head
    sign_checkpoint(city, key)

    # When the last event is deleted
    delete_row(city, HEAD)

    # Then the chain alone is intact, one event shorter
    chain = verify_chain(city)
    assert chain.ok and chain.head_position == HEAD - 1

    # But the checkpoint signs a position the chain no longer reaches
    audit = verify_ledger(city, key.public_key(), ledger)
    assert not audit.ok
    [checked] = audit.checkpoints
    assert checked.problem == (
        f"it signs position {HEAD} but the chain ends at {HEAD - 1}: "
        "events were removed"
    )

    # And `ledger verify` exits non-zero, naming the checkpoint and the new end
    outcome = ledger_cli(city, key_directory, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {checked.problem}" in outcome.stdout


def test_a_forged_event_appended_with_a_correct_hash_passes_for_a_real_append(
    ledger: Ledger, city: Database, key: Ed25519PrivateKey, key_directory: Path
) -> None:
    # Given a checkpoint signed at the head
    signed = sign_checkpoint(city, key)

    # When a forger appends an event after it, chains it correctly and writes
    # what its append would have written beside it
    forged = append_forged(city, chained=True, with_its_subject=True)

    # Then no check can tell it from a real append: the chain grew by one, and
    # the checkpoint only vouches for the events up to the position it signed
    chain = verify_chain(city)
    assert chain.ok and chain.head_position == forged == signed.position + 1
    assert verify_ledger(city, key.public_key(), ledger).ok
    outcome = ledger_cli(city, key_directory, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output

    # And the next checkpoint would sign it (the defence is who may write, not
    # the chain)
    assert sign_checkpoint(city, key).position == forged


def test_a_rewrite_with_recomputed_hashes_chains_but_fails_the_checkpoint_after_it(
    ledger: Ledger, database: Database, key: Ed25519PrivateKey, key_directory: Path
) -> None:
    # Given checkpoints signed at position 13 and at the head
    record_city(ledger, upto=EARLY)
    sign_checkpoint(database, key)
    record_city(ledger, start=EARLY)
    project(database)
    sign_checkpoint(database, key)

    # When V2's check-out (15) is rewritten to 300 minutes and every hash
    # from there on recomputed
    edit_payload(database, 15, minutes=300)
    rechain_from(database, 15)

    # Then the chain is intact
    chain = verify_chain(database)
    assert chain.ok and chain.head_position == HEAD

    # But the checkpoint at the head no longer matches, while the one at 13
    # still does: the rewrite lies after 13 and at or before the head
    audit = verify_ledger(database, key.public_key(), ledger)
    assert not audit.ok
    early, late = audit.checkpoints
    assert early.checkpoint.position == EARLY and early.ok
    assert late.checkpoint.position == HEAD
    assert late.problem == (
        f"the chain hash at position {HEAD} is no longer the one signed: "
        "history before it was rewritten"
    )

    # And `ledger verify` exits non-zero, naming the checkpoint that fails
    outcome = ledger_cli(database, key_directory, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "chain: ok" in outcome.stdout
    assert f"checkpoint at position {EARLY}: ok" in outcome.stdout
    assert f"checkpoint at position {HEAD}: FAILED: {late.problem}" in outcome.stdout


def test_a_checkpoint_is_not_signed_over_a_broken_chain(
    city: Database, key_directory: Path
) -> None:
    edit_payload(city, 13, minutes=480)
    with pytest.raises(ValueError, match="the chain is broken, nothing signed"):
        sign_checkpoint(city, load_or_create_signing_key(key_file(key_directory)))
    outcome = ledger_cli(city, key_directory, "checkpoint")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "nothing signed" in outcome.output
    assert list_checkpoints(city) == []


def test_checkpoints_fail_without_the_right_public_key(
    ledger: Ledger,
    city: Database,
    key: Ed25519PrivateKey,
    tmp_path: Path,
    key_directory: Path,
) -> None:
    signed = sign_checkpoint(city, key)
    [unchecked] = verify_ledger(city, None, ledger).checkpoints
    assert unchecked.problem == NO_PUBLIC_KEY

    stranger = Ed25519PrivateKey.generate()
    named = (
        f"it names key id {signed.key_id}, not the public key's "
        f"{key_id(stranger.public_key())}"
    )
    [other_key] = verify_ledger(city, stranger.public_key(), ledger).checkpoints
    assert other_key.problem == named
    stranger_pem = tmp_path / "stranger.pem"
    stranger_pem.write_bytes(public_key_pem(stranger))
    outcome = ledger_cli(
        city, key_directory, "verify", "--public-key", str(stranger_pem)
    )
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {named}" in outcome.stdout

    # A signature by another key, under the ledger's key id, does not verify
    with city.writing() as conn:
        conn.execute(
            checkpoints_table.update().values(
                signature=stranger.sign(signed.message()).hex()
            )
        )
    [forged] = verify_ledger(city, key.public_key(), ledger).checkpoints
    assert forged.problem == "its signature does not verify"


# --- checkpoints and verification from outside --------------------------------------


def sign_with_cli(
    database: Database, key_directory: Path, public_key_out: Path
) -> Path:
    """`ledger checkpoint --public-key-out`; returns the checkpoint's JSON file."""
    outcome = ledger_cli(
        database, key_directory, "checkpoint", "--public-key-out", str(public_key_out)
    )
    assert exited_cleanly_with(outcome, 0), outcome.output
    checkpoint_file = public_key_out.with_name("checkpoint.json")
    checkpoint_file.write_text(outcome.stdout)
    return checkpoint_file


def export_with_cli(database: Database, key_directory: Path, out: Path) -> list[bytes]:
    outcome = ledger_cli(database, key_directory, "export-events", str(out))
    assert exited_cleanly_with(outcome, 0), outcome.output
    lines = out.read_bytes().splitlines(keepends=True)
    assert f"exported {len(lines)} events to {out}" in outcome.stdout
    return lines


def verify_from_outside(
    events: Path, checkpoint_file: Path, public_key: Path
) -> Result:
    """`ledger verify-export`, run with no database and no private key."""
    return ledger_cli(
        None,
        events.with_name("no-such-private-key.pem"),
        "verify-export",
        str(events),
        "--checkpoint",
        str(checkpoint_file),
        "--public-key",
        str(public_key),
    )


def test_ledger_checkpoint_signs_the_head_and_publishes_the_public_key(
    city: Database, key_directory: Path, tmp_path: Path
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, key_directory, public_key_file)

    # The checkpoint signs the head's position and chain hash
    signed = Checkpoint(**orjson.loads(checkpoint_file.read_bytes()))
    assert (signed.position, signed.chain_hash) == (HEAD, chain_hash_at(city, HEAD))
    assert list_checkpoints(city) == [signed]

    # With the key created on first use, readable by its owner only
    assert stat.S_IMODE(key_file(key_directory).stat().st_mode) == 0o600
    assert stat.S_IMODE(key_directory.stat().st_mode) == 0o700

    # And the published public key, also printed by `ledger public-key`,
    # names and verifies it
    printed = ledger_cli(city, key_directory, "public-key")
    assert exited_cleanly_with(printed, 0), printed.output
    assert printed.stdout.strip() == public_key_file.read_text().strip()
    public_key = load_public_key(public_key_file.read_bytes())
    assert signed.key_id == key_id(public_key)
    public_key.verify(bytes.fromhex(signed.signature), signed.message())


def test_an_outsider_with_only_the_public_key_and_the_export_verifies_a_checkpoint(
    ledger: Ledger, city: Database, key_directory: Path, tmp_path: Path
) -> None:
    # Given a checkpoint, the public key and an export of the events
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, key_directory, public_key_file)
    events_file = tmp_path / "events.jsonl"
    lines = export_with_cli(city, key_directory, events_file)

    # The export holds every event with its chained fields and chain hash
    documents = [orjson.loads(line) for line in lines]
    assert [d["position"] for d in documents] == list(range(1, HEAD + 1))
    assert set(documents[0]) == {*CHAINED_FIELDS, "chain_hash"}
    assert documents[-1]["chain_hash"] == chain_hash_at(city, HEAD)

    # When the outsider verifies it with no database and no private key
    key_file(key_directory).unlink()
    outcome = verify_from_outside(events_file, checkpoint_file, public_key_file)

    # Then it verifies
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert outcome.stdout.strip() == f"checkpoint at position {HEAD}: ok"

    # And a later export, after more events, still vouches for that checkpoint
    record_all(
        ledger,
        [submission("register_team", team_id="T2", name="team 2", level="corps")],
    )
    later_file = tmp_path / "later.jsonl"
    assert len(export_with_cli(city, key_directory, later_file)) == HEAD + 1
    later = verify_from_outside(later_file, checkpoint_file, public_key_file)
    assert exited_cleanly_with(later, 0), later.output


Lines = list[dict[str, Any]]


def edit_line(documents: Lines) -> Lines:
    documents[12]["payload"] = documents[12]["payload"].replace(
        '"minutes":120', '"minutes":480'
    )
    assert '"minutes":480' in documents[12]["payload"]
    return documents


def edit_and_rechain(documents: Lines) -> Lines:
    edit_line(documents)
    previous = documents[11]["chain_hash"]
    for document in documents[12:]:
        previous = chain_hash(previous, [document[f] for f in CHAINED_FIELDS])
        document["chain_hash"] = previous
    return documents


EXPORT_TAMPERINGS: dict[str, tuple[Callable[[Lines], Lines], str]] = {
    "a line edited": (
        edit_line,
        "the chain breaks at position 13, at or before the position 22 it signs: "
        "the stored event at position 13 does not match",
    ),
    "a line edited and the rest rechained": (
        edit_and_rechain,
        f"the chain hash at position {HEAD} is no longer the one signed",
    ),
    "the last line dropped": (
        lambda documents: documents[:-1],
        f"it signs position {HEAD} but the chain ends at {HEAD - 1}",
    ),
    "a middle line dropped": (
        lambda documents: documents[:8] + documents[9:],
        "the chain breaks at position 9, at or before the position 22 it signs: "
        "position 9 is missing",
    ),
    "two lines swapped": (
        lambda documents: [*documents[:8], documents[9], documents[8], *documents[10:]],
        "the chain breaks at position 9, at or before the position 22 it signs: "
        "position 9 is missing (the next stored is 10)",
    ),
}


@pytest.mark.parametrize(
    ("tamper", "problem"), EXPORT_TAMPERINGS.values(), ids=EXPORT_TAMPERINGS.keys()
)
def test_a_tampered_export_fails_outside_verification(
    city: Database,
    key_directory: Path,
    tmp_path: Path,
    tamper: Callable[[Lines], Lines],
    problem: str,
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, key_directory, public_key_file)
    events_file = tmp_path / "events.jsonl"
    lines = export_with_cli(city, key_directory, events_file)

    tampered = tamper([orjson.loads(line) for line in lines])
    events_file.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in tampered))

    outcome = verify_from_outside(events_file, checkpoint_file, public_key_file)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {problem}" in outcome.stdout


def test_a_wrong_public_key_or_an_altered_checkpoint_fails_outside_verification(
    city: Database, key_directory: Path, tmp_path: Path
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, key_directory, public_key_file)
    events_file = tmp_path / "events.jsonl"
    export_with_cli(city, key_directory, events_file)
    signature_fails = f"checkpoint at position {HEAD}: FAILED: its signature does not"

    stranger_file = tmp_path / "stranger.pem"
    stranger_file.write_bytes(public_key_pem(Ed25519PrivateKey.generate()))
    wrong_key = verify_from_outside(events_file, checkpoint_file, stranger_file)
    assert exited_cleanly_with(wrong_key, 1), wrong_key.output
    assert f"checkpoint at position {HEAD}: FAILED: it names key id" in wrong_key.stdout

    signed = orjson.loads(checkpoint_file.read_bytes())
    for altered in (
        {"chain_hash": chain_hash_at(city, HEAD - 1)},
        {"signed_at": "2099-01-01T00:00:00.000000Z"},
    ):
        checkpoint_file.write_bytes(orjson.dumps({**signed, **altered}))
        outcome = verify_from_outside(events_file, checkpoint_file, public_key_file)
        assert exited_cleanly_with(outcome, 1), (altered, outcome.output)
        assert signature_fails in outcome.stdout


def test_stored_checkpoints_can_be_deleted_but_one_kept_outside_still_catches_a_rewrite(
    ledger: Ledger,
    city: Database,
    key: Ed25519PrivateKey,
    key_directory: Path,
    tmp_path: Path,
) -> None:
    # Given a checkpoint the auditor keeps outside the database
    signed = sign_checkpoint(city, key)
    public_key = public_key_pem(key)

    # When a forger rewrites history, recomputes the hashes and deletes the
    # stored checkpoints
    edit_payload(city, 15, minutes=300)
    rechain_from(city, 15)
    with city.writing() as conn:
        conn.execute(checkpoints_table.delete())

    # Then the database alone no longer shows it
    assert verify_ledger(city, key.public_key(), ledger).ok

    # But the kept checkpoint, checked against an export, does
    checked = verify_exported_events(export_events(city), signed, public_key)
    assert checked.problem == (
        f"the chain hash at position {HEAD} is no longer the one signed: "
        "history before it was rewritten"
    )


def test_a_checkpoint_after_an_edited_event_does_not_claim_events_were_removed(
    ledger: Ledger, city: Database, key: Ed25519PrivateKey
) -> None:
    sign_checkpoint(city, key)
    edit_payload(city, 13, minutes=480)
    audit = verify_ledger(city, key.public_key(), ledger)
    assert audit.chain.first_bad_position == 13
    [checked] = audit.checkpoints
    assert not checked.ok
    assert "removed" not in (checked.problem or "")


# --- a checkpoint kept outside the ledger: the verifier holds the head -------------


def sign_out(database: Database, key_directory: Path, tmp_path: Path) -> Path:
    """`ledger checkpoint --out FILE --public-key-out PEM`; returns FILE, with
    the public key beside it as ``ledger-public-key.pem``."""
    checkpoint_file = tmp_path / "kept" / "checkpoint.json"
    checkpoint_file.parent.mkdir()
    public_key_file = checkpoint_file.with_name("ledger-public-key.pem")
    outcome = ledger_cli(
        database,
        key_directory,
        "checkpoint",
        "--out",
        str(checkpoint_file),
        "--public-key-out",
        str(public_key_file),
    )
    assert exited_cleanly_with(outcome, 0), outcome.output
    return checkpoint_file


def verify_against(
    database: Database, key_directory: Path, checkpoint_file: Path
) -> Result:
    """`ledger verify --checkpoint FILE --public-key PEM`."""
    public_key_file = checkpoint_file.with_name("ledger-public-key.pem")
    return ledger_cli(
        database,
        key_directory,
        "verify",
        "--checkpoint",
        str(checkpoint_file),
        "--public-key",
        str(public_key_file),
    )


def test_a_checkpoint_written_out_is_the_one_signed_and_the_ledger_verifies_against_it(
    city: Database, key_directory: Path, tmp_path: Path
) -> None:
    checkpoint_file = sign_out(city, key_directory, tmp_path)

    # The file holds the signed checkpoint, exactly as stored
    document = orjson.loads(checkpoint_file.read_bytes())
    assert set(document) == {
        "position",
        "chain_hash",
        "signed_at",
        "key_id",
        "signature",
    }
    [stored] = list_checkpoints(city)
    assert read_checkpoint(checkpoint_file) == stored
    assert (stored.position, stored.chain_hash) == (HEAD, chain_hash_at(city, HEAD))

    # And the ledger verifies against it
    outcome = verify_against(city, key_directory, checkpoint_file)
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert f"checkpoint kept outside, at position {HEAD}: ok" in outcome.stdout


def rewrite_history(database: Database) -> None:
    """V2's check-out (15) rewritten to 300 minutes, every hash after it
    recomputed."""
    edit_payload(database, 15, minutes=300)
    rechain_from(database, 15)


def cut_short(database: Database) -> None:
    """The last two events deleted, with the subject rows written beside them."""
    with database.writing() as conn:
        for table in (events_table, event_subjects_table):
            conn.execute(table.delete().where(table.c.position > HEAD - 2))


REWRITES = {
    "history rewritten and rechained": (
        rewrite_history,
        f"the chain hash at position {HEAD} is no longer the one signed: "
        "history before it was rewritten",
    ),
    "the last events cut off": (
        cut_short,
        f"it signs position {HEAD} but the chain ends at {HEAD - 2}: "
        "events were removed",
    ),
}


@pytest.mark.parametrize(("tamper", "problem"), REWRITES.values(), ids=REWRITES.keys())
def test_a_ledger_rewritten_or_cut_short_fails_against_the_checkpoint_kept_outside(
    ledger: Ledger,
    city: Database,
    key: Ed25519PrivateKey,
    key_directory: Path,
    tmp_path: Path,
    tamper: Callable[[Database], None],
    problem: str,
) -> None:
    # Given a checkpoint the auditor keeps outside the database
    checkpoint_file = sign_out(city, key_directory, tmp_path)

    # When a forger changes the ledger and deletes the stored checkpoints
    tamper(city)
    with city.writing() as conn:
        conn.execute(checkpoints_table.delete())

    # Then the database alone no longer shows it
    assert verify_ledger(city, key.public_key(), ledger).ok

    # But the ledger fails against the checkpoint kept outside
    kept = read_checkpoint(checkpoint_file)
    audit = verify_ledger(city, key.public_key(), ledger, kept_outside=[kept])
    assert not audit.ok
    assert [c.problem for c in audit.kept_outside] == [problem]
    outcome = verify_against(city, key_directory, checkpoint_file)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert (
        f"checkpoint kept outside, at position {HEAD}: FAILED: {problem}"
        in outcome.stdout
    )


def test_verifying_against_a_checkpoint_needs_its_public_key_and_a_checkpoint_file(
    city: Database, key_directory: Path, tmp_path: Path
) -> None:
    checkpoint_file = sign_out(city, key_directory, tmp_path)
    keyless = ledger_cli(
        city, key_directory, "verify", "--checkpoint", str(checkpoint_file)
    )
    assert exited_cleanly_with(keyless, 2), keyless.output
    assert "--checkpoint needs --public-key" in keyless.output

    checkpoint_file.write_bytes(b'{"position": 22}')
    malformed = verify_against(city, key_directory, checkpoint_file)
    assert exited_cleanly_with(malformed, 2), malformed.output
    assert f"{checkpoint_file} is not a checkpoint" in malformed.output


# --- where the signing key lives --------------------------------------------------


def test_a_sqlite_ledger_keeps_its_key_beside_its_file_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ledger in a SQLite file, and no key directory configured
    (tmp_path / "city").mkdir()
    database = open_database(f"sqlite:///{tmp_path / 'city' / 'ledger.db'}")
    ledger = open_ledger(database, tmp_path / "city" / "ledger.keys")
    record_city(ledger, upto=EARLY)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()

    # When it is checkpointed from one working directory, and after more
    # events from another
    monkeypatch.chdir(first)
    assert exited_cleanly_with(ledger_cli(database, None, "checkpoint"), 0)
    record_city(ledger, start=EARLY)
    monkeypatch.chdir(second)
    assert exited_cleanly_with(ledger_cli(database, None, "checkpoint"), 0)

    # Then one key signed both, kept beside the database file for its owner
    # only, and nothing was written where the commands ran
    directory = tmp_path / "city" / "ledger.keys"
    public_key = load_or_create_signing_key(key_file(directory)).public_key()
    assert {c.key_id for c in list_checkpoints(database)} == {key_id(public_key)}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file(directory).stat().st_mode) == 0o600
    assert list(first.iterdir()) == list(second.iterdir()) == []

    # And both checkpoints verify, from anywhere
    project(database)
    monkeypatch.chdir(first)
    outcome = ledger_cli(database, None, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert f"checkpoint at position {EARLY}: ok" in outcome.stdout
    assert f"checkpoint at position {HEAD}: ok" in outcome.stdout
    database.dispose()


def test_a_server_ledger_without_the_setting_keeps_its_keys_in_the_users_data(
    city: Database,
    key_directory: Path,
    user_data_directory: Path,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    if city.is_sqlite:
        pytest.skip("a SQLite file keeps its keys beside it")
    # Given the ledger's secret where its keys go without the setting: the
    # user's data directory, under the database's name
    url = sa.engine.make_url(city.url)
    kept = user_data_directory / "ledger" / f"{url.host}-{url.port}-{url.database}.keys"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copy(key_directory / ID_NUMBER_SECRET_FILE, kept)
    # When it signs a checkpoint without the setting, the key is made there
    monkeypatch.chdir(tmp_path)
    assert exited_cleanly_with(ledger_cli(city, None, "checkpoint"), 0)
    assert (kept / SIGNING_KEY_FILE).is_file()
    # And verify finds it from any working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    outcome = ledger_cli(city, None, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output


def test_a_server_ledger_verifies_its_checkpoints_only_with_its_signing_key(
    ledger: Ledger, city: Database, key_directory: Path, tmp_path: Path
) -> None:
    if city.is_sqlite:
        pytest.skip("a SQLite file keeps its keys beside it")
    # While there is no checkpoint, verify needs no signing key (only the
    # secret its ID-number claims are derived with)
    secret_only = tmp_path / "secret-only"
    secret_only.mkdir()
    shutil.copy(key_directory / ID_NUMBER_SECRET_FILE, secret_only)
    assert exited_cleanly_with(ledger_cli(city, secret_only, "verify"), 0)

    # With it, the ledger signs; without its key again, verify names the
    # setting
    assert exited_cleanly_with(ledger_cli(city, key_directory, "checkpoint"), 0)
    outcome = ledger_cli(city, secret_only, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {NO_PUBLIC_KEY}" in outcome.stdout


def test_signing_with_a_key_other_than_the_earlier_checkpoints_is_refused(
    city: Database, key: Ed25519PrivateKey, key_directory: Path, tmp_path: Path
) -> None:
    # Given a checkpoint signed with the ledger's key
    signed = sign_checkpoint(city, key)
    elsewhere = tmp_path / "elsewhere"

    # When `ledger checkpoint` looks for its key in another directory, it
    # makes no new key there and signs nothing
    outcome = ledger_cli(city, elsewhere, "checkpoint")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert outcome.output.strip() == (
        f"no signing key in {elsewhere}, but the ledger signs with key id "
        f"{signed.key_id}: put that key there as {SIGNING_KEY_FILE}, "
        f"or set {KEY_DIRECTORY_SETTING} to where it is"
    )
    assert not key_file(elsewhere).exists()

    # And with another key there, it refuses to sign with it
    other = load_or_create_signing_key(key_file(elsewhere))
    refusal = (
        f"refusing to sign with key id {key_id(other.public_key())}: the ledger "
        f"signs with key id {signed.key_id}; put that key in "
        f"the ledger's key directory ({KEY_DIRECTORY_SETTING})"
    )
    outcome = ledger_cli(city, elsewhere, "checkpoint")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert outcome.output.strip() == refusal
    with pytest.raises(KeyMaterialError, match="refusing to sign"):
        sign_checkpoint(city, other)
    assert list_checkpoints(city) == [signed]

    # While the ledger's own key still signs
    assert exited_cleanly_with(ledger_cli(city, key_directory, "checkpoint"), 0)


def test_a_relative_key_directory_is_refused(
    city: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = ledger_cli(city, Path("keys"), "checkpoint")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert outcome.output.strip() == (
        f"{KEY_DIRECTORY_SETTING} must be an absolute path, not 'keys': a relative "
        "one changes with the working directory"
    )
    assert list_checkpoints(city) == []
    assert not (tmp_path / "keys").exists()
