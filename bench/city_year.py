"""A city-year end to end: write the city, import it, project, verify,
checkpoint, an honours run, a city-wide year read, then the HTTP read mix
while writes arrive.

    python bench/city_year.py [--scale 0.1] [--engine postgresql|sqlite]
                              [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
                              [--rate 500] [--seconds 60] [--warm-up 10]
                              [--writing 50] [--workers 2]

Each step runs as its own process (the ``ledger`` command line, or the
server for the read mix), timed, and its peak RSS read from the kernel when
it ends (``wait4``: the process and the children it waited for). The city
is written once per scale to bench/out/ and kept. The database is made
afresh: a SQLite file in bench/out/, or on PostgreSQL a database
``city_year_SCALE`` dropped and created on the server ``--postgres`` names.
After each step the bytes on disk per event are read (the SQLite file and
its WAL; ``pg_database_size`` on PostgreSQL).

The read mix is that of bench/http_load.py (its functions, imported): every
path once, one at a time ("first reads", each computed afresh), then an
open loop at ``--rate`` for a warm-up and ``--seconds`` while orders are
posted at ``--writing`` per second and the server's follower projects them.
Prints a markdown table, and the machine's load before and after. With
``--again`` the last run's ledger is kept and only rebuilt, verified and
read (to measure another release's projections and reads on the same
import).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
import http_load

OUT = Path(__file__).parent / "out"
LEDGER = [sys.executable, "-m", "ledger.api.cli.app"]
RULES = "kunshan"  # of the honours run
CENTRE = "KS-C"  # the synthetic city's centre: a read of it is city-wide
MIB = 1024 * 1024
YEAR = 2024  # the demo's year of service (its default)
READ_ROUNDS = 7  # each read timed as the median of fresh reads (a busy machine)


@dataclass
class Step:
    name: str
    seconds: float
    peak_rss: int  # bytes
    detail: str = ""
    bytes_per_event: float | None = None


def reap(process: subprocess.Popen[bytes]) -> tuple[int, int]:
    """Wait for ``process`` by ``wait4``: its exit code and peak RSS (bytes;
    the largest of it and the children it waited for)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss * 1024  # KiB on Linux


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run ``command`` to its end: its seconds, peak RSS (bytes) and the last
    line it printed; fails on a non-zero exit."""
    output = OUT / "city-year-step.out"
    with output.open("wb") as out, (OUT / "city-year-step.err").open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err)
        code, peak = reap(process)
        seconds = time.perf_counter() - started
    if code != 0:
        errors = (OUT / "city-year-step.err").read_text(errors="replace")
        raise RuntimeError(f"{' '.join(command[2:])} exit {code}: {errors[-2000:]}")
    lines = output.read_text().strip().splitlines()
    # the summary line (name=value …) when there is one, else the last line
    summaries = [line for line in lines if re.match(r"^\w+=\S", line.strip())]
    last = (summaries or lines or [""])[-1].strip()
    return seconds, peak, last


def disk_bytes(db_url: str, database: Path | None) -> int:
    if database is not None:
        ends = ("", "-wal", "-shm")
        return sum(
            Path(f"{database}{end}").stat().st_size
            for end in ends
            if Path(f"{database}{end}").exists()
        )
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())"))
        found = int(size.scalar_one())
    engine.dispose()
    return found


def event_count(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT max(position) FROM ledger_events"))
        count = int(found.scalar() or 0)
    engine.dispose()
    return count


def fresh_database(args: argparse.Namespace) -> tuple[str, Path | None]:
    """An empty database for the run (with ``--again``, the last run's):
    its URL, and its file on SQLite."""
    name = f"city_year_{str(args.scale).replace('.', '_')}"
    if args.engine == "sqlite":
        database = OUT / f"{name}.db"
        for end in ("", "-wal", "-shm"):
            if not args.again:
                Path(f"{database}{end}").unlink(missing_ok=True)
        return f"sqlite:///{database}", database
    if args.again:
        return f"{args.postgres}/{name}", None
    server = sa.create_engine(f"{args.postgres}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    server.dispose()
    return f"{args.postgres}/{name}", None


async def read_mix(
    args: argparse.Namespace, port: int, key: str, db_url: str
) -> list[str]:
    """http_load's read mix: first reads, then the open loop with writes."""
    paths, venues = http_load.read_paths(db_url)
    first = sorted(set(paths), key=paths.index)
    latencies, seconds, failures = await http_load.closed_loop(port, key, first, 1)
    lines = [
        http_load.summary("first reads, one at a time", latencies, seconds, failures)
    ]
    writing = args.warm_up + args.seconds
    writes = asyncio.create_task(
        http_load.paced_writes(port, key, venues, args.writing, writing)
    )
    name = f"open loop, {args.rate:.0f} req/s offered, {args.writing:g} writes/s"
    try:
        await http_load.open_loop(port, key, paths, args.rate, args.warm_up)
        latencies, seconds, failures = await http_load.open_loop(
            port, key, paths, args.rate, args.seconds
        )
        lines.append(http_load.summary(name, latencies, seconds, failures))
    except TimeoutError:  # answers still missing 300 s after the last was sent
        lines.append(f"{name}: the server fell behind (answers 300 s late)")
    written = await writes
    if written:  # none with --writing 0
        lines.append(http_load.summary("its writes", written, writing, 0))
    lines.append(f"projections at the end: {await http_load.lag(port)}")
    return lines


def serve_and_read(
    args: argparse.Namespace, db_url: str, env: dict[str, str]
) -> tuple[float, int, list[str]]:
    """Start ``ledger serve``, run the read mix, stop it: seconds, the
    server's peak RSS (its workers included) and what the mix measured."""
    key = run_measured(
        [*LEDGER, "--db", db_url, "keys", "create", "--role", "admin"], env
    )[2]
    port = http_load.free_port()
    serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
    log = (OUT / "city-year-serve.log").open("w")
    server = subprocess.Popen([*LEDGER, "--db", db_url, *serve], env=env, stderr=log)
    started = time.perf_counter()
    try:
        for _ in range(4):  # a loaded machine starts the workers slowly
            try:
                http_load.wait_until_serving(port)
                break
            except RuntimeError:
                if server.poll() is not None:
                    raise
        lines = uvloop.run(read_mix(args, port, key, db_url))
    finally:
        server.terminate()
        _, peak = reap(server)
        log.close()
    return time.perf_counter() - started, peak, lines


def read_costs(db_url: str, env: dict[str, str], year: int) -> list[str]:
    """Reads in this process, each on a fresh ``LedgerReads`` (no figures
    in memory; the database's pages are, after one unmeasured round), the
    median of ``READ_ROUNDS``: the city-wide year's activity and
    fulfilment as the API answers them, then their figures alone from the
    kept roll-up and, as the anchor, summed from every entry as before; the
    hours leaderboard, kept and summed."""
    os.environ["LEDGER_KEY_DIRECTORY"] = env["LEDGER_KEY_DIRECTORY"]
    from dataclasses import replace

    from ledger.bootstrap import open_database
    from ledger.engine import ProjectionEngine
    from ledger.projections.registry import (
        ORDER_FULFILMENT,
        VENUE_ACTIVITY,
        VOLUNTEER_HOURS,
    )
    from ledger.reads.queries import LedgerReads, VenueQuery

    database = open_database(db_url)
    city = VenueQuery(CENTRE, f"{year}-01", f"{year}-12")

    def figures(projection: Any, summed: bool) -> Callable[[], object]:
        def read() -> object:
            with database.reading() as conn:
                reads = LedgerReads(database)
                scope = reads._venue_scope(conn, projection.name, city)
                selection = scope.selection
                if summed:  # no subtree named: the entries are summed
                    selection = replace(selection, node=None)
                started = time.perf_counter()
                projection.get_venue_figures(conn, selection)
                return time.perf_counter() - started

        return read

    def summed_leaderboard() -> object:
        with database.reading() as conn:
            live = ProjectionEngine.live_state(conn, VOLUNTEER_HOURS.name)
            assert live is not None
            started = time.perf_counter()
            VOLUNTEER_HOURS.get_totals(conn, live.version, live.position)
            return time.perf_counter() - started

    measured = [
        (
            "activity, the whole read",
            lambda: LedgerReads(database).venue_activity(city),
        ),
        ("activity's figures, kept roll-up", figures(VENUE_ACTIVITY, summed=False)),
        ("activity's figures, summed (before)", figures(VENUE_ACTIVITY, summed=True)),
        (
            "fulfilment, the whole read",
            lambda: LedgerReads(database).venue_fulfilment(city),
        ),
        ("fulfilment's figures, kept roll-up", figures(ORDER_FULFILMENT, summed=False)),
        (
            "fulfilment's figures, summed (before)",
            figures(ORDER_FULFILMENT, summed=True),
        ),
        (
            "hours leaderboard, the whole read",
            lambda: LedgerReads(database).hours_leaderboard(),
        ),
        ("hours leaderboard, every volunteer summed (before)", summed_leaderboard),
    ]
    for _, read in measured:  # once unmeasured: compiled statements, pages cached
        read()
    lines = []
    for name, read in measured:
        times = []
        for _ in range(READ_ROUNDS):
            started = time.perf_counter()
            alone = read()  # the figures' own time, when the read says it
            ended = time.perf_counter() - started
            times.append(alone if isinstance(alone, float) else ended)
        median, fastest = statistics.median(times), min(times)
        lines.append(f"{name}: {median * 1000:,.1f} ms (fastest {fastest * 1000:,.1f})")
    database.dispose()
    return lines


def table(steps: list[Step], events: int) -> str:
    rows = [
        "| step | seconds | peak RSS (MiB) | bytes on disk / event | |",
        "|---|---:|---:|---:|---|",
    ]
    for step in steps:
        per_event = (
            "" if step.bytes_per_event is None else f"{step.bytes_per_event:,.0f}"
        )
        rows.append(
            f"| {step.name} | {step.seconds:,.1f} | {step.peak_rss / MIB:,.0f} "
            f"| {per_event} | {step.detail} |"
        )
    rows.append(f"\n{events:,} events in the ledger at the end.")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument(
        "--engine", choices=("postgresql", "sqlite"), default="postgresql"
    )
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432"
    )
    parser.add_argument("--rate", type=float, default=500, help="Reads/s offered.")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warm-up", type=float, default=10)
    parser.add_argument("--writing", type=float, default=50, help="Writes/s.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--again",
        action="store_true",
        help="Keep the last run's ledger (its import): rebuild the projections "
        "with this code, verify, then the reads.",
    )
    parser.add_argument(
        "--reads",
        action="store_true",
        help="Only the reads (in one process, then the HTTP mix) on the last "
        "run's ledger.",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.reads:
        args.again = True
        db_url, _ = fresh_database(args)
        keys = OUT / f"city-year-{args.engine}-{args.scale}.keys"
        env = {**os.environ, "LEDGER_KEY_DIRECTORY": str(keys)}
        print(f"before: {http_load.load()}", flush=True)
        for line in read_costs(db_url, env, YEAR):
            print(f"city-wide year, read in one process: {line}", flush=True)
        seconds, rss, lines = serve_and_read(args, db_url, env)
        print(f"HTTP read mix: {seconds:,.1f} s, server {rss / MIB:,.0f} MiB")
        print("\n".join(lines))
        print(f"after: {http_load.load()}")
        return
    print(f"before: {http_load.load()}", flush=True)
    steps: list[Step] = []
    city = OUT / f"city-{args.scale}.jsonl"
    if not city.exists() and not args.again:
        write = (
            "import sys; from pathlib import Path; "
            "from ledger.services.synthetic_city import write_city; "
            "print(write_city(Path(sys.argv[1]), scale=float(sys.argv[2])))"
        )
        seconds, rss, written = run_measured(
            [sys.executable, "-c", write, str(city), str(args.scale)], dict(os.environ)
        )
        steps.append(Step("write the city", seconds, rss, f"{int(written):,} lines"))
    db_url, database = fresh_database(args)
    keys = OUT / f"city-year-{args.engine}-{args.scale}.keys"
    if not args.again:
        shutil.rmtree(keys, ignore_errors=True)
    env = {**os.environ, "LEDGER_KEY_DIRECTORY": str(keys)}
    year = YEAR
    city_wide = [CENTRE, "--from", f"{year}-01", "--to", f"{year}-12"]
    reads = [
        (f"query {read}, city-wide year (first read)", ["query", read, *city_wide])
        for read in ("activity", "fulfilment")
    ]
    if args.again:
        # the projections as this code makes them, from the first event
        commands = [("rebuild", ["rebuild"]), ("verify", ["verify"]), *reads]
    else:
        commands = [
            ("import", ["import", str(city), "--report", str(OUT / "rejected")]),
            ("project", ["project"]),
            ("verify", ["verify"]),
            ("checkpoint", ["checkpoint", "--out", str(OUT / "checkpoint.json")]),
            ("honours", ["honours", "--as-of", f"{year}-12-31", "--rules", RULES]),
            ("project (the awards)", ["project"]),
            *reads,
        ]
    for name, command in commands:
        seconds, rss, last = run_measured([*LEDGER, "--db", db_url, *command], env)
        per_event = disk_bytes(db_url, database) / max(1, event_count(db_url))
        detail = "" if last.startswith("}") else last.replace("|", "/")  # JSON
        steps.append(Step(name, seconds, rss, detail, per_event))
        print(f"{name}: {seconds:,.1f} s, {rss / MIB:,.0f} MiB; {last}", flush=True)
    for line in read_costs(db_url, env, year):
        print(f"city-wide year, read in one process: {line}", flush=True)
    seconds, rss, lines = serve_and_read(args, db_url, env)
    per_event = disk_bytes(db_url, database) / max(1, event_count(db_url))
    steps.append(
        Step("HTTP read mix (server)", seconds, rss, "; ".join(lines), per_event)
    )
    for line in lines:
        print(line, flush=True)
    print(f"after: {http_load.load()}")
    print(f"\n{args.engine}, --scale {args.scale}:\n")
    print(table(steps, event_count(db_url)))


if __name__ == "__main__":
    main()
