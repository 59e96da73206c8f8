"""Peak memory of ``ledger verify`` as the ledger grows: a demo city at each
``--scale`` (SQLite, made once in bench/out/ and kept), then ``ledger
verify``, then two of its parts alone (the projections' comparison,
``ProjectionEngine.verify``, and the chain walk), each in a process of its
own, timed, its peak RSS read from the kernel when it ends (as
bench/city_year.py measures its steps).

    python bench/verify_memory.py [--scale 0.001 --scale 0.01]

To measure another release's code on the same ledgers, put its source first
on the path: ``PYTHONPATH=OTHER/src python bench/verify_memory.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from city_year import LEDGER, MIB, OUT, event_count, run_measured

# Parts of ``ledger verify`` run alone, each given the database URL.
PARTS = {
    "projections only": """
import sys
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import Database
results = ProjectionEngine(Database(sys.argv[1]), ALL_PROJECTIONS).verify()
print("ok" if all(result.ok for result in results) else "MISMATCH")
""",
    "chain walk only": """
import sys
from ledger.store.event_store import Database
from ledger.store.integrity import verify_chain
print(verify_chain(Database(sys.argv[1])))
""",
}


def demo_city(scale: float) -> tuple[str, dict[str, str]]:
    """The demo city at ``scale`` (made on first use): its URL, and the
    environment naming its key directory."""
    database = OUT / f"verify-memory-{scale}.db"
    env = {
        **os.environ,
        "LEDGER_KEY_DIRECTORY": str(OUT / f"verify-memory-{scale}.keys"),
    }
    url = f"sqlite:///{database}"
    if not database.exists():
        seconds, _, _ = run_measured(
            [*LEDGER, "--db", url, "demo", "--scale", str(scale)], env
        )
        print(f"demo city at scale {scale} made in {seconds:,.1f} s", flush=True)
    return url, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, action="append")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for scale in args.scale or [0.001, 0.01]:
        url, env = demo_city(scale)
        events = event_count(url)
        steps = {
            "ledger verify": [*LEDGER, "--db", url, "verify"],
            **{part: [sys.executable, "-c", code, url] for part, code in PARTS.items()},
        }
        for step, command in steps.items():
            seconds, peak, last = run_measured(command, env)
            mib = peak / MIB
            rows.append(
                f"| {scale} | {events:,} | {step} | {seconds:,.1f} | {mib:,.0f} |"
            )
            print(
                f"{scale} {step}: {seconds:,.1f} s, {mib:,.0f} MiB; {last}",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")
    print("| scale | events | step | seconds | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
