"""The tables an append writes beside the events — the subjects each event
concerns (audit queries read them), the claims it makes (the duplicate-ID-
number and session rules read them) and the idempotency keys of the commands
(duplicates are found by them) — are derived again from the stored events by
`ledger verify`, with the ledger's own rules, on real SQLite and PostgreSQL.

A row deleted, altered or inserted directly in the database fails the check,
which names the table and the first difference; an untouched ledger passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from ledger.api.cli.app import app
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.domain.volunteers import Volunteer
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.reads.audit import AuditQuery, find_events, parse_subject
from ledger.store.event_store import (
    Database,
    claims_table,
    data_keys_table,
    event_subjects_table,
    idempotency_keys_table,
)
from ledger.store.integrity import (
    KEY_DIRECTORY_SETTING,
    DerivedTableVerification,
    verify_derived_tables,
    verify_ledger,
)
from tests.factories import T0, record_all, submission
from tests.integration.projection_helpers import append_raw_event, served_city

SUBJECTS = event_subjects_table.name
CLAIMS = claims_table.name
KEYS = idempotency_keys_table.name
DATA_KEYS = data_keys_table.name

HEAD = 26  # the served city's 22 commands, one event each, and one award of 4
AWARD = (23, 26)  # the positions of the award command's events


def keyed(submissions: list[Submission]) -> list[Submission]:
    """Each command under its own idempotency key: k-1, k-2, …"""
    return [
        replace(s, envelope=replace(s.envelope, idempotency_key=f"k-{number}"))
        for number, s in enumerate(submissions, start=1)
    ]


def an_award() -> Submission:
    """One command whose four events (the record opened, a star level, a
    benefit, points) share its idempotency key."""
    [award] = keyed(
        [
            submission(
                "record_honours",
                volunteer_id="V1",
                rules="national",
                stars=1,
                benefits=["bus pass"],
                points=10,
                as_of="2024-12-31",
                position=22,
            )
        ]
    )
    return replace(award, envelope=replace(award.envelope, idempotency_key="award"))


# Where a problem names the fingerprint key k-9's or the award's command is
# bound to: keyed with the test ledger's secret, known once it is opened.
K9_FINGERPRINT = "<fingerprint of k-9>"
AWARD_FINGERPRINT = "<fingerprint of the award>"


def with_fingerprints(problem: str, ledger: Ledger) -> str:
    """``problem`` naming the start of the fingerprints the ledger made."""
    digest = ledger.id_number_digest
    k9 = digest.fingerprint(keyed(served_city())[8].command)[:12]
    award = digest.fingerprint(an_award().command)[:12]
    return problem.replace(K9_FINGERPRINT, k9).replace(AWARD_FINGERPRINT, award)


@pytest.fixture
def city(ledger: Ledger, database: Database) -> Database:
    """The served city, every command keyed, and an award; projected."""
    record_all(ledger, [*keyed(served_city()), an_award()])
    ProjectionEngine(database, ALL_PROJECTIONS).catch_up()
    return database


def stream(volunteer_id: str) -> str:
    return str(Volunteer.create_id(volunteer_id))


def ledger_verify(database: Database, tmp_path: Path) -> Result:
    return CliRunner().invoke(
        app,
        ["--db", database.url, "verify"],
        # in English, whatever the machine's locale
        env={KEY_DIRECTORY_SETTING: str(tmp_path / "keys"), "LANGUAGE": "en"},
    )


def by_table(results: list[DerivedTableVerification]) -> dict[str, str | None]:
    return {result.table: result.problem for result in results}


# --- an untouched ledger ---------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 4, 10_000])
def test_an_untouched_ledger_derives_every_stored_row_again(
    ledger: Ledger, city: Database, page_size: int
) -> None:
    results = verify_derived_tables(city, ledger, page_size=page_size)

    assert by_table(results) == {
        SUBJECTS: None,
        CLAIMS: None,
        KEYS: None,
        DATA_KEYS: None,
    }
    with city.reading() as conn:
        stored = {
            table.name: conn.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
            for table in (
                event_subjects_table,
                claims_table,
                idempotency_keys_table,
                data_keys_table,
            )
        }
    # every stored row was derived: 4 claims (two ID numbers, two sessions),
    # and a key for each of the 23 commands
    assert {result.table: result.rows for result in results} == stored
    assert (stored[CLAIMS], stored[KEYS]) == (4, 23)


def test_an_untouched_ledger_verifies_with_its_derived_tables(
    ledger: Ledger, city: Database, tmp_path: Path
) -> None:
    assert verify_ledger(city, None, ledger).ok
    outcome = ledger_verify(city, tmp_path)
    assert outcome.exit_code == 0, outcome.output
    for table in (SUBJECTS, CLAIMS, KEYS, DATA_KEYS):
        assert f"{table}: ok" in outcome.stdout


# --- tampering with a derived table, directly in the database -----------------------


def execute(database: Database, statement: sa.Executable) -> None:
    with database.writing() as conn:
        conn.execute(statement)


s, c, k = event_subjects_table.c, claims_table.c, idempotency_keys_table.c


def erase_unrecorded(database: Database, volunteer_id: str) -> None:
    """What ``forget`` deletes, deleted with no erasure recorded."""
    with database.writing() as conn:
        conn.execute(
            claims_table.delete().where(
                c.kind == "id_number", c.stream_id == stream(volunteer_id)
            )
        )
        conn.execute(
            data_keys_table.delete().where(data_keys_table.c.subject_id == volunteer_id)
        )


@dataclass(frozen=True)
class Tampering:
    table: str
    tamper: Callable[[Database], None]
    problem: str


TAMPERINGS = {
    # V1's registration (6) concerns V1 alone
    "a subject row deleted": Tampering(
        SUBJECTS,
        lambda db: execute(
            db,
            event_subjects_table.delete().where(
                s.position == 6, s.kind == "volunteer", s.subject_id == "V1"
            ),
        ),
        "at position 6: missing volunteer:V1",
    ),
    "a subject row altered": Tampering(
        SUBJECTS,
        lambda db: execute(
            db,
            event_subjects_table.update()
            .where(s.position == 6, s.subject_id == "V1")
            .values(subject_id="V9"),
        ),
        "at position 6: missing volunteer:V1; extra volunteer:V9",
    ),
    # team T1's registration (5) made to concern a team it never named
    "a subject row inserted": Tampering(
        SUBJECTS,
        lambda db: execute(
            db,
            event_subjects_table.insert().values(
                kind="team", subject_id="T9", position=5
            ),
        ),
        "at position 5: extra team:T9",
    ),
    "a subject row where no event is": Tampering(
        SUBJECTS,
        lambda db: execute(
            db,
            event_subjects_table.insert().values(
                kind="volunteer", subject_id="V1", position=999
            ),
        ),
        "at position 999: extra volunteer:V1",
    ),
    # V2's registration (7) claims V2's ID number
    "an ID number claim deleted": Tampering(
        CLAIMS,
        lambda db: execute(
            db,
            claims_table.delete().where(
                c.kind == "id_number", c.stream_id == stream("V2")
            ),
        ),
        f"at position 7: the id_number claim the event makes for stream "
        f"{stream('V2')} is missing",
    ),
    # V1's check-in (11) claims session S-V1
    "a session claim given to another volunteer": Tampering(
        CLAIMS,
        lambda db: execute(
            db,
            claims_table.update()
            .where(c.kind == "session", c.value == "S-V1")
            .values(stream_id=stream("V2")),
        ),
        f"at position 11: the session claim the event makes for stream "
        f"{stream('V1')} is held by stream {stream('V2')}",
    ),
    "a claim inserted": Tampering(
        CLAIMS,
        lambda db: execute(
            db,
            claims_table.insert().values(
                kind="session", value="S-GHOST", stream_id=stream("V1")
            ),
        ),
        f"a session claim held by stream {stream('V1')} is made by no event",
    ),
    "a key row deleted": Tampering(
        KEYS,
        lambda db: execute(db, idempotency_keys_table.delete().where(k.key == "k-9")),
        f"at position 9: missing key 'k-9' of cli (positions 9–9, fingerprint "
        f"{K9_FINGERPRINT})",
    ),
    "a key's span shortened": Tampering(
        KEYS,
        lambda db: execute(
            db,
            idempotency_keys_table.update()
            .where(k.key == "award")
            .values(last_position=24),
        ),
        f"at position 23: missing key 'award' of cli (positions 23–26, fingerprint "
        f"{AWARD_FINGERPRINT}); extra key 'award' of cli (positions 23–24, "
        f"fingerprint {AWARD_FINGERPRINT})",
    ),
    "a key bound to other content": Tampering(
        KEYS,
        lambda db: execute(
            db,
            idempotency_keys_table.update()
            .where(k.key == "k-9")
            .values(fingerprint="f" * 64),
        ),
        f"at position 9: missing key 'k-9' of cli (positions 9–9, fingerprint "
        f"{K9_FINGERPRINT}); extra key 'k-9' of cli (positions 9–9, "
        "fingerprint ffffffffffff)",
    ),
    "a key moved to another caller": Tampering(
        KEYS,
        lambda db: execute(
            db,
            idempotency_keys_table.update()
            .where(k.key == "k-9")
            .values(caller="import"),
        ),
        f"at position 9: missing key 'k-9' of cli (positions 9–9, fingerprint "
        f"{K9_FINGERPRINT}); extra key 'k-9' of import (positions 9–9, "
        f"fingerprint {K9_FINGERPRINT})",
    ),
    "a key row inserted": Tampering(
        KEYS,
        lambda db: execute(
            db,
            idempotency_keys_table.insert().values(
                caller="cli", key="k-ghost", first_position=12, last_position=12
            ),
        ),
        "at position 12: extra key 'k-ghost' of cli (positions 12–12, fingerprint "
        "none)",
    ),
    # V2 erased as ``forget`` would (key and ID-number claim), unrecorded
    "a data key deleted with its claim": Tampering(
        DATA_KEYS,
        lambda db: erase_unrecorded(db, "V2"),
        "the data key of 'V2' is missing, and no erasure of theirs is recorded "
        "(1 such)",
    ),
    "a data key of nobody sealed inserted": Tampering(
        DATA_KEYS,
        lambda db: execute(
            db,
            data_keys_table.insert().from_select(
                list(data_keys_table.c.keys()),
                sa.select(
                    sa.literal("V9"),
                    data_keys_table.c.master_key_id,
                    data_keys_table.c.wrapped_key,
                    data_keys_table.c.created_at,
                ).where(data_keys_table.c.subject_id == "V1"),
            ),
        ),
        "a data key of 'V9' is stored, whose personal data no event seals or "
        "whose erasure is recorded (1 such)",
    ),
}


@pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_derived_row_tampered_with_is_named_by_table_and_position(
    ledger: Ledger, city: Database, tmp_path: Path, tampering: Tampering
) -> None:
    # When a row of a derived table is changed directly in the database
    tampering.tamper(city)

    # Then deriving the tables again names that table's first difference, and
    # only that table's (with pages smaller than the award's key span, too)
    expected = {SUBJECTS: None, CLAIMS: None, KEYS: None, DATA_KEYS: None}
    problem = with_fingerprints(tampering.problem, ledger)
    expected[tampering.table] = problem
    assert by_table(verify_derived_tables(city, ledger)) == expected
    assert by_table(verify_derived_tables(city, ledger, page_size=2)) == expected

    # And the audit fails, while the chain itself is intact
    audit = verify_ledger(city, None, ledger)
    assert audit.chain.ok and not audit.ok

    # And `ledger verify` exits non-zero, naming it
    outcome = ledger_verify(city, tmp_path)
    assert outcome.exit_code == 1, outcome.output
    assert f"{tampering.table}: MISMATCH {problem}" in outcome.stdout


def test_subject_rows_deleted_hide_events_from_the_audit_until_verify_names_them(
    ledger: Ledger, city: Database
) -> None:
    def v1_events() -> int:
        found = find_events(city, AuditQuery(subject=parse_subject("volunteer:V1")))
        return len(found.events)

    # Given V1's ten events (registration, sign-up, check-in and out, approval,
    # the order V1 accepted, the award's four), found through their subjects
    assert v1_events() == 10
    # When every subject row naming V1 is deleted
    execute(city, event_subjects_table.delete().where(s.subject_id == "V1"))
    # Then the audit finds none of them
    assert v1_events() == 0
    # But verify names the first event that concerns V1
    [subjects, _, _, _] = verify_derived_tables(city, ledger)
    assert subjects.problem == "at position 6: missing volunteer:V1"


def test_a_deleted_id_number_claim_lets_a_duplicate_in_until_verify_names_it(
    ledger: Ledger, city: Database
) -> None:
    # Given V2's ID number claim deleted directly in the database
    execute(
        city,
        claims_table.delete().where(c.kind == "id_number", c.stream_id == stream("V2")),
    )
    # When someone registers again with V2's ID number, it is accepted
    v2 = ledger.load_aggregates([Volunteer.create_id("V2")])[Volunteer.create_id("V2")]
    assert isinstance(v2, Volunteer)
    registration = submission(
        "register_volunteer", volunteer_id="V3", name="王五", id_number=v2.id_number
    )
    [result] = ledger.execute_batch([registration])
    assert result.outcome == Outcome.ACCEPTED
    # But verify names the claim the earlier registration (7) made: it is
    # now held by the duplicate
    [_, claims, _, _] = verify_derived_tables(city, ledger)
    assert claims.problem == (
        f"at position 7: the id_number claim the event makes for stream "
        f"{stream('V2')} is held by stream {stream('V3')}"
    )


def test_an_event_the_rules_cannot_be_applied_to_is_named(
    ledger: Ledger, city: Database
) -> None:
    # Given an event stored directly, chained correctly, that does not decode
    # (a team registration without the team's name and level)
    position = append_raw_event(city, "Team.Registered", {"team_id": "T-RAW"}, at=T0)

    # Then what its append would have recorded cannot be derived: named for
    # the subjects and the claims
    problems = by_table(verify_derived_tables(city, ledger))
    for table in (SUBJECTS, CLAIMS):
        assert (problems[table] or "").startswith(
            f"the event at position {position} belongs to a stream whose first "
            "event does not decode"
        ), problems
    assert problems[KEYS] is None
