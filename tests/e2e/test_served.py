"""Served for real: ``ledger serve`` (uvicorn) on a free port against
PostgreSQL, keys from ``ledger keys create``, and the five orders (五单) told
over HTTP with httpx — registered, posted, dispatched, accepted, fulfilled,
rated — then read back as a dashboard sees them; and a server of several
workers, each configured as ``ledger serve`` was."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_helpers import body
from tests.factories import T0, id_number

pytestmark = pytest.mark.postgres

LEDGER = Path(sys.executable).parent / "ledger"
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keys_in(directory: Path) -> dict[str, str]:
    """The environment with the ledger's key directory in ``directory``: a
    ledger in PostgreSQL keeps its key material where it is told."""
    return {**os.environ, "LEDGER_KEY_DIRECTORY": str(directory / "keys")}


def ledger_cli(
    url: str, *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(LEDGER), "--db", url, *args],
        cwd=cwd,
        env=env or keys_in(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    """The standard output of a CLI call that must succeed."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def last_line(process: subprocess.Popen[str]) -> str:
    return finished(process).strip().splitlines()[-1]


@pytest.fixture
def empty_postgres(empty_postgres_url: str) -> str:
    """The session's PostgreSQL database, emptied, for the installed CLI."""
    if not LEDGER.exists():
        pytest.skip(f"the ledger CLI is not installed at {LEDGER}")
    return empty_postgres_url


@contextmanager
def serving(
    url: str, cwd: Path, *options: str, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``ledger serve`` on a free port, its base URL once it answers;
    stopped afterwards."""
    port = free_port()
    address = ["--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [str(LEDGER), "--db", url, "serve", *address, *options],
        cwd=cwd,
        env=env or keys_in(cwd),
        stdout=subprocess.DEVNULL,
        stderr=(cwd / "serve.log").open("w"),
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(server, base_url, cwd / "serve.log")
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
    assert server.returncode in (0, -signal.SIGTERM), (cwd / "serve.log").read_text()


@pytest.fixture
def served(empty_postgres: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``ledger serve`` on a free port, and keys by role; stopped afterwards."""
    url = empty_postgres
    admin = last_line(
        ledger_cli(url, "keys", "create", "--role", "admin", cwd=tmp_path)
    )
    others = {
        role: ledger_cli(url, "keys", "create", "--role", role, cwd=tmp_path)
        for role in ("dispatcher", "dashboard")
    }
    with serving(url, tmp_path) as base_url:
        keys = {"admin": admin, **{r: last_line(p) for r, p in others.items()}}
        yield base_url, keys


def wait_until_up(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"ledger serve exited {server.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{base_url}/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"ledger serve did not answer within {STARTUP_SECONDS}s")


class Caller:
    """Posts commands and reads with one key, over the wire."""

    def __init__(self, client: httpx.Client, key: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}
        self.minutes = 0

    def post(self, command: str, key: str | None = None, **fields: Any) -> Any:
        # Each fact a minute after the last: facts are recorded in time order.
        self.minutes += 1
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        response = self.client.post(
            f"/commands/{command}",
            json=body(command, T0 + timedelta(minutes=self.minutes), **fields),
            headers=headers,
        )
        assert response.status_code == 201, (command, response.text)
        return response

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers)


def test_the_five_orders_told_over_http_read_back_as_the_dashboard_sees_them(
    served: tuple[str, dict[str, str]], empty_postgres: str, tmp_path: Path
) -> None:
    base_url, keys = served
    with httpx.Client(base_url=base_url, timeout=30) as client:
        admin = Caller(client, keys["admin"])
        dispatcher = Caller(client, keys["dispatcher"])
        dashboard = Caller(client, keys["dashboard"])
        for venue, level, parent in (
            ("C", "centre", None),
            ("I1", "institute", "C"),
            ("S1", "station", "I1"),
        ):
            admin.post(
                "register_venue",
                venue_id=venue,
                name=venue,
                level=level,
                parent_id=parent,
            )
        for volunteer in ("V1", "V2"):
            admin.post(
                "register_volunteer",
                volunteer_id=volunteer,
                name=volunteer,
                id_number=id_number(),
            )

        dispatcher.minutes = admin.minutes
        first_posted_at = dispatcher.minutes
        posted = []
        for order, kind in (("O1", "wish"), ("O2", "service"), ("O3", "wish")):
            posted.append(
                dispatcher.post(
                    "post_order",
                    key=f"post-{order}",
                    order_id=order,
                    kind=kind,
                    venue_id="S1",
                    category="health",
                    description=f"order {order}",
                )
            )
        # A retry sends the very same request again: the same body, the same time
        resume_at, dispatcher.minutes = dispatcher.minutes, first_posted_at
        retried = dispatcher.post(
            "post_order",
            key="post-O1",
            order_id="O1",
            kind="wish",
            venue_id="S1",
            category="health",
            description="order O1",
        )
        assert retried.headers["Idempotent-Replayed"] == "true"
        assert retried.json() == posted[0].json()
        dispatcher.minutes = resume_at

        dispatcher.post("dispatch_order", order_id="O1", venue_id="S1")
        dispatcher.post("accept_order", order_id="O1", volunteer_ids=["V1", "V2"])
        dispatcher.post("fulfil_order", order_id="O1")
        for rater, stars in (("resident-1", 5), ("resident-2", 3)):
            dispatcher.post(
                "rate", subject="order", subject_id="O1", rater_id=rater, stars=stars
            )
        last = dispatcher.post("withdraw_order", order_id="O2", reason="solved")
        head = last.json()["last_position"]

        finished(ledger_cli(empty_postgres, "project", cwd=tmp_path))

        fulfilment = dashboard.get(
            "/venues/C/fulfilment", **{"from": "2024-03", "to": "2024-03"}
        )
        assert fulfilment.status_code == 200
        figures = fulfilment.json()
        assert figures["position"] == head
        assert len(figures["chain_hash"]) == 64
        assert (figures["posted"], figures["withdrawn"]) == (3, 1)
        assert (figures["fulfilled"], figures["open"]) == (1, 1)
        assert figures["rate"] == 0.5  # 1 fulfilled of 3 posted less 1 withdrawn
        assert figures["satisfaction"] == 0.5  # one of two ratings is 4 or more
        again = dashboard.client.get(
            "/venues/C/fulfilment",
            params={"from": "2024-03", "to": "2024-03"},
            headers={**dashboard.headers, "If-None-Match": fulfilment.headers["ETag"]},
        )
        assert again.status_code == 304
        services = dashboard.get("/venues/C/fulfilment", kind="service").json()
        assert (services["posted"], services["withdrawn"], services["rate"]) == (
            1,
            1,
            None,
        )
        assert dashboard.get("/audit/events").status_code == 403


def test_a_server_of_two_workers_answers_with_the_settings_it_was_started_with(
    empty_postgres: str, tmp_path: Path
) -> None:
    # Given a server of two workers, its database named by --db and its
    # signing key, not at the default path, named by the environment
    url = empty_postgres
    signing = {"LEDGER_KEY_DIRECTORY": str(tmp_path / "elsewhere-keys")}
    environment = {**os.environ, **signing}
    admin = last_line(
        ledger_cli(url, "keys", "create", "--role", "admin", cwd=tmp_path)
    )
    with serving(url, tmp_path, "--workers", "2", env=environment) as base_url:
        # When a venue is registered over HTTP and the chain head is signed
        with httpx.Client(base_url=base_url, timeout=30) as client:
            Caller(client, admin).post(
                "register_venue", venue_id="C", name="C", level="centre", parent_id=None
            )
        finished(ledger_cli(url, "checkpoint", cwd=tmp_path, env=environment))
        # Then every answer, on a connection of its own (either worker's),
        # checks the checkpoint against that venue's event with that key
        answers = [
            httpx.get(
                f"{base_url}/audit/verify",
                headers={"Authorization": f"Bearer {admin}"},
                timeout=30,
            ).json()
            for _ in range(8)
        ]
    assert all(
        (answer["position"], answer["checkpoints"])
        == (1, [{"position": 1, "ok": True, "problem": None}])
        for answer in answers
    ), answers
