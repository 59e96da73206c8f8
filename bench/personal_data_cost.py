"""What sealing personal data costs: import, rebuild and an hours read, with
this code and with a checkout of the code before it, in the same run.

    python bench/personal_data_cost.py --without <old checkout>/src [--scale 0.01]
    python bench/personal_data_cost.py --mapping

Each round imports the same synthetic city into a fresh SQLite ledger, then
rebuilds every projection and reads the hours of up to 2,000 volunteers,
once with each code (alternating, ``--rounds`` times; each in a process of
its own, the other code first on ``PYTHONPATH``), and prints the rates —
per second of wall time and per second of the process's CPU time, which a
busy machine disturbs less — and their medians' ratio, sealed over plain.
The city is generated once (bench/out/). ``--mapping`` times only what
sealing adds per registration, against the library's plain mapping.
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
FIGURES = (
    "lines_per_s",
    "lines_per_cpu_s",
    "rebuild_events_per_s",
    "rebuild_events_per_cpu_s",
    "hours_reads_per_s",
    "hours_reads_per_cpu_s",
)


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
    started, cpu = time.perf_counter(), time.process_time()
    summary = import_file(writer, city)
    imported = time.perf_counter() - started
    import_cpu = time.process_time() - cpu
    with database.reading() as conn:
        events = head_position(conn)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    started, cpu = time.perf_counter(), time.process_time()
    engine.rebuild()
    rebuilt = time.perf_counter() - started
    rebuild_cpu = time.process_time() - cpu
    reads = LedgerReads(database)
    volunteers = [
        json.loads(line)["volunteer_id"]
        for line in city.read_text(encoding="utf-8").splitlines()
        if '"register_volunteer"' in line
    ][:HOURS_READS]
    started, cpu = time.perf_counter(), time.process_time()
    for volunteer_id in volunteers:
        reads.volunteer_hours(volunteer_id)
    read = time.perf_counter() - started
    read_cpu = time.process_time() - cpu
    database.dispose()
    return {
        "code": str(Path(ledger.__file__).parent),
        "lines_per_s": summary.lines / imported,
        "lines_per_cpu_s": summary.lines / import_cpu,
        "rebuild_events_per_s": events / rebuilt,
        "rebuild_events_per_cpu_s": events / rebuild_cpu,
        "hours_reads_per_s": len(volunteers) / read,
        "hours_reads_per_cpu_s": len(volunteers) / read_cpu,
    }


def mapping_cost(work: Path, count: int = 20_000) -> None:
    """This code only: microseconds per registration stored by the sealing
    mapper (a new data key each) against the library's plain mapping of the
    same events, in one process, interleaved."""
    from uuid import UUID

    from eventsourcing.persistence import Mapper

    from ledger.bootstrap import open_database, open_ledger
    from ledger.domain.volunteers import Volunteer

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ledger = open_ledger(open_database(f"sqlite:///{work / 'l.db'}"), work / "keys")
    events = [
        Volunteer.register(
            volunteer_id=f"M{n:07d}",
            name="朱丽轩",
            id_number="320583197005229440",
            phone="17678871809",
            teams=[],
        ).collect_events()[0]
        for n in range(count)
    ]
    plain: Mapper[UUID] = Mapper(ledger.mapper.transcoder)
    timings: dict[str, list[float]] = {"plain": [], "sealed": []}
    for _ in range(3):
        started = time.process_time()
        for event in events:
            plain.to_stored_event(event)
        timings["plain"].append(time.process_time() - started)
        started = time.process_time()
        for start in range(0, count, 1000):
            ledger.mapper.to_stored_events(events[start : start + 1000])
        timings["sealed"].append(time.process_time() - started)
    for tag, seconds in timings.items():
        print(f"{tag}: {min(seconds) / count * 1e6:.1f} µs CPU per registration")


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
    parser.add_argument(
        "--mapping", action="store_true", help="only the sealing mapper's cost"
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.work)))
        return
    if args.mapping:
        mapping_cost(OUT / "cost-mapping")
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
            print("   ", {k: round(float(v)) for k, v in result.items() if k != "code"})
    for figure in FIGURES:
        sealed = statistics.median(float(r[figure]) for r in rounds["sealed"])
        plain = statistics.median(float(r[figure]) for r in rounds["plain"])
        print(
            f"{figure}: sealed {sealed:,.0f}, plain {plain:,.0f}, "
            f"sealed/plain {sealed / plain:.3f}"
        )


if __name__ == "__main__":
    main()
