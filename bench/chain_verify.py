"""Chain verification rate over the stored events.

    python bench/chain_verify.py [--db URL]

Run ``bench/import_rate.py`` first (about 1.2 M events).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ledger.store.event_store import Database
from ledger.store.integrity import verify_chain

OUT = Path(__file__).parent / "out"


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


if __name__ == "__main__":
    main()
