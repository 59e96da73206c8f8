"""HTTP load on the demo city: read latency and throughput at a fixed
concurrency (closed loop) and at a fixed offered rate (open loop), and write
throughput for single commands.

    python bench/http_load.py [--scale 0.01] [--workers 2] [--writes 300]
                              [--concurrency 32] [--requests 10000]
                              [--rate 500] [--warm-up 10] [--seconds 30]
                              [--writing 0] [--separate-follower]

Builds the demo city in bench/out/http-bench-SCALE.db (once), starts
``ledger serve`` on a free loopback port and drives it with a lean HTTP/1.1
client (keep-alive connections over uvloop streams, no HTTP library): the
load generator shares the server's two cores, so it must cost little.

The read mix: 1,000 paths drawn from 500 volunteers' hours (50 %) and every
venue's activity and fulfilment over a year (25 % each, whole subtrees).
Each path is read once first ("first reads", each computed afresh), then
the open loop runs a warm-up (10 s) so that every worker has answered the
mix, then the measured phase; with ``--writing W``, orders are posted at W
per second meanwhile and the server's own follower keeps the projections
current, as when venue staff write while dashboards read (each run reports
how far behind the projections were at the end, and the machine's load). The open loop
sends at the offered rate whatever the answers, and times each answer from
the moment it was due, so a server that falls behind cannot hide its queue
(no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
import uvloop

OUT = Path(__file__).parent / "out"
LEDGER = [sys.executable, "-m", "ledger.api.cli.app"]
VOLUNTEERS_SAMPLE = sa.text(
    "SELECT DISTINCT volunteer_id FROM proj_volunteer_hours_entries LIMIT 500"
)
VENUES = sa.text("SELECT DISTINCT venue_id FROM proj_venue_tree_entries")


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length."""

    def __init__(
        self,
        address: tuple[str, int],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        key: str,
    ) -> None:
        self.address, self.key = address, key
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, key: str) -> Connection:
        address = ("127.0.0.1", port)
        reader, writer = await asyncio.open_connection(*address)
        return cls(address, reader, writer, key)

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        try:
            return await self._exchange(method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closes connections idle past its keep-alive timeout;
            # only a read is safe to send again.
            if method != "GET":
                raise
            self.close()
            self.reader, self.writer = await asyncio.open_connection(*self.address)
            return await self._exchange(method, path, body)

    async def _exchange(self, method: str, path: str, body: bytes) -> int:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.key}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def paced(rate: float, seconds: float) -> AsyncIterator[tuple[int, float]]:
    """Each request's number and the moment it is due, ``rate`` a second,
    yielded at that moment (late, if the caller was late)."""
    started = time.perf_counter()
    for index in range(int(rate * seconds)):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield index, due


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(name: str, latencies: list[float], seconds: float, failures: int) -> str:
    return (
        f"{name}: {len(latencies)} answers in {seconds:.1f} s = "
        f"{len(latencies) / seconds:,.0f} req/s; "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms; {failures} not 200"
    )


async def closed_loop(
    port: int, key: str, paths: list[str], concurrency: int
) -> tuple[list[float], float, int]:
    """``concurrency`` connections, each sending its next read when answered."""
    latencies: list[float] = []
    failures = 0
    pending = iter(paths)

    async def client() -> None:
        nonlocal failures
        connection = await Connection.open(port, key)
        try:
            for path in pending:
                started = time.perf_counter()
                status = await connection.request("GET", path)
                latencies.append(time.perf_counter() - started)
                failures += status != 200
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(client() for _ in range(concurrency))), timeout=900
    )
    return latencies, time.perf_counter() - started, failures


async def open_loop(
    port: int, key: str, paths: list[str], rate: float, seconds: float
) -> tuple[list[float], float, int]:
    """Send at ``rate`` per second for ``seconds``, on as many connections as
    the answers need (up to 256), timing each answer from when it was due."""
    latencies: list[float] = []
    failures = 0
    idle: list[Connection] = []
    opened = 0
    available = asyncio.Condition()

    async def borrow() -> Connection:
        nonlocal opened
        async with available:
            while not idle and opened >= 256:
                await available.wait()
            if idle:
                return idle.pop()
            opened += 1
        return await Connection.open(port, key)

    async def give_back(connection: Connection) -> None:
        async with available:
            idle.append(connection)
            available.notify()

    async def one(path: str, due: float) -> None:
        nonlocal failures
        connection = await borrow()
        status = await connection.request("GET", path)
        latencies.append(time.perf_counter() - due)
        failures += status != 200
        await give_back(connection)

    tasks = []
    gc.disable()  # a collection pausing the sender would count as latency
    started = time.perf_counter()
    async for index, due in paced(rate, seconds):
        tasks.append(asyncio.create_task(one(paths[index % len(paths)], due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    elapsed = time.perf_counter() - started
    gc.enable()
    for connection in idle:
        connection.close()
    return latencies, elapsed, failures


def order_command(venue_id: str, index: int) -> bytes:
    command = {
        "type": "post_order",
        "at": "2025-01-05T10:00:00+08:00",
        "actor": {"id": f"resident-{index}", "role": "resident"},
        "order_id": f"BENCH-{time.time_ns()}-{index}",
        "kind": "wish",
        "venue_id": venue_id,
        "category": "culture",
        "description": "benchmark wish",
    }
    return json.dumps(command).encode()


async def write_rate(port: int, key: str, venue_id: str, count: int) -> float:
    """Single commands, one at a time: each answered after its durable commit."""
    connection = await Connection.open(port, key)
    started = time.perf_counter()
    for index in range(count):
        status = await connection.request(
            "POST", "/commands/post_order", order_command(venue_id, index)
        )
        if status != 201:
            raise RuntimeError(f"post_order answered {status}")
    rate = count / (time.perf_counter() - started)
    connection.close()
    return rate


async def paced_writes(
    port: int, key: str, venues: list[str], per_second: float, seconds: float
) -> list[float]:
    """Orders posted at random venues at ``per_second`` (one connection, as a
    venue's staff would), timed from when each was due."""
    rng = random.Random(11)
    connection = await Connection.open(port, key)
    latencies = []
    async for index, due in paced(per_second, seconds):
        command = order_command(rng.choice(venues), index)
        status = await connection.request("POST", "/commands/post_order", command)
        if status != 201:
            raise RuntimeError(f"post_order answered {status}")
        latencies.append(time.perf_counter() - due)
    connection.close()
    return latencies


async def lag(port: int) -> str:
    """The largest projection lag ``/readyz`` reports, in events and seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    projections = json.loads(answer.split(b"\r\n\r\n", 1)[1])["projections"]
    events = max(p["lag_events"] for p in projections)
    seconds = max(p["lag_seconds"] for p in projections)
    return f"{events} events, {seconds:.2f} s behind at most"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def run_ledger(db_url: str, *args: str) -> str:
    done = subprocess.run(
        [*LEDGER, "--db", db_url, *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_paths(db_url: str) -> tuple[list[str], list[str]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        volunteers = list(conn.execute(VOLUNTEERS_SAMPLE).scalars())
        venues = sorted(conn.execute(VENUES).scalars())
    engine.dispose()
    rng = random.Random(7)
    paths = []
    for _ in range(1000):
        choice = rng.random()
        if choice < 0.5:
            paths.append(f"/volunteers/{rng.choice(volunteers)}/hours")
        else:
            read = "activity" if choice < 0.75 else "fulfilment"
            venue = rng.choice(venues)
            paths.append(f"/venues/{venue}/{read}?from=2024-01&to=2024-12")
    return paths, venues


def wait_until_serving(port: int) -> None:
    """Wait for the server to listen (its workers start slowly on a busy
    machine: up to two minutes)."""
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("ledger serve did not start")


async def bench(args: argparse.Namespace, port: int, key: str, db_url: str) -> None:
    paths, venues = read_paths(db_url)
    first = sorted(set(paths), key=paths.index)
    latencies, seconds, failures = await closed_loop(port, key, first, 1)
    print(summary("first reads, one at a time", latencies, seconds, failures))
    if args.rate:
        # Dashboards poll: measure the steady state, after every worker has
        # answered the mix for a while (its first answers are reported above).
        name = f"open loop, {args.rate:.0f} req/s offered"
        if args.writing:
            follower = "`project --follow`" if args.separate_follower else "the server"
            name += f", {args.writing:g} writes/s, {follower} following"
        # Venue staff write meanwhile (from the warm-up on), and the
        # server's follower projects what they write
        writing = args.warm_up + args.seconds
        writes = asyncio.create_task(
            paced_writes(port, key, venues, args.writing, writing)
        )
        await open_loop(port, key, paths, args.rate, args.warm_up)
        latencies, seconds, failures = await open_loop(
            port, key, paths, args.rate, args.seconds
        )
        print(summary(name, latencies, seconds, failures))
        written = await writes
        if written:
            print(summary("  its writes", written, writing, 0))
            print(f"  projections at the end: {await lag(port)}")
    else:
        stream = [paths[i % len(paths)] for i in range(args.requests)]
        latencies, seconds, failures = await closed_loop(
            port, key, stream, args.concurrency
        )
        name = f"closed loop, {args.concurrency} connections"
        print(summary(name, latencies, seconds, failures))
    if args.writes:
        rate = await write_rate(port, key, venues[0], args.writes)
        print(f"writes: single post_order commands, one at a time: {rate:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0, help="Open loop, req/s.")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warm-up", type=float, default=10, help="Seconds, open loop.")
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument(
        "--writing", type=float, default=0, help="Writes/s during the open loop."
    )
    parser.add_argument(
        "--separate-follower",
        action="store_true",
        help="Follow in a `ledger project --follow` process started first (it "
        "holds the follower's lock, so the server's followers wait), as before "
        "the server followed itself.",
    )
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    database = OUT / f"http-bench-{args.scale}.db"
    if not database.exists():
        demo = [*LEDGER, "--db", f"sqlite:///{database}", "demo"]
        subprocess.run([*demo, "--scale", str(args.scale)], check=True)
    # Each run starts from the same city: the writes go to a copy
    run_copy = OUT / f"http-bench-{args.scale}-run.db"
    for stale in (run_copy, *(Path(f"{run_copy}{end}") for end in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    with sqlite3.connect(database) as source, sqlite3.connect(run_copy) as copy:
        source.backup(copy)  # consistent, whatever the source's WAL holds
    # and its key material beside it (the ID-number secret every writer needs)
    run_keys = run_copy.with_suffix(".keys")
    shutil.rmtree(run_keys, ignore_errors=True)
    shutil.copytree(database.with_suffix(".keys"), run_keys)
    db_url = f"sqlite:///{run_copy}"
    key = run_ledger(db_url, "keys", "create", "--role", "admin")
    port = free_port()
    serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
    # The server's startup line and access log (a JSON line a request), kept
    server_log = (OUT / "serve.log").open("w")
    follower = None
    if args.separate_follower:
        follow = [*LEDGER, "--db", db_url, "project", "--follow"]
        follower_log = OUT / "follow.log"
        follower = subprocess.Popen(follow, stdout=follower_log.open("w"))
        while "following" not in follower_log.read_text():
            time.sleep(0.1)
    server = subprocess.Popen([*LEDGER, "--db", db_url, *serve], stderr=server_log)
    try:
        wait_until_serving(port)
        print(f"before: {load()}")
        uvloop.run(bench(args, port, key, db_url))
        print(f"after: {load()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        server_log.close()
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=30)


if __name__ == "__main__":
    main()
