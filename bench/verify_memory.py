"""Peak memory of ``ledger verify`` as the ledger grows: a demo city at each
``--scale`` (made once and kept: a SQLite file in bench/out/, or with
``--postgres`` a database ``verify_memory_SCALE`` on that server, dropped
at the end unless ``--keep``), then ``ledger verify``, then two of its
parts alone (the projections' comparison, ``ProjectionEngine.verify``, and
the chain walk), each in a process of its own, timed, its peak RSS read
from the kernel when it ends (as bench/city_year.py measures its steps).

    python bench/verify_memory.py [--scale 0.001 --scale 0.01]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432 [--keep]]

To measure another release's code on the same ledgers, put its source first
on the path: ``PYTHONPATH=OTHER/src python bench/verify_memory.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import sqlalchemy as sa

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


def demo_city(scale: float, postgres: str | None) -> tuple[str, dict[str, str]]:
    """The demo city at ``scale`` (made on first use, in a SQLite file or a
    database ``verify_memory_SCALE`` on the ``postgres`` server): its URL,
    and the environment naming its key directory."""
    name = f"verify_memory_{str(scale).replace('.', '_')}"
    keys = OUT / f"{name}_{'sqlite' if postgres is None else 'postgresql'}.keys"
    env = {**os.environ, "LEDGER_KEY_DIRECTORY": str(keys)}
    if postgres is None:
        database = OUT / f"{name}.db"
        url, made = f"sqlite:///{database}", database.exists()
    else:
        url, made = f"{postgres}/{name}", not server_database(postgres, name, "CREATE")
    if not made:
        shutil.rmtree(keys, ignore_errors=True)  # another ledger's keys
        seconds, _, _ = run_measured(
            [*LEDGER, "--db", url, "demo", "--scale", str(scale)], env
        )
        print(f"demo city at scale {scale} made in {seconds:,.1f} s", flush=True)
    return url, env


def server_database(postgres: str, name: str, verb: str) -> bool:
    """``CREATE`` (unless it exists) or ``DROP`` (if it exists) the
    database ``name`` on the server; whether it did."""
    server = sa.create_engine(f"{postgres}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
        done = (found is None) == (verb == "CREATE")
        if done:
            conn.execute(sa.text(f"{verb} DATABASE {name}"))
    server.dispose()
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, action="append")
    parser.add_argument(
        "--postgres",
        help="Make the cities on this PostgreSQL server (postgresql+psycopg://"
        "USER@HOST:PORT), dropped at the end unless --keep.",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Keep the PostgreSQL databases, for a run with other code.",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    rows = []
    scales = args.scale or [0.001, 0.01]
    for scale in scales:
        url, env = demo_city(scale, args.postgres)
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
    if args.postgres and not args.keep:
        for scale in scales:
            name = f"verify_memory_{str(scale).replace('.', '_')}"
            server_database(args.postgres, name, "DROP")
    print("| scale | events | step | seconds | peak RSS (MiB) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
