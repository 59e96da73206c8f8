"""Import rate: ``ledger import`` of a synthetic city of about 1.2 M lines.

    python bench/import_rate.py [--scale 0.1] [--db URL]

Generates the city (seeded, cached in bench/out/), imports it into an empty
database through the same path as ``ledger import`` and prints lines/s and
events/s; then imports it again (every line a duplicate).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import sqlalchemy as sa

from ledger.application.importer import import_file
from ledger.bootstrap import LEDGER_SCHEMA, open_ledger
from ledger.services.synthetic_city import write_city
from ledger.store.event_store import Database
from ledger.store.schema import upgrade_schema

OUT = Path(__file__).parent / "out"
# The benchmarks' ledgers keep their key material (the ID-number secret) here.
KEYS = OUT / "keys"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'import-bench.db'}")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    city = OUT / f"city-{args.scale}.jsonl"
    if not city.exists():
        started = time.perf_counter()
        lines = write_city(city, scale=args.scale)
        print(f"generated {lines:,} lines in {time.perf_counter() - started:.1f} s")
    database = Database(args.db)
    database.drop_schema(LEDGER_SCHEMA)
    upgrade_schema(database)
    ledger = open_ledger(database, KEYS)
    for attempt in ("first import", "second import"):
        started = time.perf_counter()
        summary = import_file(ledger, city, report_path=OUT / "rejected.jsonl")
        seconds = time.perf_counter() - started
        with database.reading() as conn:
            events = conn.execute(
                sa.text("SELECT count(*) FROM ledger_events")
            ).scalar()
        print(
            f"{attempt}: {summary.summary_line()} in {seconds:.1f} s = "
            f"{summary.lines / seconds:,.0f} lines/s; {events:,} events stored"
            + (
                f" = {summary.accepted / seconds:,.0f} accepted/s"
                if summary.accepted
                else ""
            )
        )


if __name__ == "__main__":
    main()
