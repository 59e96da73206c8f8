"""Honours run rate: plan and record awards for a Kunshan-sized register.

    python bench/honours_rate.py [--volunteers 570000] [--rules kunshan]
                                 [--as-of 2024-12-31] [--db URL] [--seed 570]
                                 [--served-again 0.1] [--prepared]

Builds an empty SQLite database (default bench/out/honours-bench.db):

1. registers the volunteers through the ledger: a generated interchange file
   of ``register_volunteer`` lines (valid, distinct resident ID numbers),
   imported with ``ledger.application.importer.import_file``, as ``ledger import`` does;
2. gives each volunteer 5–20 ``volunteer_hours`` entries written directly
   into ``proj_volunteer_hours_entries`` under the live version (seeded
   random: hours per volunteer from a Pareto tail, so that about 0.2 %
   reach 1,500 h as Kunshan's 1,145 five-star volunteers in 570,000 do;
   4 in 5 entries verified, the rest make-up; service dated 2022–2024), and
   marks the live version caught up to the head;

and keeps a copy of it (bench/out/honours-prepared.db; ``--prepared`` starts
from that copy instead of steps 1 and 2, which take minutes); then times what
``ledger honours`` does: ``plan_honours`` (every standing,
compared with the awards already recorded) and the recording of the awards
in batches through ``record_honours``; catches the ``honours_awards``
projection up with them; plans once more, building on the first run and
from scratch, which must both find nothing left to record; and times a
later run, which builds on the first, after a share of the volunteers (10 %
by default) served 10 h more (their entries written at the head, a stand-in
for a month of new sessions).

The anchor, in the same run: the events the first run stored (the same
streams, versions, topics and payloads) appended through the
``eventsourcing`` library's own application recorder (``eventsourcing.sqlite``
or ``eventsourcing.postgres``) into an empty table of its own, in batches of
2,000, only the appends timed; printed with the ratio of the first run's
recording rate, and of the whole first run's (plan and record), to it.
On PostgreSQL (``--db postgresql://…``) the anchor's table is in a database
of its own beside the bench's, ``<name>_anchor``, made afresh.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from anchor import append_through_library, fresh_postgres  # bench/, beside this script

from ledger.application.importer import import_file
from ledger.bootstrap import LEDGER_SCHEMA, open_ledger
from ledger.engine import ProjectionEngine, projection_versions_table
from ledger.projections.registry import ALL_PROJECTIONS, HONOURS_AWARDS, VOLUNTEER_HOURS
from ledger.projections.volunteer_hours import entries_table
from ledger.services.honours import (
    compute_standings,
    load_rule_set,
    plan_honours,
    record_honours,
)
from ledger.store.event_store import (
    Database,
    head_position,
    insert_rows,
    normalise_database_url,
)
from ledger.store.memory import cyclic_gc_paused
from ledger.store.schema import upgrade_schema

OUT = Path(__file__).parent / "out"
# The benchmarks' ledgers keep their key material (the ID-number secret) here.
KEYS = OUT / "keys"
PREPARED = OUT / "honours-prepared.db"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CATEGORIES = ("theory", "education", "culture", "science", "health")
FIRST_DAY = date(2022, 1, 1)
DAYS = (date(2024, 12, 31) - FIRST_DAY).days + 1
ROWS_PER_INSERT = 100_000


def id_number(serial: int) -> str:
    """A valid resident ID number, distinct for each serial below 3.6 M."""
    birth = date(1950, 1, 1) + timedelta(days=serial // 1000)
    body = f"320583{birth:%Y%m%d}{serial % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def volunteer_id(serial: int) -> str:
    return f"KS{serial:07d}"


def write_register(path: Path, volunteers: int) -> None:
    actor = {"id": "bench-registrar", "role": "admin"}
    with path.open("wb") as out:
        for serial in range(volunteers):
            line = {
                "type": "register_volunteer",
                "at": "2021-06-01T09:00:00+08:00",
                "actor": actor,
                "volunteer_id": volunteer_id(serial),
                "name": f"志愿者{serial}",
                "id_number": id_number(serial),
            }
            out.write(orjson.dumps(line) + b"\n")


def entries(
    volunteers: int, version: int, position: int, seed: int
) -> Iterator[tuple[Any, ...]]:
    """Each volunteer's 5–20 entries: (version, position, volunteer, session,
    kind, year, category, service date, minutes, sessions)."""
    rng = random.Random(seed)
    for serial in range(volunteers):
        who = volunteer_id(serial)
        # Total hours: a Pareto tail from 10 h; P(>= 1,500 h) is about 0.2 %
        total = int(min(rng.paretovariate(1.24) * 10, 4_000) * 60)
        count = rng.randint(5, 20)
        weights = [rng.random() + 0.05 for _ in range(count)]
        scale = total / sum(weights)
        for number, weight in enumerate(weights):
            day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
            kind = "verified" if rng.random() < 0.8 else "makeup"
            yield (
                version,
                position,
                who,
                f"{who}-{number}",
                kind,
                f"{day.year:04d}",
                rng.choice(CATEGORIES),
                day.isoformat(),
                max(1, int(weight * scale)),
                1,
            )


def share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("a share above 0, at most 1")
    return value


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds else "-"


def prepare(database: Database, volunteers: int, seed: int) -> None:
    """Steps 1 and 2: the register imported, its entries written."""
    ledger = open_ledger(database, KEYS)
    # 1. Register the volunteers through the importer
    register = OUT / f"register-{volunteers}.jsonl"
    started = time.perf_counter()
    write_register(register, volunteers)
    print(f"generated the register in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    summary = import_file(ledger, register, report_path=OUT / "register.rejected")
    seconds = time.perf_counter() - started
    assert summary.accepted == volunteers, summary.summary_line()
    print(
        f"imported: {summary.summary_line()} in {seconds:.1f} s "
        f"= {rate(summary.accepted, seconds)}"
    )

    # 2. Their volunteer_hours entries, straight into the live version
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.ensure_live_versions()
    with database.reading() as conn:
        head = head_position(conn)
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
    assert live is not None
    started = time.perf_counter()
    written = 0
    with database.writing(durable=False) as conn:
        batch: list[tuple[Any, ...]] = []
        for row in entries(volunteers, live.version, head, seed):
            batch.append(row)
            if len(batch) == ROWS_PER_INSERT:
                insert_rows(conn, entries_table, batch)
                written += len(batch)
                batch = []
        insert_rows(conn, entries_table, batch)
        written += len(batch)
        t = projection_versions_table.c
        conn.execute(
            projection_versions_table.update()
            .where(t.name == live.name, t.version == live.version)
            .values(position=head)
        )
    seconds = time.perf_counter() - started
    print(
        f"wrote {written:,} volunteer_hours entries in {seconds:.1f} s "
        f"= {rate(written, seconds)} (head position {head:,})"
    )


def anchor_url(url: str) -> str:
    """Where the anchor appends: a SQLite file beside the bench's, or a new
    PostgreSQL database beside the bench's."""
    parts = sa.make_url(normalise_database_url(url))
    if parts.get_backend_name() == "sqlite":
        return f"sqlite:///{OUT / 'honours-anchor.db'}"
    return fresh_postgres(url, f"{parts.database}_anchor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volunteers", type=int, default=570_000)
    parser.add_argument("--rules", default="kunshan")
    parser.add_argument("--as-of", default="2024-12-31")
    parser.add_argument("--seed", type=int, default=570)
    parser.add_argument(
        "--served-again",
        type=share,
        default=0.1,
        help="share of volunteers with new service before the later run",
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help=f"start from {PREPARED.name}, left by an earlier run (SQLite only)",
    )
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'honours-bench.db'}")
    args = parser.parse_args()
    as_of = date.fromisoformat(args.as_of)
    rules = load_rule_set(args.rules, as_of)
    OUT.mkdir(exist_ok=True)
    print(f"{args.volunteers:,} volunteers, rules {rules.label}, as of {as_of}")

    database = Database(args.db)
    if args.prepared:
        database.engine.dispose()
        path = Path(sa.make_url(args.db).database or "")
        for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(PREPARED, path)
    else:
        database.drop_schema(LEDGER_SCHEMA)
        upgrade_schema(database)
        prepare(database, args.volunteers, args.seed)
        if database.is_sqlite:
            PREPARED.unlink(missing_ok=True)
            with sqlite3.connect(sa.make_url(args.db).database or "") as copy:
                copy.execute(f"VACUUM INTO '{PREPARED}'")
    ledger = open_ledger(database, KEYS)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    with database.reading() as conn:
        head = head_position(conn)
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
    assert live is not None
    t = projection_versions_table.c

    # 3. The honours run: plan, then record
    with database.reading() as conn:
        started = time.perf_counter()
        with cyclic_gc_paused():  # as plan_honours runs it
            standings = compute_standings(conn, live.version, rules, as_of, head)
        compute = time.perf_counter() - started
        started = time.perf_counter()
        run = plan_honours(conn, live.version, rules, as_of, head)
        plan = time.perf_counter() - started
    print(
        f"compute_standings: {len(standings):,} standings in {compute:.1f} s "
        f"= {rate(len(standings), compute)}"
    )
    by_stars = ", ".join(
        f"{level}★ {count:,}" for level, count in sorted(run.standings_by_stars.items())
    )
    print(f"  standings: {by_stars}")
    planned = sum(change.due.events for change in run.changes)
    print(
        f"plan_honours: {len(run.changes):,} volunteers with awards, "
        f"{planned:,} award events planned, in {plan:.1f} s "
        f"= {rate(run.volunteers, plan)} volunteers"
    )

    started = time.perf_counter()
    recorded = record_honours(ledger, run)
    volunteers = len(run.changes)
    record = time.perf_counter() - started
    with database.reading() as conn:
        stored = head_position(conn) - head
    print(
        f"recording: {volunteers:,} volunteers, {recorded:,} award events "
        f"({stored:,} events with the records opened and the run's completion) in "
        f"{record:.1f} s = {rate(volunteers, record)} volunteers, "
        f"{rate(stored, record)} events"
    )

    # The anchor: the same events through the library's recorder
    with cyclic_gc_paused():  # as record_honours runs
        anchored = append_through_library(
            database, anchor_url(args.db), head, head + stored
        )["seconds"]
    print(
        f"anchor: the library's recorder appends the same {stored:,} events in "
        f"{anchored:.1f} s = {rate(stored, anchored)}; ratio {anchored / record:.3f}x "
        f"recording, {anchored / (plan + record):.3f}x the first run (plan and "
        "record)"
    )

    # 4. The awards projected, as `ledger project` (and the next run) does
    report = engine.catch_up([HONOURS_AWARDS.name])
    print(
        f"honours_awards caught up: {report.events[HONOURS_AWARDS.name]:,} events "
        f"in {report.seconds:.1f} s"
    )

    # 5. Again: nothing left to record
    again_cycle = run.cycle
    with database.reading() as conn:
        started = time.perf_counter()
        with cyclic_gc_paused():  # as plan_honours runs it
            awards = HONOURS_AWARDS.recorded_awards(conn, rules.label, again_cycle)
        read_awards = time.perf_counter() - started
        started = time.perf_counter()
        again = plan_honours(conn, live.version, rules, as_of, head)
        replan = time.perf_counter() - started
        started = time.perf_counter()
        scratch = plan_honours(
            conn, live.version, rules, as_of, head, from_scratch=True
        )
        replan_from_scratch = time.perf_counter() - started
        total_entries = conn.execute(
            sa.select(sa.func.count()).select_from(entries_table)
        ).scalar()
    assert again.since is not None, "the second plan should build on the first run"
    assert again.changes == scratch.changes == [], "changes on the second plan"
    print(
        f"re-plan: {len(again.changes)} changes in {replan:.1f} s building on the "
        f"first run, {replan_from_scratch:.1f} s from scratch "
        f"(reading {len(awards):,} volunteers' awards: {read_awards:.1f} s)"
    )
    print(
        f"total: plan {plan:.1f} s + record {record:.1f} s = {plan + record:.1f} s "
        f"for {args.volunteers:,} volunteers, {total_entries:,} entries"
    )

    # 6. A later run: a share of the volunteers served again since
    chosen = random.Random(args.seed + 1)
    served = [
        serial
        for serial in range(args.volunteers)
        if chosen.random() < args.served_again
    ]
    with database.writing(durable=False) as conn:
        later_head = head_position(conn)
        conn.execute(
            projection_versions_table.update()
            .where(t.name == live.name, t.version == live.version)
            .values(position=later_head)
        )
        insert_rows(
            conn,
            entries_table,
            [
                (
                    live.version,
                    later_head,
                    volunteer_id(serial),
                    f"{volunteer_id(serial)}-later",
                    *("verified", "2024", "health", "2024-12-20", 600, 1),
                )
                for serial in served
            ],
        )
    started = time.perf_counter()
    with database.reading() as conn:
        later = plan_honours(conn, live.version, rules, as_of, later_head)
    later_plan = time.perf_counter() - started
    started = time.perf_counter()
    later_recorded = record_honours(ledger, later)
    later_record = time.perf_counter() - started
    assert later.since is not None, "the later run should build on the first"
    print(
        f"a later run, {len(served):,} volunteers having served 10 h more "
        f"(building on the run at position {later.since:,}): plan "
        f"{later_plan:.1f} s + record {later_record:.1f} s "
        f"({len(later.changes):,} volunteers, {later_recorded:,} award events) "
        f"= {later_plan + later_record:.1f} s"
    )


if __name__ == "__main__":
    main()
