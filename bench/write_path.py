"""Write path: ``ledger import`` against the ``eventsourcing`` library's own
application recorder, on SQLite and PostgreSQL, in one run.

    python bench/write_path.py [--scale 0.01] [--lines N] [--every 100000]
        [--postgres URL | env LEDGER_BENCH_POSTGRES_URL] [--engines sqlite,postgresql]

For each engine: the first ``--lines`` lines of the synthetic city (seeded,
cached in bench/out/; its lines come in business-time order, so any prefix
is a whole town) are imported into an empty ledger through ``import_file``,
the path of ``ledger import``; then the very events that import stored
(same streams, versions, topics and payloads) are appended through the
library's recorder (``eventsourcing.sqlite`` / ``eventsourcing.postgres``)
in batches of 2,000 into an empty table of its own: the anchor. Printed:
events/s of both and their ratio, the import's rate over each ``--every``
lines along the way (a per-batch lookup that grows with the ledger shows as
a falling rate), the same per CPU second of the writing process (steadier
than wall time on a shared machine, and on SQLite the whole cost), the
import's peak RSS so far at each of those marks (memory that grows with the
file shows as a climbing peak), and its peak RSS at the end (its process
and any worker it started). Each phase runs in a process of its own, so
each peak is its own. Last, how fast the lines are validated alone (no
decision, no SQL): a ceiling for any import validating every line in one
process.

The PostgreSQL URL names a server where the user may create databases: the
script works in a database of its own on it, ``ledger_write_path_bench``
(and ``…_anchor``), made afresh each run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from itertools import islice
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from anchor import append_through_library, fresh_postgres  # bench/, beside this script

from ledger.application.commands import parse_command
from ledger.application.importer import import_file
from ledger.bootstrap import LEDGER_SCHEMA, open_ledger
from ledger.services.synthetic_city import write_city
from ledger.store.event_store import (
    Database,
    events_table,
)
from ledger.store.schema import upgrade_schema

OUT = Path(__file__).parent / "out"
KEYS = OUT / "keys"
BENCH_DATABASE = "ledger_write_path_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--lines", type=int, default=None, help="default: all")
    parser.add_argument("--every", type=int, default=100_000)
    parser.add_argument(
        "--postgres", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL")
    )
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--run", default="", help="a name for this run's databases (runs at once)"
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    town = _town(args.scale, args.lines)
    offsets = _line_offsets(town, args.every)
    print(f"town: {town.name}, {len(offsets) and offsets[-1][0]:,} lines")
    for engine in args.engines.split(","):
        if engine == "sqlite":
            url = f"sqlite:///{OUT / f'write-path{args.run}.db'}"
            anchor_url = f"sqlite:///{OUT / f'write-path{args.run}-anchor.db'}"
        elif args.postgres:
            name = BENCH_DATABASE + args.run
            url = fresh_postgres(args.postgres, name)
            anchor_url = fresh_postgres(args.postgres, name + "_anchor")
        else:
            print("postgresql: skipped (no --postgres URL)")
            continue
        report = OUT / f"write-path{args.run}.rejected.jsonl"
        imported = _in_own_process(_import, url, town, offsets, report)
        anchored = _in_own_process(_anchor, url, anchor_url)
        _print_engine(engine, imported, anchored)
    parsed = _in_own_process(_parse_only, town)
    print(
        f"parsing alone (pydantic validation of each line, the domain's bounds; "
        f"no decision, no SQL): {parsed['lines'] / parsed['seconds']:,.0f} lines "
        "per CPU second"
    )


def _town(scale: float, lines: int | None) -> Path:
    city = OUT / f"city-{scale}.jsonl"
    if not city.exists():
        started = time.perf_counter()
        written = write_city(city, scale=scale)
        print(f"generated {written:,} lines in {time.perf_counter() - started:.1f} s")
    if lines is None:
        return city
    town = OUT / f"city-{scale}-first-{lines}.jsonl"
    if not town.exists():  # written whole, then named: runs side by side
        partial = town.with_suffix(f".{os.getpid()}.partial")
        with city.open("rb") as source, partial.open("wb") as target:
            target.writelines(islice(source, lines))
        partial.rename(town)
    return town


def _line_offsets(path: Path, every: int) -> list[tuple[int, int]]:
    """(lines, bytes) at every ``every``-th line and at the end."""
    marks: list[tuple[int, int]] = []
    size = 0
    number = 0
    with path.open("rb") as source:
        for number, line in enumerate(source, start=1):
            size += len(line)
            if number % every == 0:
                marks.append((number, size))
    if not marks or marks[-1][0] != number:
        marks.append((number, size))
    return marks


def _in_own_process(target: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    queue = context.SimpleQueue()
    process = context.Process(target=_run, args=(queue, target, *args))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


def _run(queue: Any, target: Any, *args: Any) -> None:
    queue.put(target(*args))


def _peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, workers


def _import(
    url: str, town: Path, offsets: list[tuple[int, int]], report: Path
) -> dict[str, Any]:
    database = Database(url)
    database.drop_schema(LEDGER_SCHEMA)
    upgrade_schema(database)
    ledger = open_ledger(database, KEYS)
    read = 0
    pending = list(offsets)
    marks: list[tuple[int, float, float, float]] = []

    def on_progress(size: int) -> None:
        nonlocal read
        read += size
        while pending and read >= pending[0][1]:
            marks.append(
                (
                    pending.pop(0)[0],
                    time.perf_counter(),
                    time.process_time(),
                    _peak_rss_mib()[0],
                )
            )

    started, cpu_started = time.perf_counter(), time.process_time()
    summary = import_file(
        ledger,
        town,
        report_path=report,
        on_progress=on_progress,
    )
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    with database.reading() as conn:
        events = conn.execute(sa.select(sa.func.count()).select_from(events_table))
        stored = int(events.scalar() or 0)
    database.dispose()
    return {
        "summary": summary.summary_line(),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "events": stored,
        "marks": [
            (lines, at - started, cpu - cpu_started, rss)
            for lines, at, cpu, rss in marks
        ],
        "rss": _peak_rss_mib(),
    }


def _parse_only(town: Path) -> dict[str, Any]:
    """What validating each line costs on its own: a ceiling for any import
    that validates every line in one process."""
    started = time.process_time()
    lines = 0
    with town.open("rb") as source:
        for line in source:
            parse_command(line)
            lines += 1
    return {"lines": lines, "seconds": time.process_time() - started}


def _anchor(ledger_url: str, anchor_url: str) -> dict[str, Any]:
    database = Database(ledger_url)
    try:
        return append_through_library(database, anchor_url)
    finally:
        database.dispose()


def _print_engine(
    engine: str, imported: dict[str, Any], anchored: dict[str, Any]
) -> None:
    rate = imported["events"] / imported["seconds"]
    anchor = anchored["events"] / anchored["seconds"]
    own, workers = imported["rss"]
    print(
        f"{engine}: ledger import {imported['summary']}, {imported['events']:,} "
        f"events in {imported['seconds']:.1f} s = {rate:,.0f} events/s; library "
        f"recorder {anchored['events']:,} in {anchored['seconds']:.1f} s = "
        f"{anchor:,.0f} events/s; ratio {rate / anchor:.3f}x; import peak RSS "
        f"{own:,.0f} MiB (workers {workers:,.0f} MiB)"
    )
    cpu_rate = imported["events"] / imported["cpu_seconds"]
    cpu_anchor = anchored["events"] / anchored["cpu_seconds"]
    print(
        f"  per CPU second of the writing process (other processes' load does "
        f"not count; on PostgreSQL the server's work does not either): import "
        f"{cpu_rate:,.0f}, recorder {cpu_anchor:,.0f}, "
        f"ratio {cpu_rate / cpu_anchor:.3f}x"
    )
    previous_lines, previous_at, previous_cpu = 0, 0.0, 0.0
    for lines, at, cpu, rss in imported["marks"]:
        count = lines - previous_lines
        print(
            f"  lines {previous_lines + 1:>9,}-{lines:<9,} "
            f"{count / (at - previous_at):>8,.0f} lines/s, "
            f"{count / (cpu - previous_cpu):>8,.0f} per CPU second, "
            f"peak RSS so far {rss:,.0f} MiB"
        )
        previous_lines, previous_at, previous_cpu = lines, at, cpu


if __name__ == "__main__":
    main()
