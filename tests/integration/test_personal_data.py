"""Personal data sealed at rest, on real SQLite and PostgreSQL: a generated
town's names, ID numbers and phone numbers are nowhere in the database's
bytes (the SQLite file and its WAL, a ``pg_dump``), while the ledger reads
them back; the master key is rotated without touching an event; a missing
master key, or one open to others, is refused before anything is written."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from ledger.application.importer import import_file
from ledger.application.ledger import Ledger
from ledger.bootstrap import open_database, open_ledger
from ledger.domain.volunteers import Volunteer
from ledger.services.synthetic_city import write_city
from ledger.store.event_store import (
    Database,
    data_keys_table,
    events_table,
    normalise_database_url,
)
from ledger.store.integrity import (
    SIGNING_KEY_FILE,
    load_or_create_signing_key,
    verify_ledger,
)
from ledger.store.personal_data import (
    MASTER_KEY_FILE,
    SEALED_FIELD,
    KeyFileMasterKey,
    MasterKeyError,
    PersonalDataVault,
    rotate_master_key_file,
    sealing_context,
)
from ledger.store.sealed_copy import SealedCopyError, copy_sealed
from tests.factories import id_number, line, record_all, small_city
from tests.integration.projection_helpers import run_cli
from tests.integration.test_id_number_digest import registration
from tests.integration.test_schema_migrations import RELEASE, restore_release_ledger

TOWN_SCALE = 0.0001


@dataclass(frozen=True)
class Person:
    volunteer_id: str
    name: str
    id_number: str
    phone: str | None


def people_in(lines: Path) -> list[Person]:
    """Every volunteer the interchange file registers, with their data."""
    people = []
    for text in lines.read_bytes().splitlines():
        fields = orjson.loads(text)
        if fields["type"] == "register_volunteer":
            people.append(
                Person(
                    fields["volunteer_id"],
                    fields["name"],
                    fields["id_number"],
                    fields.get("phone"),
                )
            )
    return people


def needles(people: list[Person]) -> dict[bytes, str]:
    """What must not be found in the database's bytes, and what it is: each
    person's name, ID number and phone number as UTF-8, and the unsalted
    SHA-256 of the ID number (a digest anyone can recompute)."""
    found: dict[bytes, str] = {}
    for person in people:
        found[person.name.encode()] = f"name of {person.volunteer_id}"
        found[person.id_number.encode()] = f"ID number of {person.volunteer_id}"
        plain = hashlib.sha256(f"id_number:{person.id_number}".encode()).hexdigest()
        found[plain.encode()] = f"plain digest of {person.volunteer_id}"
        if person.phone:
            found[person.phone.encode()] = f"phone of {person.volunteer_id}"
    return found


def database_bytes(url: str) -> bytes:
    """The raw bytes a copy of the database would hand over: the SQLite file
    and its write-ahead log, or a plain ``pg_dump`` of the PostgreSQL one."""
    target = sa.make_url(normalise_database_url(url))
    if target.get_backend_name() == "sqlite":
        path = Path(target.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("scanning a PostgreSQL database needs pg_dump")
    libpq = target.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        [pg_dump, "--no-owner", libpq], check=True, capture_output=True
    ).stdout


def plaintext_found(url: str, people: list[Person]) -> list[str]:
    raw = database_bytes(url)
    return sorted(what for needle, what in needles(people).items() if needle in raw)


@pytest.fixture
def town(tmp_path: Path) -> Path:
    path = tmp_path / "town.jsonl"
    write_city(path, scale=TOWN_SCALE, seed=7)
    return path


# --- the raw-bytes scan ----------------------------------------------------------


def test_no_name_id_or_phone_number_of_a_town_is_in_the_database_bytes(
    ledger: Ledger, database: Database, database_url: str, town: Path
) -> None:
    # Given a generated town imported into the ledger
    people = people_in(town)
    summary = import_file(ledger, town)
    assert summary.rejected == 0
    assert len(people) > 50
    # Then none of its people's data is in the database's bytes
    assert plaintext_found(database_url, people) == []
    # While the ledger reads every one of them back
    streams = [Volunteer.create_id(person.volunteer_id) for person in people]
    loaded = ledger.load_aggregates(streams)
    assert [
        (v.name, v.id_number, v.phone)
        for v in (loaded[stream] for stream in streams)
        if isinstance(v, Volunteer)
    ] == [(p.name, p.id_number, p.phone) for p in people]


def test_the_scan_finds_the_people_of_a_ledger_stored_in_plaintext(
    database_url: str,
) -> None:
    # Given the ledger release bb41d98 wrote, personal data in plaintext
    restore_release_ledger(database_url)
    imported = RELEASE / "city.jsonl"
    people = people_in(imported)
    # Then the same scan finds their names, ID and phone numbers
    found = plaintext_found(database_url, people)
    assert any(what.startswith("ID number of") for what in found)
    assert any(what.startswith("phone of") for what in found)
    assert any(what.startswith("name of") for what in found)


# --- sealing and opening -------------------------------------------------------


def test_a_registration_is_stored_sealed_and_read_back_whole(
    ledger: Ledger, database: Database
) -> None:
    number = id_number()
    record_all(ledger, [registration("V1", number)])
    with database.reading() as conn:
        topic, stream, payload = conn.execute(
            sa.select(
                events_table.c.topic, events_table.c.stream_id, events_table.c.payload
            ).where(events_table.c.topic == "Volunteer.Registered")
        ).one()
    stored = orjson.loads(payload)
    # The stored payload keeps the volunteer's id but none of their data
    assert stored["volunteer_id"] == "V1"
    assert {"name", "id_number", "phone"}.isdisjoint(stored)
    assert number not in payload
    # And the vault opens it only as the event it was sealed for
    sealed = stored[SEALED_FIELD]
    opened = ledger.vault.open(sealed, sealing_context(stream, topic))
    assert opened is not None and opened["id_number"] == number
    with pytest.raises(Exception, match="does not open with its key"):
        ledger.vault.open(sealed, sealing_context(stream, "Volunteer.CheckedIn"))


class CountingMasterKey(KeyFileMasterKey):
    """The ledger's master key, counting the data keys it unwraps."""

    unwrapped = 0

    def unwrap(self, wrapped: bytes) -> bytes:
        self.unwrapped += 1
        return super().unwrap(wrapped)


def test_volunteers_read_back_together_unwrap_their_own_keys_only(
    ledger: Ledger, database: Database, key_directory: Path
) -> None:
    # Given twenty volunteers, each with their own data key
    people = {f"V{n:02}": id_number() for n in range(1, 21)}
    record_all(ledger, [registration(v, number) for v, number in people.items()])
    # When a writer that holds no key reads five of them back together, as
    # an import's batch reads those it no longer keeps
    wanted = {v: people[v] for v in ("V01", "V05", "V10", "V15", "V20")}
    master_key = CountingMasterKey(key_directory / MASTER_KEY_FILE)
    reader = Ledger(
        database, ledger.id_number_digest, PersonalDataVault(database, master_key)
    )
    read = reader.load_aggregates([Volunteer.create_id(v) for v in wanted])
    # Then each is read back whole, and only their five keys were unwrapped
    # (not a window of the keys after each, read person by person)
    assert {
        aggregate.volunteer_id: aggregate.id_number  # type: ignore[attr-defined]
        for aggregate in read.values()
    } == wanted
    assert master_key.unwrapped == len(wanted)


def test_a_sealed_ledger_verifies_and_rejects_a_duplicate_id_number(
    ledger: Ledger, database: Database
) -> None:
    number = id_number()
    record_all(ledger, [*small_city(), registration("V7", number)])
    [result] = ledger.execute_batch([registration("V8", number)])
    assert result.outcome == "rejected"
    assert result.error is not None and result.error.code == "duplicate_id_number"
    audit = verify_ledger(database, None, ledger)
    assert audit.chain.ok, audit.chain.problem
    assert [(d.table, d.problem) for d in audit.derived if not d.ok] == []


# --- master key ------------------------------------------------------------------


def events_of(database: Database) -> list[tuple[object, ...]]:
    with database.reading() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(events_table).order_by(events_table.c.position)
            )
        ]


def test_rotating_the_master_key_rewraps_data_keys_and_touches_no_event(
    ledger: Ledger, database: Database, key_directory: Path, tmp_path: Path
) -> None:
    # Given a ledger with people's data sealed under its master key
    record_all(ledger, small_city())
    before = events_of(database)
    old_key_id = KeyFileMasterKey(key_directory / MASTER_KEY_FILE).key_id
    with database.reading() as conn:
        wrapped_before = dict(
            conn.execute(
                sa.select(data_keys_table.c.subject_id, data_keys_table.c.wrapped_key)
            ).all()
        )
    # When the master key is rotated
    rotated = rotate_master_key_file(database, key_directory)
    # Then every data key is wrapped again, under the new key
    new_key = KeyFileMasterKey(key_directory / MASTER_KEY_FILE)
    assert (rotated.old_key_id, rotated.new_key_id) == (old_key_id, new_key.key_id)
    assert new_key.key_id != old_key_id
    assert rotated.rewrapped == len(wrapped_before) > 0
    with database.reading() as conn:
        after = conn.execute(
            sa.select(
                data_keys_table.c.subject_id,
                data_keys_table.c.wrapped_key,
                data_keys_table.c.master_key_id,
            )
        ).all()
    assert {subject for subject, _, _ in after} == set(wrapped_before)
    assert all(wrapped != wrapped_before[s] for s, wrapped, _ in after)
    assert {key_id for _, _, key_id in after} == {new_key.key_id}
    # And no event changed, the chain verifies, and the data still opens
    assert events_of(database) == before
    reopened = open_ledger(database, key_directory)
    assert verify_ledger(database, None, reopened).chain.ok
    stream = Volunteer.create_id("V1")
    volunteer = reopened.load_aggregates([stream])[stream]
    assert isinstance(volunteer, Volunteer) and volunteer.id_number
    # And the old key, kept for the backups made before, no longer opens them
    assert rotated.retired.exists()
    assert stat_mode(rotated.retired) == 0o600


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_missing_master_key_is_refused_and_nothing_is_written(
    ledger: Ledger, database: Database, key_directory: Path
) -> None:
    # Given a sealed ledger whose master key file is gone
    record_all(ledger, small_city())
    before = events_of(database)
    (key_directory / MASTER_KEY_FILE).unlink()
    # When the ledger is opened, it is refused with what to do
    with pytest.raises(MasterKeyError, match="restore that key"):
        open_ledger(database, key_directory)
    # And nothing is written, no new key made
    assert events_of(database) == before
    assert not (key_directory / MASTER_KEY_FILE).exists()
    # And a reader cannot open the data either: it is refused, not guessed
    vault = PersonalDataVault(
        database, KeyFileMasterKey(key_directory / MASTER_KEY_FILE)
    )
    with pytest.raises(MasterKeyError, match="no master key"):
        vault.load_keys(["V1"])


def test_a_master_key_file_others_may_read_is_refused(
    ledger: Ledger, database: Database, key_directory: Path
) -> None:
    record_all(ledger, small_city())
    before = events_of(database)
    master = key_directory / MASTER_KEY_FILE
    master.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        open_ledger(database, key_directory)
    assert events_of(database) == before


def test_another_master_key_is_refused_before_anything_is_written(
    ledger: Ledger, database: Database, key_directory: Path, tmp_path: Path
) -> None:
    record_all(ledger, small_city())
    before = events_of(database)
    master = key_directory / MASTER_KEY_FILE
    master.unlink()
    master.write_text(os.urandom(32).hex() + "\n")
    master.chmod(0o600)
    with pytest.raises(MasterKeyError, match="sealed under master key id"):
        open_ledger(database, key_directory)
    assert events_of(database) == before


def test_the_first_master_key_is_made_for_its_owner_only(
    ledger: Ledger, key_directory: Path
) -> None:
    assert stat_mode(key_directory / MASTER_KEY_FILE) == 0o600
    assert stat_mode(key_directory) == 0o700


# --- a ledger of an earlier release --------------------------------------------


def test_a_plaintext_ledger_grows_sealed_and_is_copied_into_a_sealed_one(
    database_url: str, key_directory: Path, tmp_path: Path
) -> None:
    # Given the plaintext ledger of release bb41d98, opened by this release
    # and grown with the rest of its town (those registrations sealed)
    restore_release_ledger(database_url)
    source = open_database(database_url)
    ledger = open_ledger(source, key_directory)
    lines = RELEASE / "city.jsonl"
    rest = tmp_path / "rest.jsonl"
    rest.write_bytes(b"".join(lines.read_bytes().splitlines(keepends=True)[700:]))
    assert import_file(ledger, rest).rejected == 0
    assert verify_ledger(source, None, ledger).chain.ok
    people = people_in(lines)
    assert plaintext_found(database_url, people) != []

    # When it is copied into a new ledger with its personal data sealed
    target_url = f"sqlite:///{tmp_path / 'sealed.db'}"
    target = open_database(target_url)
    target_keys = tmp_path / "sealed.keys"
    mapping = copy_sealed(source, key_directory, target, target_keys)

    # Then the copy holds no one's data in plaintext, yet reads it all back
    assert plaintext_found(target_url, people) == []
    copy = open_ledger(target, target_keys)
    streams = [Volunteer.create_id(person.volunteer_id) for person in people]
    loaded = copy.load_aggregates(streams)
    assert {
        (v.volunteer_id, v.name, v.id_number)
        for v in loaded.values()
        if isinstance(v, Volunteer)
    } == {(p.volunteer_id, p.name, p.id_number) for p in people}
    # And it verifies: its chain, and everything recorded beside its events
    audit = verify_ledger(target, None, copy)
    assert audit.chain.ok, audit.chain.problem
    assert [(d.table, d.problem) for d in audit.derived if not d.ok] == []
    # And the same events sit at the same positions, only sealed
    assert [row[:4] for row in events_of(target)] == [
        row[:4] for row in events_of(source)
    ]
    assert mapping.sealed_events == len(people)
    # And the mapping of the old chain head to the new is signed by the ledger
    with source.reading() as conn:
        old_head = conn.execute(
            sa.select(events_table.c.position, events_table.c.chain_hash)
            .order_by(events_table.c.position.desc())
            .limit(1)
        ).one()
    assert (mapping.position, mapping.old_chain_hash) == tuple(old_head)
    assert mapping.new_chain_hash == audit.chain.head_hash
    public_key = load_or_create_signing_key(key_directory / SIGNING_KEY_FILE)
    public_key.public_key().verify(bytes.fromhex(mapping.signature), mapping.message())
    # And a second copy into it is refused, writing nothing
    with pytest.raises(SealedCopyError, match="already holds a ledger"):
        copy_sealed(source, key_directory, target, tmp_path / "other.keys")
    source.dispose()
    target.dispose()


# --- through the CLI -------------------------------------------------------------


def test_the_cli_rotates_the_master_key_and_refuses_a_missing_one_in_one_line(
    ledger: Ledger, database: Database, key_directory: Path, tmp_path: Path
) -> None:
    record_all(ledger, small_city())
    rotated = run_cli(database, "personal-data", "rotate-master-key")
    assert rotated.exit_code == 0, rotated.output
    assert "data keys wrapped again" in rotated.output
    # Given the master key moved away
    (key_directory / MASTER_KEY_FILE).rename(tmp_path / "kept-elsewhere")
    before = events_of(database)
    lines = tmp_path / "more.jsonl"
    lines.write_bytes(
        orjson.dumps(line("register_team", team_id="T9", name="more")) + b"\n"
    )
    # Then writing exits 1 in one line naming the key, and writes nothing
    refused = run_cli(database, "import", str(lines))
    assert refused.exit_code == 1
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert "no master key" in refused.output
    assert events_of(database) == before


def test_a_writer_holding_the_master_key_from_before_a_rotation_records_nothing(
    ledger: Ledger, database: Database, key_directory: Path
) -> None:
    # Given a writer that sealed with the master key, which is then rotated
    record_all(ledger, small_city())
    rotate_master_key_file(database, key_directory)
    before = events_of(database)
    # When it registers a volunteer (a new data key, wrapped with the old key)
    # Then it is refused, and nothing is written
    with pytest.raises(MasterKeyError, match="was rotated"):
        ledger.execute_batch([registration("V9", id_number())])
    assert events_of(database) == before
    # While a writer opened after the rotation records it
    reopened = open_ledger(database, key_directory)
    [result] = reopened.execute_batch([registration("V9", id_number())])
    assert result.outcome == "accepted"
