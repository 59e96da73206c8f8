"""A bulk import killed outright (SIGKILL, mid-file) and run again gives the
very ledger a clean run gives: every batch is one transaction, so the killed
run left whole batches or nothing of one, and the second run finds the lines
already recorded as duplicates by their keys (CONTRACT §1.2). On SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from ledger.application.importer import import_file
from ledger.application.ledger import Ledger
from ledger.bootstrap import LEDGER_SCHEMA, open_ledger
from ledger.services.synthetic_city import write_city
from ledger.store.event_store import (
    Database,
    claims_table,
    event_subjects_table,
    events_table,
    head_position,
    idempotency_keys_table,
)
from ledger.store.integrity import verify_chain
from ledger.store.schema import upgrade_schema

BATCH = 300
# What a run's own clock and id put in each event: not the same in two runs
# (and, in the payload, the moment the aggregate triggered the event).
RUN_OWN = {"recorded_at", "correlation_id", "chain_hash"}


def as_recorded(ledger: Ledger, topic: str, stream: str, payload: str) -> Any:
    """A stored payload as it reads: its personal fields opened (each run
    seals them under data keys and nonces of its own), less its trigger
    time."""
    document: dict[str, Any] = orjson.loads(payload)
    del document["timestamp"]
    return ledger.vault.open_payload(topic, stream, document)


def recorded_ledger(
    database: Database, ledger: Ledger
) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored event (less what only its run decides) and every row
    recorded beside the events (less the data keys: random, of each run),
    in order."""
    kept = [column for column in events_table.c if column.name not in RUN_OWN]
    tables = {
        "events": sa.select(*kept).order_by(events_table.c.position),
        "subjects": sa.select(event_subjects_table).order_by(*event_subjects_table.c),
        "keys": sa.select(idempotency_keys_table).order_by(*idempotency_keys_table.c),
        "claims": sa.select(claims_table).order_by(*claims_table.c),
    }
    with database.reading() as conn:
        recorded = {
            name: [tuple(row) for row in conn.execute(query)]
            for name, query in tables.items()
        }
    names = [column.name for column in kept]
    at, topic, stream = (names.index(n) for n in ("payload", "topic", "stream_id"))
    recorded["events"] = [
        (
            *row[:at],
            as_recorded(ledger, row[topic], row[stream], row[at]),
            *row[at + 1 :],
        )
        for row in recorded["events"]
    ]
    return recorded


def start_import(url: str, town: Path, keys: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger.api.cli.app",
            "--db",
            url,
            "import",
            str(town),
            "--batch-size",
            str(BATCH),
        ],
        env={**os.environ, "LEDGER_KEY_DIRECTORY": str(keys)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_once_it_has_recorded(
    child: subprocess.Popen[bytes], database: Database, events: int
) -> int:
    """SIGKILL ``child`` once the ledger holds ``events``; what it held then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert child.poll() is None, "the import finished before it was killed"
        try:
            with database.reading() as conn:
                held = head_position(conn)
        except sa.exc.OperationalError:
            held = 0  # the child is still making the schema
        if held >= events:
            child.send_signal(signal.SIGKILL)
            child.wait()
            return held
        time.sleep(0.05)
    child.kill()
    raise AssertionError("the import recorded too little in two minutes")


def test_an_import_killed_midway_and_run_again_records_what_a_clean_run_does(
    database: Database, key_directory: Path, tmp_path: Path
) -> None:
    # Given a town of about 11,000 lines, imported once cleanly
    town = tmp_path / "town.jsonl"
    lines = write_city(town, scale=0.001)
    ledger = open_ledger(database, key_directory)
    clean_summary = import_file(ledger, town, batch_size=BATCH)
    assert clean_summary.accepted == lines
    clean = recorded_ledger(database, ledger)

    # When the same file is imported into an empty ledger by `ledger import`,
    # killed with SIGKILL a third of the way through, and run again
    database.drop_schema(LEDGER_SCHEMA)
    upgrade_schema(database)
    child = start_import(database.url, town, key_directory)
    held = kill_once_it_has_recorded(child, database, lines // 3)
    assert child.returncode == -signal.SIGKILL
    with database.reading() as conn:
        left = head_position(conn)
    assert left >= held
    assert left % BATCH == 0  # whole batches of one-event lines, or none
    ledger = open_ledger(database, key_directory)
    again = import_file(ledger, town, batch_size=BATCH)

    # Then the second run took the recorded lines as duplicates, and the
    # ledger holds exactly what the clean run recorded, its chain intact
    assert again.duplicate == left
    assert again.accepted + again.duplicate == lines
    assert again.rejected == 0
    assert recorded_ledger(database, ledger) == clean
    assert verify_chain(database, workers=1).ok
