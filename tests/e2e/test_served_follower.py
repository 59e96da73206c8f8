"""Served for real, on SQLite and PostgreSQL: ``ledger serve`` keeps the
projections current itself (a write is read back within a second, with no
``ledger project``), one process follows among every worker of every server
on one database, and the server says what it serves in one line, then logs
each request as a JSON line that holds no key and no personal data."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_served import (
    LEDGER,
    Caller,
    keys_in,
    last_line,
    ledger_cli,
    serving,
)

READ_BACK_SECONDS = 1.0  # CONTRACT §4: a write is reflected in reads within 1 s


@pytest.fixture
def ledger_url(database_url: str) -> str:
    if not LEDGER.exists():
        pytest.skip(f"the ledger CLI is not installed at {LEDGER}")
    return database_url


def admin_key(url: str, cwd: Path) -> str:
    return last_line(ledger_cli(url, "keys", "create", "--role", "admin", cwd=cwd))


def register_and_read_back(writer: Caller, reader: Caller, venue_id: str) -> float:
    """Seconds from a venue's registration being answered to a read of it
    that reflects it."""
    written = writer.post(
        "register_venue",
        venue_id=venue_id,
        name=venue_id,
        level="centre",
        parent_id=None,
    )
    answered = time.monotonic()
    position = written.json()["last_position"]
    while True:
        read = reader.get(f"/venues/{venue_id}/activity")
        if read.status_code == 200 and read.json()["position"] >= position:
            return time.monotonic() - answered
        assert time.monotonic() - answered < 30, read.text
        time.sleep(0.05)


def followers(base_url: str) -> float:
    """What a server's ``/metrics`` says of its processes following."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ledger_projection_followers"
    )


def test_a_served_write_is_read_back_within_a_second_and_logged_without_secrets(
    ledger_url: str, tmp_path: Path
) -> None:
    # Given a ledger whose URL holds a password (PostgreSQL here trusts the
    # test's connections whatever password they send)
    url = ledger_url
    if not url.startswith("sqlite"):
        url = sa.make_url(url).set(password="pw-s3cret").render_as_string(False)
    key = admin_key(url, tmp_path)
    # When a venue is registered over HTTP
    with (
        serving(url, tmp_path) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        admin = Caller(client, key)
        seconds = register_and_read_back(admin, admin, "C")
    # Then a read reflects it within a second, with no `ledger project`
    assert seconds <= READ_BACK_SECONDS
    # And the server said what it served, its password masked
    startup, *access = (tmp_path / "serve.log").read_text().splitlines()
    assert startup.startswith("ledger serve: wenming-ledger ")
    assert f"at {base_url} (1 worker)" in startup
    assert "head 0; projections: " in startup
    assert "volunteer_hours 0" in startup
    assert "pw-s3cret" not in startup
    if not url.startswith("sqlite"):
        assert ":***@" in startup
    # And logged each request as a JSON line, with no key in any
    routes = {json.loads(line)["route"] for line in access}
    assert {"/commands/register_venue", "/venues/{venue_id}/activity"} <= routes
    assert not any(key in line or "pw-s3cret" in line for line in access)


def test_one_process_follows_among_two_workers_and_a_second_server(
    ledger_url: str, tmp_path: Path
) -> None:
    # Given a server of two workers and a second server, on one database
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    key = admin_key(ledger_url, tmp_path)
    # (one ledger: one key directory for both, whatever their working ones)
    keys = keys_in(tmp_path)
    with (
        serving(ledger_url, first, "--workers", "2", env=keys) as first_url,
        serving(ledger_url, second, env=keys) as second_url,
    ):
        # When their metrics are read, each answer from either worker
        deadline = time.monotonic() + 30
        while followers(first_url) + followers(second_url) != 1:
            assert time.monotonic() < deadline, "no single follower emerged"
            time.sleep(0.2)
        # Then exactly one process follows, answer after answer
        counts = [followers(first_url) + followers(second_url) for _ in range(6)]
        assert counts == [1] * 6
        # And a write to either server is read back from the other within 1 s
        with (
            httpx.Client(base_url=first_url, timeout=30) as one,
            httpx.Client(base_url=second_url, timeout=30) as other,
        ):
            writer, reader = Caller(other, key), Caller(one, key)
            assert register_and_read_back(writer, reader, "C") <= READ_BACK_SECONDS
            writer, reader = Caller(one, key), Caller(other, key)
            writer.minutes = 1
            assert register_and_read_back(writer, reader, "D") <= READ_BACK_SECONDS


def test_workers_killed_outright_leave_no_follower_counted_and_no_metrics_behind(
    ledger_url: str, tmp_path: Path
) -> None:
    # Given a server of two workers pooling their metrics in a temporary
    # directory of its own
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {**keys_in(tmp_path), "TMPDIR": str(temporary)}
    with serving(ledger_url, tmp_path, "--workers", "2", env=environment) as url:
        (metrics,) = temporary.glob("ledger-metrics-*")
        wait_for_one_follower(url)
        workers = worker_pids(metrics)
        assert len(workers) == 2
        # When both are killed outright (uvicorn starts others in their place)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not worker_pids(metrics) - workers:
            assert time.monotonic() < deadline, "no worker was started again"
            time.sleep(0.2)
        # Then the server again counts exactly one process following: the
        # killed one's gauge is not counted with its successor's
        wait_for_one_follower(url)
        assert [followers(url) for _ in range(6)] == [1] * 6
        assert not worker_pids(metrics) & workers
    # And the stopped server's metrics are removed when the next one starts
    with serving(ledger_url, tmp_path, "--workers", "2", env=environment):
        assert [*temporary.glob("ledger-metrics-*")] != [metrics]
        assert not metrics.exists()


def wait_for_one_follower(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while followers(base_url) != 1:
        assert time.monotonic() < deadline, "no single follower emerged"
        time.sleep(0.2)


def worker_pids(metrics: Path) -> set[int]:
    """The processes whose follower gauges a server's metrics hold."""
    return {int(g.stem.rsplit("_", 1)[-1]) for g in metrics.glob("gauge_live*_*.db")}
