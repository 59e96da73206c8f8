"""API write load: commands/s and latency from 32 concurrent clients, with
group commit on and, as the same run's anchor, off.

    python bench/write_load.py [--db URL] [--rate 1000] [--seconds 20]
                               [--clients 32] [--workers 2] [--warm-up 2]

Makes a small ledger (a centre, 4 institutes, 20 stations; a SQLite file in
bench/out by default, or the PostgreSQL database ``--db`` names, emptied
first), then for each setting starts ``ledger serve`` on a free loopback
port (with its own projection follower, as served) and drives it open loop:
``post_order`` commands at ``--rate`` a second, each with an idempotency key
of its own, at random stations, over ``--clients`` keep-alive connections.
A command waits for a free connection when all are busy, and its latency
counts from when it was due, so a server that falls behind cannot hide its
queue. Bounded in count (rate × seconds) and in time (answers not in within
a minute after the last was sent count as errors). Prints, per setting,
commands/s achieved, p50/p95/p99 latency, errors by status, and the load
average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import uvloop
from http_load import (  # bench/, beside this script
    Connection,
    free_port,
    load,
    paced,
    percentile,
    wait_until_serving,
)

from ledger.bootstrap import LEDGER_SCHEMA
from ledger.store.event_store import Database

OUT = Path(__file__).parent / "out"
LEDGER = [sys.executable, "-m", "ledger.api.cli.app"]
INSTITUTES = 4
STATIONS_PER_INSTITUTE = 5
# Answers still missing this long after the last command was sent are errors.
ANSWER_WAIT_SECONDS = 60


def city_lines() -> list[dict[str, object]]:
    """A centre, its institutes and their stations (orders are posted there)."""
    at = "2025-01-01T09:00:00+08:00"
    actor = {"id": "bench", "role": "admin"}
    lines: list[dict[str, object]] = [
        {
            "type": "register_venue",
            "at": at,
            "actor": actor,
            "venue_id": "C",
            "name": "centre",
            "level": "centre",
            "parent_id": None,
        }
    ]
    for i in range(INSTITUTES):
        lines.append(
            {
                "type": "register_venue",
                "at": at,
                "actor": actor,
                "venue_id": f"I{i}",
                "name": f"institute {i}",
                "level": "institute",
                "parent_id": "C",
            }
        )
        for s in range(STATIONS_PER_INSTITUTE):
            lines.append(
                {
                    "type": "register_venue",
                    "at": at,
                    "actor": actor,
                    "venue_id": f"S{i}-{s}",
                    "name": f"station {i}-{s}",
                    "level": "station",
                    "parent_id": f"I{i}",
                }
            )
    return lines


def stations() -> list[str]:
    return [
        f"S{i}-{s}" for i in range(INSTITUTES) for s in range(STATIONS_PER_INSTITUTE)
    ]


def prepare(db_url: str, environment: dict[str, str]) -> str:
    """An empty ledger at ``db_url`` holding the city; an admin key to it."""
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for stale in (path, *(Path(f"{path}{end}") for end in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
    else:
        database = Database(db_url)
        database.drop_schema(LEDGER_SCHEMA)
        database.dispose()
    city = OUT / "write-load-city.jsonl"
    city.write_text("".join(json.dumps(line) + "\n" for line in city_lines()))
    ledger(environment, db_url, "import", str(city))
    return ledger(environment, db_url, "keys", "create", "--role", "admin")


def ledger(environment: dict[str, str], db_url: str, *args: str) -> str:
    """The last line ``ledger --db db_url ARGS`` prints."""
    done = subprocess.run(
        [*LEDGER, "--db", db_url, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
    )
    return done.stdout.strip().splitlines()[-1]


def order_command(run: str, index: int, venue_id: str) -> bytes:
    return json.dumps(
        {
            "at": "2025-01-05T10:00:00+08:00",
            "actor": {"id": f"resident-{index}", "role": "resident"},
            "order_id": f"W{run}-{index}",
            "kind": "wish",
            "venue_id": venue_id,
            "category": "culture",
            "description": "benchmark wish",
            "key": f"write-load-{run}-{index}",
        }
    ).encode()


async def drive(
    port: int, key: str, run: str, rate: float, seconds: float, clients: int
) -> tuple[list[float], float, Counter[str]]:
    """Send at ``rate`` for ``seconds`` over ``clients`` connections; each
    latency from when its command was due."""
    connections = [await Connection.open(port, key) for _ in range(clients)]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)
    venues = stations()
    rng = random.Random(run)
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def one(index: int, due: float) -> None:
        body = order_command(run, index, rng.choice(venues))
        connection = await idle.get()
        try:
            status = await connection.request("POST", "/commands/post_order", body)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            errors[type(error).__name__] += 1
            connection = await Connection.open(port, key)
        else:
            if status == 201:
                latencies.append(time.perf_counter() - due)
            else:
                errors[str(status)] += 1
        idle.put_nowait(connection)

    tasks = []
    gc.disable()  # a collection pausing the sender would count as latency
    started = time.perf_counter()
    async for index, due in paced(rate, seconds):
        tasks.append(asyncio.create_task(one(index, due)))
    _, late = await asyncio.wait(tasks, timeout=ANSWER_WAIT_SECONDS)
    elapsed = time.perf_counter() - started
    gc.enable()
    for task in late:
        task.cancel()
    if late:
        errors["no answer"] += len(late)
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, elapsed, errors


def cpu_seconds(root: int) -> float:
    """CPU time used so far by process ``root`` and its descendants (the
    server's workers), from /proc: what a command costs, however busy the
    machine is with other work."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


def report(
    name: str, latencies: list[float], seconds: float, errors: Counter[str]
) -> str:
    if not latencies:
        return f"{name}: no command accepted; errors {dict(errors)}"
    return (
        f"{name}: {len(latencies)} accepted in {seconds:.1f} s = "
        f"{len(latencies) / seconds:,.0f} commands/s; "
        f"p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; errors {dict(errors) or 0}"
    )


def measure(
    args: argparse.Namespace, environment: dict[str, str], key: str, group: bool
) -> None:
    port = free_port()
    serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
    settings = {**environment, "LEDGER_GROUP_COMMIT": "true" if group else "false"}
    log = (OUT / f"write-load-serve-{'group' if group else 'single'}.log").open("w")
    server = subprocess.Popen(
        [*LEDGER, "--db", args.db, *serve],
        stderr=log,
        env={**os.environ, **settings},
    )
    run = f"{'g' if group else 's'}{time.time_ns() % 10**9}"
    try:
        wait_until_serving(port)
        if args.warm_up:
            uvloop.run(
                drive(port, key, run + "w", args.rate, args.warm_up, args.clients)
            )
        before = load()
        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        latencies, seconds, errors = uvloop.run(
            drive(port, key, run, args.rate, args.seconds, args.clients)
        )
        server_cpu = cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        name = (
            f"group commit {'on ' if group else 'off'} ({args.rate:.0f}/s offered, "
            f"{args.clients} clients, {args.workers} workers)"
        )
        print(report(name, latencies, seconds, errors))
        accepted = max(1, len(latencies))
        print(
            f"  CPU per accepted command: server {server_cpu / accepted * 1000:.2f} "
            f"ms, load generator {client_cpu / accepted * 1000:.2f} ms"
        )
        print(f"  before: {before}; after: {load()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'write-load.db'}")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warm-up", type=float, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only", choices=("on", "off"), help="Measure one setting only."
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    environment = {"LEDGER_KEY_DIRECTORY": str((OUT / "write-load.keys").absolute())}
    key = prepare(args.db, environment)
    for group in (True, False):
        if args.only is None or args.only == ("on" if group else "off"):
            measure(args, environment, key, group)


if __name__ == "__main__":
    main()
