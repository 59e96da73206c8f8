"""What sealing personal data costs: import, rebuild and an hours read, with
this code and with a checkout of the code before it, in the same run.

    python bench/personal_data_cost.py --without /work/main/src [--scale 0.01]

Each round imports the same synthetic city into a fresh SQLite ledger, then
rebuilds every projection and reads the hours of up to 2,000 volunteers,
once with each code (alternating, ``--rounds`` times; each in a process of
its own, the other code first on ``PYTHONPATH``), and prints the rates and
their ratio, sealed over plain. The city is generated once (bench/out/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
HOURS_READS = 2_000


def measure(city: Path, work: Path) -> dict[str, float | str]:
    """One round, in this process, with whichever ``ledger`` it imports."""
    import ledger
    from ledger.application.importer import import_file
    from ledger.bootstrap import open_database, open_ledger
    from ledger.engine import ProjectionEngine
    from ledger.projections.registry import ALL_PROJECTIONS
    from ledger.reads.queries import LedgerReads
    from ledger.store.event_store import head_position

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    database = open_database(f"sqlite:///{work / 'ledger.db'}")
    writer = open_ledger(database, work / "keys")
    started = time.perf_counter()
    summary = import_file(writer, city)
    imported = time.perf_counter() - started
    with database.reading() as conn:
        events = head_position(conn)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    started = time.perf_counter()
    engine.rebuild()
    rebuilt = time.perf_counter() - started
    reads = LedgerReads(database)
    volunteers = [
        json.loads(line)["volunteer_id"]
        for line in city.read_text(encoding="utf-8").splitlines()
        if '"register_volunteer"' in line
    ][:HOURS_READS]
    started = time.perf_counter()
    for volunteer_id in volunteers:
        reads.volunteer_hours(volunteer_id)
    read = time.perf_counter() - started
    database.dispose()
    return {
        "code": str(Path(ledger.__file__).parent),
        "lines_per_s": summary.lines / imported,
        "rebuild_events_per_s": events / rebuilt,
        "hours_reads_per_s": len(volunteers) / read,
    }


def run_round(city: Path, src: Path | None, tag: str) -> dict[str, float | str]:
    environment = dict(os.environ)
    if src is not None:
        environment["PYTHONPATH"] = str(src)
    output = subprocess.run(
        [sys.executable, __file__, "--measure", str(city), "--work", str(OUT / tag)],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float | str] = json.loads(output.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--without", type=Path, help="src/ of the code before")
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.work)))
        return
    if args.without is None:
        parser.error("--without SRC is needed: the code to compare with")
    OUT.mkdir(exist_ok=True)
    city = OUT / f"city-{args.scale}.jsonl"
    if not city.exists():
        from ledger.services.synthetic_city import write_city

        write_city(city, scale=args.scale)
    rounds: dict[str, list[dict[str, float | str]]] = {"sealed": [], "plain": []}
    for _ in range(args.rounds):
        rounds["plain"].append(run_round(city, args.without, "cost-plain"))
        rounds["sealed"].append(run_round(city, None, "cost-sealed"))
    for tag, results in rounds.items():
        print(tag, results[0]["code"])
        for result in results:
            print("   ", {k: round(v) for k, v in result.items() if k != "code"})
    for figure in ("lines_per_s", "rebuild_events_per_s", "hours_reads_per_s"):
        sealed = statistics.median(float(r[figure]) for r in rounds["sealed"])
        plain = statistics.median(float(r[figure]) for r in rounds["plain"])
        print(
            f"{figure}: sealed {sealed:,.0f}, plain {plain:,.0f}, "
            f"sealed/plain {sealed / plain:.3f}"
        )


if __name__ == "__main__":
    main()
