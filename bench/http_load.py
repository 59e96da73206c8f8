"""HTTP load: read latency and throughput at concurrency 32 on the demo city,
and write throughput for single commands.

    python bench/http_load.py [--scale 0.01] [--requests 5000] [--workers 2]

Builds the demo city in bench/out/http-bench.db (once), starts
``ledger serve`` on a free loopback port, and drives it from this process
with 32 concurrent keep-alive connections (bounded in count and time).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

OUT = Path(__file__).parent / "out"
LEDGER = [sys.executable, "-m", "api.cli"]
VOLUNTEERS_SAMPLE = sa.text(
    "SELECT DISTINCT volunteer_id FROM proj_volunteer_hours_entries LIMIT 500"
)
VENUES = sa.text("SELECT venue_id FROM proj_venue_tree_entries")


def run_ledger(db_url: str, *args: str) -> str:
    done = subprocess.run(
        [*LEDGER, "--db", db_url, *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def drive(
    client: httpx.AsyncClient, paths: list[str], requests: int, concurrency: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(paths[index % len(paths)])

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            path = queue.get_nowait()
            started = time.perf_counter()
            response = await client.get(path)
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 200

    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(concurrency))), timeout=600
    )
    return latencies, time.perf_counter() - started, failures


async def paced(
    base: str, key: str, paths: list[str], rate: float, seconds: float
) -> list[float]:
    """Open loop: send at a fixed rate whatever the answers, and time each
    answer from when it was due (so a slow server cannot hide its queue)."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:

        async def one(path: str, due: float) -> None:
            await client.get(path)
            latencies.append(time.perf_counter() - due)

        tasks = []
        started = time.perf_counter()
        for index in range(int(rate * seconds)):
            due = started + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(paths[index % len(paths)], due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    return latencies


def paced_in_process(args: tuple[str, str, list[str], float, float]) -> list[float]:
    return asyncio.run(paced(*args))


async def write_rate(client: httpx.AsyncClient, venue_id: str, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        response = await client.post(
            "/commands/post_order",
            json={
                "type": "post_order",
                "at": "2025-01-05T10:00:00+08:00",
                "actor": {"id": f"resident-{index}", "role": "resident"},
                "order_id": f"BENCH-{time.time_ns()}-{index}",
                "kind": "wish",
                "venue_id": venue_id,
                "category": "culture",
                "description": "benchmark wish",
            },
        )
        response.raise_for_status()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=0, help="Open loop at this many req/s."
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=2, help="Client processes.")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    database = OUT / f"http-bench-{args.scale}.db"
    db_url = f"sqlite:///{database}"
    if not database.exists():
        subprocess.run([*LEDGER, "--db", db_url, "demo", "--scale", str(args.scale)],
                       check=True, capture_output=True)  # fmt: skip
    key = run_ledger(db_url, "keys", "create", "--role", "admin")
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        volunteers = list(conn.execute(VOLUNTEERS_SAMPLE).scalars())
        venues = list(conn.execute(VENUES).scalars())
    engine.dispose()
    rng = random.Random(7)
    paths = []
    for _ in range(1000):
        choice = rng.random()
        if choice < 0.5:
            paths.append(f"/volunteers/{rng.choice(volunteers)}/hours")
        elif choice < 0.75:
            paths.append(
                f"/venues/{rng.choice(venues)}/activity?from=2024-01&to=2024-12"
            )
        else:
            paths.append(
                f"/venues/{rng.choice(venues)}/fulfilment?from=2024-01&to=2024-12"
            )
    port = free_port()
    server = subprocess.Popen(
        [
            *LEDGER,
            "--db",
            db_url,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)

        async def bench() -> None:
            limits = httpx.Limits(max_connections=args.concurrency)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                base_url=base, headers=headers, limits=limits, timeout=30
            ) as client:
                await drive(client, paths, 200, args.concurrency)  # warm up
                latencies, seconds, failures = await drive(
                    client, paths, args.requests, args.concurrency
                )
                print(
                    f"reads: {args.requests} requests, concurrency {args.concurrency}, "
                    f"in {seconds:.1f} s = {args.requests / seconds:,.0f} req/s; "
                    f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
                    f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms; "
                    f"{failures} non-200"
                )
                rate = await write_rate(client, venues[0], 300)
                print(
                    f"writes: single post_order commands, one at a time: {rate:,.0f}/s"
                )

        if args.rate:
            share = args.rate / args.clients
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                runs = pool.map(
                    paced_in_process,
                    [
                        (base, key, paths[i :: args.clients], share, args.seconds)
                        for i in range(args.clients)
                    ],
                )
            latencies = [latency for run in runs for latency in run]
            print(
                f"open loop at {args.rate:.0f} req/s for {args.seconds:.0f} s: "
                f"{len(latencies)} answers; p50 "
                f"{statistics.median(latencies) * 1000:.1f} ms, p99 "
                f"{percentile(latencies, 0.99) * 1000:.1f} ms"
            )
        else:
            asyncio.run(bench())
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
