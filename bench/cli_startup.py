"""How long the ``ledger`` command takes to start: ``ledger --help``, and a
quick read (``ledger query hours``) of a small demo ledger, each run N times
as a person runs it (a new process each time); prints the median and the
spread of the wall-clock time, with the machine's load average beside them,
and the median CPU time (user + system), which other processes on a busy
machine inflate less.

    python bench/cli_startup.py [--runs 15] [--db URL --volunteer ID]

Without ``--db`` a demo city of scale 0.001 is built in bench/out first.
``python -X importtime -m ledger.api.cli.app --help`` shows where the time
goes (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
LEDGER = [sys.executable, "-m", "ledger.api.cli.app"]


def timed(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Seconds each of ``runs`` runs of ``command`` took, wall-clock and CPU
    (after one unmeasured run, which fills the file cache)."""
    subprocess.run(command, check=True, capture_output=True)
    seconds, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds, cpu


def demo_ledger() -> str:
    """A small demo city's URL, built once in bench/out."""
    path = OUT / "cli-startup.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        subprocess.run(
            [*LEDGER, "--db", url, "demo", "--scale", "0.001"],
            check=True,
            capture_output=True,
            env={**os.environ, "LEDGER_KEY_DIRECTORY": str(OUT / "keys")},
        )
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--db", help="a ledger to read (default: a demo city)")
    parser.add_argument("--volunteer", default="V0000001")
    args = parser.parse_args()
    url = args.db or demo_ledger()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ledger --help": [*LEDGER, "--help"],
        "ledger query hours": [*LEDGER, "--db", url, "query", "hours", args.volunteer],
    }
    if shutil.which("nproc"):
        cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout
        print(f"cores: {cores.strip()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, command in cases.items():
        seconds, cpu = timed(command, args.runs)
        print(
            f"{name:20} median {statistics.median(seconds):.3f} s "
            f"(min {min(seconds):.3f}, max {max(seconds):.3f}, {args.runs} runs); "
            f"CPU median {statistics.median(cpu):.3f} s"
        )
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
