"""`ledger forget VOLUNTEER_ID --reason TEXT` (CONTRACT §1.4), on SQLite and
PostgreSQL: the erasure is recorded as an event (who, when, why), the
volunteer's data key is destroyed and their ID-number claim released in the
same transaction. Afterwards every output shows the volunteer by id with
the marker 已删除 / erased, also as of positions before the erasure; their
hours, star level and venue figures are unchanged; rebuild and verify pass;
a second forget writes nothing; the ID number may register again as a new
volunteer. And every admin read of full ID and phone numbers is recorded,
for auditors to list."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import Result

from ledger.application.ledger import Ledger, Outcome
from ledger.domain.privacy import ERASED
from ledger.services.certificates import read_certificate
from ledger.store.event_store import Database, data_keys_table, head_position
from ledger.store.integrity import verify_ledger
from tests.certificate_helpers import (
    ID_NUMBER,
    SATURDAY,
    Cli,
    exited_cleanly_with,
    issue,
    ledger_cli,
    serve_v1,
)
from tests.factories import id_number, line, submission

PHONE = "13812345678"  # V1's, as serve_v1 registers them
NAME = "王小明"
REASON = "本人申请注销 / asked to be forgotten"


@pytest.fixture
def served(ledger: Ledger) -> Ledger:
    serve_v1(ledger)
    return ledger


@pytest.fixture
def cli(database: Database, key_directory: Path) -> Cli:
    return ledger_cli(database.url, key_directory)


def ok(outcome: Result) -> str:
    assert exited_cleanly_with(outcome, 0), outcome.output
    return outcome.stdout


def as_json(outcome: Result) -> Any:
    return orjson.loads(ok(outcome))


def head(database: Database) -> int:
    with database.reading() as conn:
        return head_position(conn)


def forget_v1(cli: Cli) -> str:
    return ok(cli("forget", "V1", "--reason", REASON))


def audit_of_v1(cli: Cli, *options: str) -> Any:
    return as_json(
        cli(
            "audit",
            "events",
            "--subject",
            "volunteer:V1",
            "--limit",
            "1000",
            *options,
        )
    )


def figures_of_v1(cli: Cli) -> dict[str, Any]:
    """V1's hours and stars and the figures of their venue, as read."""
    ok(cli("project"))
    hours = as_json(cli("query", "hours", "V1"))
    activity = as_json(
        cli("query", "activity", "C", "--from", "2024-01", "--to", "2024-12")
    )
    for answer in (hours, activity):
        answer.pop("position")
        answer.pop("chain_hash")
    return {"hours": hours, "activity": activity}


def registration(page: Any) -> dict[str, Any]:
    (registered,) = [e for e in page["events"] if e["type"] == "Volunteer.Registered"]
    payload: dict[str, Any] = registered["payload"]
    return payload


# --- the erasure ----------------------------------------------------------


def test_forgetting_records_who_erased_when_and_why_and_no_personal_data(
    served: Ledger, cli: Cli, database: Database
) -> None:
    before = head(database)

    said = forget_v1(cli)

    assert head(database) == before + 1
    assert f"{before + 1}" in said
    (erasure,) = [
        e
        for e in audit_of_v1(cli)["events"]
        if e["type"] == "Volunteer.PersonalDataErased"
    ]
    assert erasure["position"] == before + 1
    assert erasure["actor"]["role"] == "admin"
    assert erasure["payload"]["reason"] == REASON
    assert "volunteer:V1" in erasure["subjects"]
    for personal in (NAME, ID_NUMBER, PHONE):
        assert personal not in orjson.dumps(erasure).decode()


def test_a_second_forget_writes_nothing_and_says_so(
    served: Ledger, cli: Cli, database: Database
) -> None:
    forget_v1(cli)
    erased_at = head(database)

    said = forget_v1(cli)

    assert head(database) == erased_at
    assert "nothing was written" in said or "未写入任何内容" in said
    again = served.execute(
        submission("forget_volunteer", volunteer_id="V1", reason=REASON)
    )
    assert again.outcome is Outcome.UNCHANGED
    assert head(database) == erased_at


def test_forgetting_an_unknown_volunteer_is_refused_with_its_code(
    served: Ledger, cli: Cli, database: Database
) -> None:
    before = head(database)

    outcome = cli("forget", "V404", "--reason", REASON)
    result = served.execute(
        submission("forget_volunteer", volunteer_id="V404", reason=REASON)
    )

    assert exited_cleanly_with(outcome, 4)
    assert "V404" in outcome.stderr
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and result.error.code == "unknown_reference"
    assert head(database) == before


def test_forgetting_without_a_reason_is_refused(
    served: Ledger, cli: Cli, database: Database
) -> None:
    before = head(database)

    outcome = cli("forget", "V1", "--reason", "  ")

    assert exited_cleanly_with(outcome, 2)
    assert head(database) == before


def test_the_data_key_is_gone_from_the_database_and_its_files(
    served: Ledger, cli: Cli, database: Database
) -> None:
    t = data_keys_table.c
    with database.reading() as conn:
        (wrapped,) = conn.execute(
            sa.select(t.wrapped_key).where(t.subject_id == "V1")
        ).one()

    forget_v1(cli)

    with database.reading() as conn:
        assert conn.execute(sa.select(t.subject_id)).scalars().all() == []
    if database.sqlite_file is not None:
        # zeroed where it was deleted, and no copy left in the journal
        for file in Path(database.sqlite_file).parent.glob("ledger.db*"):
            assert wrapped.encode() not in file.read_bytes(), file.name


def test_a_volunteer_registered_and_forgotten_in_one_batch_leaves_no_key(
    served: Ledger, database: Database
) -> None:
    registered = submission(
        "register_volunteer", volunteer_id="V7", name=NAME, id_number=id_number()
    )
    forgotten = submission("forget_volunteer", volunteer_id="V7", reason=REASON)

    results = served.execute_batch([registered, forgotten])

    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    with database.reading() as conn:
        keys = conn.execute(sa.select(data_keys_table.c.subject_id)).scalars()
        assert "V7" not in set(keys)
    again = served.execute(registered)
    assert again.outcome is Outcome.REJECTED  # the id V7, not the number
    assert again.error is not None and again.error.code == "duplicate_id"
    assert verify_ledger(database, None, served).ok


# --- what stays whole -----------------------------------------------------


def test_hours_star_level_and_venue_figures_are_unchanged_across_forget(
    served: Ledger, cli: Cli
) -> None:
    before = figures_of_v1(cli)
    assert before["hours"]["total_minutes"] == 270

    forget_v1(cli)

    assert figures_of_v1(cli) == before


def test_after_forget_rebuild_and_verify_pass_and_checkpoints_still_hold(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    ok(cli("project"))
    checkpoint, public_key = tmp_path / "c.json", tmp_path / "k.pem"
    ok(cli("checkpoint", "--out", str(checkpoint), "--public-key-out", str(public_key)))

    forget_v1(cli)

    ok(cli("rebuild"))
    ok(cli("verify", "--checkpoint", str(checkpoint), "--public-key", str(public_key)))
    exported = tmp_path / "events.jsonl"
    ok(cli("export-events", str(exported)))
    ok(
        cli(
            "verify-export",
            str(exported),
            "--checkpoint",
            str(checkpoint),
            "--public-key",
            str(public_key),
        )
    )
    for personal in (NAME, ID_NUMBER, PHONE):
        assert personal not in exported.read_text()


def test_an_import_counts_a_second_forget_as_a_duplicate(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    forget = line("forget_volunteer", volunteer_id="V1", reason=REASON)
    file = tmp_path / "forget.jsonl"
    file.write_bytes(orjson.dumps(forget) + b"\n" + orjson.dumps(forget) + b"\n")

    said = ok(cli("import", str(file)))

    assert said.strip().splitlines()[-1] == "accepted=1 duplicate=1 rejected=0"


# --- what no output shows any more ----------------------------------------


def test_audit_events_show_the_erased_marker_even_as_of_before_the_erasure(
    served: Ledger, cli: Cli, database: Database
) -> None:
    registered = registration(audit_of_v1(cli, "--reveal-personal-data"))
    assert registered["id_number"] == ID_NUMBER
    before_erasure = head(database)

    forget_v1(cli)

    for as_of in ([], ["--as-of", str(before_erasure)]):
        page = audit_of_v1(cli, "--reveal-personal-data", *as_of)
        shown = registration(page)
        assert shown["volunteer_id"] == "V1"
        assert shown["name"] == shown["id_number"] == shown["phone"] == ERASED
        text = orjson.dumps(page).decode()
        for personal in (NAME, ID_NUMBER, PHONE):
            assert personal not in text


def test_a_certificate_after_forget_names_the_volunteer_by_id_with_the_marker(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    forget_v1(cli)

    pdf = issue(cli, tmp_path / "V1.pdf")

    content = read_certificate(pdf)
    assert content["volunteer_id"] == "V1"
    assert content["name"] == content["id_number"] == ERASED
    assert content["figures"]["total_minutes"] == 270
    html = pdf.with_suffix(".html").read_text()
    assert NAME not in html and ID_NUMBER[-4:] + "<" not in html
    ok(cli("verify-certificate", str(pdf)))


# --- the ID number released -----------------------------------------------


def test_after_forget_the_id_number_may_register_again_as_a_new_volunteer(
    served: Ledger, cli: Cli
) -> None:
    again = submission(
        "register_volunteer",
        SATURDAY + timedelta(days=60),
        volunteer_id="V1-again",
        name=NAME,
        id_number=ID_NUMBER,
    )
    refused = served.execute(again)
    assert refused.outcome is Outcome.REJECTED
    assert refused.error is not None and refused.error.code == "duplicate_id_number"

    forget_v1(cli)

    assert served.execute(again).outcome is Outcome.ACCEPTED
    # the old hours stay with the old, erased id; the new id starts afresh
    ok(cli("project"))
    assert as_json(cli("query", "hours", "V1"))["total_minutes"] == 270
    assert as_json(cli("query", "hours", "V1-again"))["total_minutes"] == 0
    ok(cli("verify"))


# --- admin reads recorded -------------------------------------------------


def test_an_admin_read_of_full_numbers_is_recorded_and_listed_for_auditors(
    served: Ledger, cli: Cli, database: Database
) -> None:
    audit_of_v1(cli)  # masked: nothing to record
    assert as_json(cli("audit", "personal-data-reads"))["reads"] == []

    audit_of_v1(cli, "--reveal-personal-data")

    (read,) = as_json(cli("audit", "personal-data-reads"))["reads"]
    assert read["volunteer_ids"] == ["V1"]
    assert read["read"] == "audit events"
    assert read["reader"]["role"] == "admin"
    assert read["position"] == head(database)
    by_volunteer = as_json(cli("audit", "personal-data-reads", "--volunteer", "V1"))[
        "reads"
    ]
    assert by_volunteer == [read]
    assert (
        as_json(cli("audit", "personal-data-reads", "--volunteer", "V2"))["reads"] == []
    )
    # the record names whose data was read, never the data itself
    recorded = audit_of_v1(cli)["events"][-1]
    assert recorded["type"] == "Disclosure.PersonalDataRevealed"
    for personal in (NAME, ID_NUMBER, PHONE):
        assert personal not in orjson.dumps(recorded).decode()
    ok(cli("project"))
    ok(cli("verify"))
