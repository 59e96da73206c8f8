"""What verification costs over the stored events: the chain walk, and
deriving the tables beside the events (subjects, claims, idempotency keys)
again and comparing them with the stored ones.

    python bench/chain_verify.py [--db URL]

Run ``bench/import_rate.py`` first (about 1.2 M events), or point ``--db`` at
a demo city (``ledger --db URL demo``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ledger.bootstrap import open_ledger
from ledger.store.event_store import Database
from ledger.store.integrity import verify_chain, verify_derived_tables

OUT = Path(__file__).parent / "out"
# The benchmarks' ledgers keep their key material (the ID-number secret) here.
KEYS = OUT / "keys"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'import-bench.db'}")
    args = parser.parse_args()
    database = Database(args.db)
    started = time.perf_counter()
    result = verify_chain(database)
    seconds = time.perf_counter() - started
    print(
        f"chain {'ok' if result.ok else 'BROKEN'}: {result.checked:,} events in "
        f"{seconds:.2f} s = {result.checked / seconds:,.0f} events/s"
    )
    started = time.perf_counter()
    tables = verify_derived_tables(database, open_ledger(database, KEYS))
    seconds = time.perf_counter() - started
    for table in tables:
        status = "ok" if table.ok else table.problem
        print(f"  {table.table}: {status}, {table.rows:,} rows")
    print(
        f"derived tables: {result.checked:,} events in {seconds:.2f} s = "
        f"{result.checked / seconds:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
