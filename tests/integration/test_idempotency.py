"""Idempotency keys (CONTRACT §1.2) on real SQLite and PostgreSQL: a key
belongs to its caller — each API key, the importer — and is bound to the
content of the command it was first accepted with. The same command again is
a duplicate answered with the first positions; other content under the key
is refused (``idempotency_key_reused``) and writes nothing; a refused
command leaves its key free. A command whose key another writer accepted
while it was being judged is a duplicate, never a rejection.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.application.importer import (
    ImportSummary,
    default_report_path,
    import_file,
)
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.bootstrap import open_ledger
from ledger.domain.activities import Activity
from ledger.services.synthetic_city import write_city
from ledger.store.event_store import Database, events_table, idempotency_keys_table
from ledger.store.integrity import ID_NUMBER_SECRET_FILE
from tests.factories import (
    activity,
    id_number,
    line,
    record_all,
    small_city,
    submission,
)

API_CALLER = "api:0123456789abcdef"


def sent_by(caller: str, sent: Submission) -> Submission:
    """``sent`` as ``caller`` sends it: its key is in that caller's space."""
    return replace(sent, envelope=replace(sent.envelope, caller=caller))


def signed_up(ledger: Ledger, activity_id: str = "A1") -> set[str]:
    recorded = ledger.repository.get(Activity.create_id(activity_id))
    assert isinstance(recorded, Activity)
    return set(recorded.signed_up)


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(one) + b"\n" for one in lines))
    return path


def reported(path: Path) -> list[dict[str, Any]]:
    report = default_report_path(path).read_bytes()
    return [orjson.loads(row) for row in report.splitlines()]


def test_a_key_reused_for_another_command_is_refused_and_writes_nothing(
    ledger: Ledger,
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    first = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    )
    head = ledger.recorder.max_notification_id()

    # When the key is sent again with another command
    reused = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V2", key="k-1")
    )

    # Then it is refused, naming the rule, and nothing is written
    assert reused.outcome is Outcome.REJECTED
    assert reused.error is not None and reused.error.code == "idempotency_key_reused"
    assert reused.first_position is None
    assert ledger.recorder.max_notification_id() == head
    assert signed_up(ledger) == {"V1"}
    # And the first command, sent again, still gets its first answer
    again = ledger.execute(
        submission("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    )
    assert again.outcome is Outcome.DUPLICATE
    assert (again.first_position, again.last_position) == (
        first.first_position,
        first.last_position,
    )


def test_a_key_reused_within_one_batch_is_refused_for_the_later_command(
    ledger: Ledger,
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    first, reused, repeated = ledger.execute_batch(
        [
            submission("sign_up", activity_id="A1", volunteer_id="V1", key="k"),
            submission("sign_up", activity_id="A1", volunteer_id="V2", key="k"),
            submission("sign_up", activity_id="A1", volunteer_id="V1", key="k"),
        ]
    )
    assert first.outcome is Outcome.ACCEPTED
    assert reused.error is not None and reused.error.code == "idempotency_key_reused"
    assert repeated.outcome is Outcome.DUPLICATE
    assert repeated.first_position == first.first_position
    assert signed_up(ledger) == {"V1"}


def test_each_caller_has_a_key_space_of_its_own(ledger: Ledger, tmp_path: Path) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    # Given an API key that sent a command under the key the import file uses
    squatter = ledger.execute(
        sent_by(
            API_CALLER,
            submission("sign_up", activity_id="A1", volunteer_id="V1", key="k33483"),
        )
    )
    assert squatter.outcome is Outcome.ACCEPTED

    # When the file is imported, its line under that key is its own command,
    # and the line after it, which depends on it, is recorded too
    path = write_lines(
        tmp_path / "orders.jsonl",
        [
            line("sign_up", activity_id="A1", volunteer_id="V2", key="k33483"),
            line("cancel_sign_up", activity_id="A1", volunteer_id="V2", key="k33484"),
        ],
    )
    summary = import_file(ledger, path)

    assert (summary.accepted, summary.duplicate, summary.rejected) == (2, 0, 0)
    # And the API key's retry is still a duplicate in its own space
    retried = ledger.execute(
        sent_by(
            API_CALLER,
            submission("sign_up", activity_id="A1", volunteer_id="V1", key="k33483"),
        )
    )
    assert retried.outcome is Outcome.DUPLICATE
    assert retried.first_position == squatter.first_position


def test_an_import_refuses_a_reused_key_and_a_refused_line_leaves_its_key_free(
    ledger: Ledger, tmp_path: Path
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    path = write_lines(
        tmp_path / "lines.jsonl",
        [
            line("sign_up", activity_id="A1", volunteer_id="V1", key="k-1"),
            # other content under k-1: refused
            line("sign_up", activity_id="A1", volunteer_id="V2", key="k-1"),
            # refused by a rule: k-2 stays free
            line("sign_up", activity_id="A1", volunteer_id="V404", key="k-2"),
            line("sign_up", activity_id="A1", volunteer_id="V2", key="k-2"),
        ],
    )

    summary = import_file(ledger, path)

    assert (summary.accepted, summary.duplicate, summary.rejected) == (2, 0, 2)
    assert [(r["line"], r["key"], r["code"]) for r in reported(path)] == [
        (2, "k-1", "idempotency_key_reused"),
        (3, "k-2", "unknown_reference"),
    ]
    assert signed_up(ledger) == {"V1", "V2"}


def test_the_same_command_in_another_layout_is_a_duplicate(
    ledger: Ledger, tmp_path: Path
) -> None:
    record_all(ledger, [*small_city(), activity("A1")])
    first = line("sign_up", activity_id="A1", volunteer_id="V1", key="k-1")
    import_file(ledger, write_lines(tmp_path / "first.jsonl", [first]))

    # When the line comes again with its fields in another order, spaces
    # around an id, and a field the format ignores
    again = {"exported_by": "another platform", **dict(reversed(first.items()))}
    again["volunteer_id"] = " V1 "
    summary = import_file(ledger, write_lines(tmp_path / "again.jsonl", [again]))

    assert (summary.accepted, summary.duplicate, summary.rejected) == (0, 1, 0)


# --- the same commands sent at once -------------------------------------------------


def test_the_same_file_imported_twice_at_once_rejects_no_line(
    database: Database, key_directory: Path, tmp_path: Path
) -> None:
    # Given a city's file with a key on every line, and two importers
    path = tmp_path / "city.jsonl"
    lines = write_city(path, scale=0.0005)
    importers = [open_ledger(Database(database.url), key_directory) for _ in "ab"]
    start = threading.Barrier(2)
    summaries: dict[int, ImportSummary] = {}

    def run(number: int) -> None:
        start.wait()
        summaries[number] = import_file(
            importers[number],
            path,
            report_path=tmp_path / f"rejected-{number}.jsonl",
            batch_size=100,
        )

    # When both import it at the same time
    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)

    # Then no line of either is rejected: each is accepted by one importer
    # and a duplicate for the other
    assert [summaries[n].rejected for n in range(2)] == [0, 0], [
        (tmp_path / f"rejected-{n}.jsonl").read_text()[:2000] for n in range(2)
    ]
    assert summaries[0].accepted + summaries[1].accepted == lines
    assert summaries[0].duplicate + summaries[1].duplicate == lines
    for importer in importers:
        importer.database.dispose()


def test_a_fingerprint_is_keyed_with_the_ledgers_secret(
    ledger: Ledger, database: Database, key_directory: Path
) -> None:
    # Given a registration sent under a key: its content names an ID number
    number = id_number()
    sent = submission(
        "register_volunteer", volunteer_id="V1", name="张三", id_number=number, key="r"
    )
    first = ledger.execute(sent)
    assert first.outcome is Outcome.ACCEPTED

    # Then the fingerprints stored beside it are HMAC-SHA256 under the
    # ledger's secret, not a plain SHA-256 anyone could try numbers against
    document = sent.command.model_dump(mode="json", exclude={"key"})
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    secret = bytes.fromhex((key_directory / ID_NUMBER_SECRET_FILE).read_text())
    keyed = hmac.new(secret, b"command:" + canonical, hashlib.sha256).hexdigest()
    with database.reading() as conn:
        stored = set(conn.execute(sa.select(events_table.c.fingerprint)).scalars())
        stored |= set(
            conn.execute(sa.select(idempotency_keys_table.c.fingerprint)).scalars()
        )
    assert stored == {keyed}
    assert hashlib.sha256(canonical).hexdigest() != keyed

    # And the same content again is a duplicate, other content refused
    assert ledger.execute(sent).outcome is Outcome.DUPLICATE
    other = ledger.execute(
        submission(
            "register_volunteer",
            volunteer_id="V1",
            name="李四",
            id_number=number,
            key="r",
        )
    )
    assert other.outcome is Outcome.REJECTED
    assert other.error is not None and other.error.code == "idempotency_key_reused"


def test_a_key_accepted_before_fingerprints_were_keyed_still_knows_its_content(
    ledger: Ledger, database: Database
) -> None:
    # Given a key whose fingerprint was recorded unkeyed (revision 0005)
    sent = submission(
        "register_volunteer",
        volunteer_id="V1",
        name="张三",
        id_number=id_number(),
        key="r",
    )
    first = ledger.execute(sent)
    document = sent.command.model_dump(mode="json", exclude={"key"})
    canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    with database.appending() as conn:
        conn.execute(
            idempotency_keys_table.update().values(
                fingerprint=hashlib.sha256(canonical).hexdigest()
            )
        )

    # When the same command is sent again, it is a duplicate of the first
    again = ledger.execute(sent)
    assert again.outcome is Outcome.DUPLICATE
    assert again.first_position == first.first_position
    # And other content under the key is still refused
    other = ledger.execute(
        submission(
            "register_volunteer",
            volunteer_id="V2",
            name="李四",
            id_number=id_number(),
            key="r",
        )
    )
    assert other.outcome is Outcome.REJECTED
