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
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.chain import CHAINED_FIELDS, chain_hash
from ledger.store.event_store import Database, events_table, utc_text
from ledger.store.integrity import (
    Checkpoint,
    checkpoints_table,
    export_events,
    key_id,
    list_checkpoints,
    load_or_create_signing_key,
    load_public_key,
    public_key_pem,
    sign_checkpoint,
    verify_chain,
    verify_exported_events,
    verify_ledger,
)
from tests.factories import T0, record_all, submission
from tests.integration.projection_helpers import (
    append_raw_event,
    chain_hash_at,
    chained_values,
    served_city,
)

HEAD = 22  # served_city records one event per command
EARLY = 13  # its first thirteen: the venues, people, activity and V1's approval


# --- the CLI, with the ledger's signing key in a temporary file ----------------


@pytest.fixture
def signing_key_file(tmp_path: Path) -> Path:
    return tmp_path / "ledger-signing-key.pem"


def ledger_cli(database: Database | None, key_file: Path, *arguments: str) -> Result:
    """Run `ledger` (on ``database``, if any) with ``key_file`` as its signing key."""
    database_option = ["--db", database.url] if database is not None else []
    return CliRunner().invoke(
        app,
        [*database_option, *arguments],
        env={"LEDGER_SIGNING_KEY_FILE": str(key_file)},
    )


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
def key(signing_key_file: Path) -> Ed25519PrivateKey:
    return load_or_create_signing_key(signing_key_file)


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
    """A team registration nobody made, chained onto ``previous_hash``."""
    row: dict[str, Any] = {
        "position": position,
        "stream_id": str(uuid.uuid4()),
        "stream_version": 1,
        "topic": "Team.Registered",
        "payload": orjson.dumps({"team_id": "T-FORGED", "name": "ghost team"}).decode(),
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


def append_forged(database: Database, *, chained: bool) -> int:
    """Store a forged event after the head; unless ``chained``, the forger
    copied the head's hash instead of computing one."""
    position = append_raw_event(
        database, "Team.Registered", {"team_id": "T-FORGED"}, at=T0
    )
    if not chained:
        update_row(database, position, chain_hash=chain_hash_at(database, position - 1))
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


def test_an_untouched_ledger_verifies(
    city: Database, key: Ed25519PrivateKey, signing_key_file: Path
) -> None:
    chain = verify_chain(city)
    assert chain.ok and chain.first_bad_position is None
    assert (chain.checked, chain.head_position) == (HEAD, HEAD)
    assert chain.head_hash == chain_hash_at(city, HEAD)
    signed = sign_checkpoint(city, key)
    audit = verify_ledger(city, key.public_key())
    assert audit.ok and [c.checkpoint for c in audit.checkpoints] == [signed]

    outcome = ledger_cli(city, signing_key_file, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert f"chain: ok, {HEAD} events, head {chain.head_hash}" in outcome.stdout
    assert f"checkpoint at position {HEAD}: ok" in outcome.stdout


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampering_is_found_at_the_first_bad_position(
    city: Database,
    key: Ed25519PrivateKey,
    signing_key_file: Path,
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
    audit = verify_ledger(city, key.public_key())
    assert not audit.ok
    assert audit.chain == chain

    # And `ledger verify` exits non-zero, naming that position
    outcome = ledger_cli(city, signing_key_file, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"chain: BROKEN at position {bad}: {chain.problem}" in outcome.stdout


def test_deleting_the_last_event_is_caught_only_by_a_checkpoint_signed_before(
    city: Database, key: Ed25519PrivateKey, signing_key_file: Path
) -> None:
    # Given a checkpoint signed at the head
    sign_checkpoint(city, key)

    # When the last event is deleted
    delete_row(city, HEAD)

    # Then the chain alone is intact, one event shorter
    chain = verify_chain(city)
    assert chain.ok and chain.head_position == HEAD - 1

    # But the checkpoint signs a position the chain no longer reaches
    audit = verify_ledger(city, key.public_key())
    assert not audit.ok
    [checked] = audit.checkpoints
    assert checked.problem == (
        f"it signs position {HEAD} but the chain ends at {HEAD - 1}: "
        "events were removed"
    )

    # And `ledger verify` exits non-zero, naming the checkpoint and the new end
    outcome = ledger_cli(city, signing_key_file, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {checked.problem}" in outcome.stdout


def test_a_forged_event_appended_with_a_correct_hash_passes_for_a_real_append(
    city: Database, key: Ed25519PrivateKey, signing_key_file: Path
) -> None:
    # Given a checkpoint signed at the head
    signed = sign_checkpoint(city, key)

    # When a forger appends an event after it and chains it correctly
    forged = append_forged(city, chained=True)

    # Then no check can tell it from a real append: the chain grew by one, and
    # the checkpoint only vouches for the events up to the position it signed
    chain = verify_chain(city)
    assert chain.ok and chain.head_position == forged == signed.position + 1
    assert verify_ledger(city, key.public_key()).ok
    outcome = ledger_cli(city, signing_key_file, "verify")
    assert exited_cleanly_with(outcome, 0), outcome.output

    # And the next checkpoint would sign it (the defence is who may write, not
    # the chain)
    assert sign_checkpoint(city, key).position == forged


def test_a_rewrite_with_recomputed_hashes_chains_but_fails_the_checkpoint_after_it(
    ledger: Ledger, database: Database, key: Ed25519PrivateKey, signing_key_file: Path
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
    audit = verify_ledger(database, key.public_key())
    assert not audit.ok
    early, late = audit.checkpoints
    assert early.checkpoint.position == EARLY and early.ok
    assert late.checkpoint.position == HEAD
    assert late.problem == (
        f"the chain hash at position {HEAD} is no longer the one signed: "
        "history before it was rewritten"
    )

    # And `ledger verify` exits non-zero, naming the checkpoint that fails
    outcome = ledger_cli(database, signing_key_file, "verify")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "chain: ok" in outcome.stdout
    assert f"checkpoint at position {EARLY}: ok" in outcome.stdout
    assert f"checkpoint at position {HEAD}: FAILED: {late.problem}" in outcome.stdout


def test_a_checkpoint_is_not_signed_over_a_broken_chain(
    city: Database, signing_key_file: Path
) -> None:
    edit_payload(city, 13, minutes=480)
    with pytest.raises(ValueError, match="the chain is broken, nothing signed"):
        sign_checkpoint(city, load_or_create_signing_key(signing_key_file))
    outcome = ledger_cli(city, signing_key_file, "checkpoint")
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "nothing signed" in outcome.output
    assert list_checkpoints(city) == []


def test_checkpoints_fail_without_the_right_public_key(
    city: Database, key: Ed25519PrivateKey, tmp_path: Path, signing_key_file: Path
) -> None:
    sign_checkpoint(city, key)
    [unchecked] = verify_ledger(city, None).checkpoints
    assert unchecked.problem == "no public key to check it with"

    stranger = Ed25519PrivateKey.generate()
    [forged] = verify_ledger(city, stranger.public_key()).checkpoints
    assert forged.problem == "its signature does not verify"
    stranger_pem = tmp_path / "stranger.pem"
    stranger_pem.write_bytes(public_key_pem(stranger))
    outcome = ledger_cli(
        city, signing_key_file, "verify", "--public-key", str(stranger_pem)
    )
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert (
        f"checkpoint at position {HEAD}: FAILED: its signature does not verify"
        in outcome.stdout
    )


# --- checkpoints and verification from outside --------------------------------------


def sign_with_cli(database: Database, key_file: Path, public_key_out: Path) -> Path:
    """`ledger checkpoint --public-key-out`; returns the checkpoint's JSON file."""
    outcome = ledger_cli(
        database, key_file, "checkpoint", "--public-key-out", str(public_key_out)
    )
    assert exited_cleanly_with(outcome, 0), outcome.output
    checkpoint_file = public_key_out.with_name("checkpoint.json")
    checkpoint_file.write_text(outcome.stdout)
    return checkpoint_file


def export_with_cli(database: Database, key_file: Path, out: Path) -> list[bytes]:
    outcome = ledger_cli(database, key_file, "export-events", str(out))
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
    city: Database, signing_key_file: Path, tmp_path: Path
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, signing_key_file, public_key_file)

    # The checkpoint signs the head's position and chain hash
    signed = Checkpoint(**orjson.loads(checkpoint_file.read_bytes()))
    assert (signed.position, signed.chain_hash) == (HEAD, chain_hash_at(city, HEAD))
    assert list_checkpoints(city) == [signed]

    # With the key created on first use, readable by its owner only
    assert stat.S_IMODE(signing_key_file.stat().st_mode) == 0o600

    # And the published public key, also printed by `ledger public-key`,
    # names and verifies it
    printed = ledger_cli(city, signing_key_file, "public-key")
    assert exited_cleanly_with(printed, 0), printed.output
    assert printed.stdout.strip() == public_key_file.read_text().strip()
    public_key = load_public_key(public_key_file.read_bytes())
    assert signed.key_id == key_id(public_key)
    public_key.verify(bytes.fromhex(signed.signature), signed.message())


def test_an_outsider_with_only_the_public_key_and_the_export_verifies_a_checkpoint(
    ledger: Ledger, city: Database, signing_key_file: Path, tmp_path: Path
) -> None:
    # Given a checkpoint, the public key and an export of the events
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, signing_key_file, public_key_file)
    events_file = tmp_path / "events.jsonl"
    lines = export_with_cli(city, signing_key_file, events_file)

    # The export holds every event with its chained fields and chain hash
    documents = [orjson.loads(line) for line in lines]
    assert [d["position"] for d in documents] == list(range(1, HEAD + 1))
    assert set(documents[0]) == {*CHAINED_FIELDS, "chain_hash"}
    assert documents[-1]["chain_hash"] == chain_hash_at(city, HEAD)

    # When the outsider verifies it with no database and no private key
    signing_key_file.unlink()
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
    assert len(export_with_cli(city, signing_key_file, later_file)) == HEAD + 1
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
    signing_key_file: Path,
    tmp_path: Path,
    tamper: Callable[[Lines], Lines],
    problem: str,
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, signing_key_file, public_key_file)
    events_file = tmp_path / "events.jsonl"
    lines = export_with_cli(city, signing_key_file, events_file)

    tampered = tamper([orjson.loads(line) for line in lines])
    events_file.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in tampered))

    outcome = verify_from_outside(events_file, checkpoint_file, public_key_file)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert f"checkpoint at position {HEAD}: FAILED: {problem}" in outcome.stdout


def test_a_wrong_public_key_or_an_altered_checkpoint_fails_outside_verification(
    city: Database, signing_key_file: Path, tmp_path: Path
) -> None:
    public_key_file = tmp_path / "ledger-public-key.pem"
    checkpoint_file = sign_with_cli(city, signing_key_file, public_key_file)
    events_file = tmp_path / "events.jsonl"
    export_with_cli(city, signing_key_file, events_file)
    signature_fails = f"checkpoint at position {HEAD}: FAILED: its signature does not"

    stranger_file = tmp_path / "stranger.pem"
    stranger_file.write_bytes(public_key_pem(Ed25519PrivateKey.generate()))
    wrong_key = verify_from_outside(events_file, checkpoint_file, stranger_file)
    assert exited_cleanly_with(wrong_key, 1), wrong_key.output
    assert signature_fails in wrong_key.stdout

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
    city: Database, key: Ed25519PrivateKey, signing_key_file: Path, tmp_path: Path
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
    assert verify_ledger(city, key.public_key()).ok

    # But the kept checkpoint, checked against an export, does
    checked = verify_exported_events(export_events(city), signed, public_key)
    assert checked.problem == (
        f"the chain hash at position {HEAD} is no longer the one signed: "
        "history before it was rewritten"
    )


def test_a_checkpoint_after_an_edited_event_does_not_claim_events_were_removed(
    city: Database, key: Ed25519PrivateKey
) -> None:
    sign_checkpoint(city, key)
    edit_payload(city, 13, minutes=480)
    audit = verify_ledger(city, key.public_key())
    assert audit.chain.first_bad_position == 13
    [checked] = audit.checkpoints
    assert not checked.ok
    assert "removed" not in (checked.problem or "")
