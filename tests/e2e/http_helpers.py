"""Helpers for the HTTP tests: an app on a test database, keys per role, a
small two-institute city, and requests that read like the API's own terms.

The city (recorded straight through the ledger, then projected)::

    C (centre)
    ├── I1 (institute) ── S1 (station) ── P1 (point)     A1 at S1, O1 at S1
    └── I2 (institute) ── S2 (station)                   A2 at S2, O2 at S2

V1 signed up for A1 and has the pending session ``V1-A1``; V2 signed up for
A2 and has the pending session ``V2-A2``. A ``venue_staff`` key is scoped to
I1, a ``volunteer`` key to V1: everything named ``*1`` is inside their
scope, everything named ``*2`` (and the centre C) is outside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger.api.http.access import create_key
from ledger.api.http.app import create_app
from ledger.application.ledger import Ledger, Submission
from ledger.settings import LedgerSettings
from ledger.store.event_store import chain_hash_at, head_position
from tests.factories import (
    T0,
    activity,
    id_number,
    line,
    record_all,
    register_venue,
    submission,
)

PROBLEM_JSON = "application/problem+json"

# Requests are dated a day after the city's facts: facts about one subject
# are recorded in time order.
LATER = T0 + timedelta(days=1)

V1_ID_NUMBER = id_number(101)
V1_PHONE = "13812345678"
V2_ID_NUMBER = id_number(202)

INSTITUTE_IN_SCOPE = "I1"
VOLUNTEER_IN_SCOPE = "V1"

# Every caller of the role matrix: a role with its scope, or no / a bad key.
CALLERS = (
    "admin",
    "auditor",
    "dispatcher",
    "venue_staff",
    "volunteer",
    "dashboard",
    "no key",
    "bad key",
)


def city() -> list[Submission]:
    """Two institutes under one centre, two activities, two sessions, two
    posted orders (see the module docstring)."""
    return [
        register_venue("C", "centre", None),
        register_venue("I1", "institute", "C"),
        register_venue("S1", "station", "I1"),
        register_venue("P1", "point", "S1"),
        register_venue("I2", "institute", "C"),
        register_venue("S2", "station", "I2"),
        submission(
            "register_team", team_id="T1", name="team 1", level="corps", parent_id=None
        ),
        submission(
            "register_volunteer",
            volunteer_id="V1",
            name="张三",
            id_number=V1_ID_NUMBER,
            phone=V1_PHONE,
        ),
        submission(
            "register_volunteer", volunteer_id="V2", name="李四", id_number=V2_ID_NUMBER
        ),
        activity("A1", venue_id="S1"),
        activity("A2", venue_id="S2"),
        submission("sign_up", activity_id="A1", volunteer_id="V1"),
        submission("sign_up", activity_id="A2", volunteer_id="V2"),
        *session("V1-A1", "V1", "A1"),
        *session("V2-A2", "V2", "A2"),
        order("O1", "S1"),
        order("O2", "S2"),
    ]


def session(
    session_id: str, volunteer_id: str, activity_id: str, minutes: int = 120
) -> list[Submission]:
    """Check in at T0 and out ``minutes`` later: a pending session."""
    return [
        submission(
            "check_in",
            at=T0,
            session_id=session_id,
            volunteer_id=volunteer_id,
            activity_id=activity_id,
        ),
        submission(
            "check_out", at=T0 + timedelta(minutes=minutes), session_id=session_id
        ),
    ]


def order(order_id: str, venue_id: str, kind: str = "wish") -> Submission:
    return submission(
        "post_order",
        at=T0 - timedelta(days=1),
        order_id=order_id,
        kind=kind,
        venue_id=venue_id,
        category="health",
        description=f"order {order_id}",
    )


def body(type_: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """A request body: the interchange line without its ``type`` (the path
    names the command)."""
    document = line(type_, at, **fields)
    del document["type"]
    return document


@dataclass
class Api:
    """An app on a test database, with a client and keys by caller name."""

    app: FastAPI
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def ledger(self) -> Ledger:
        ledger: Ledger = self.app.state.ledger
        return ledger

    def key(
        self, role: str, venue: str | None = None, volunteer: str | None = None
    ) -> str:
        return create_key(
            self.ledger.database, role, venue_id=venue, volunteer_id=volunteer
        )

    def headers(self, caller: str) -> dict[str, str]:
        """The Authorization header of a caller of ``CALLERS``."""
        if caller == "no key":
            return {}
        if caller == "bad key":
            return {"Authorization": "Bearer wml_not-a-key-anyone-was-given"}
        return {"Authorization": f"Bearer {self.keys[caller]}"}

    def post(
        self,
        command_type: str,
        caller: str = "admin",
        *,
        idempotency_key: str | None = None,
        at: datetime = LATER,
        **fields: Any,
    ) -> httpx.Response:
        headers = self.headers(caller)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response: httpx.Response = self.client.post(
            f"/commands/{command_type}",
            json=body(command_type, at, **fields),
            headers=headers,
        )
        return response

    def get(
        self,
        path: str,
        caller: str = "admin",
        *,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        **params: Any,
    ) -> httpx.Response:
        """GET ``path``; ``query`` holds parameters that are not names in
        Python (``from``), ``params`` the others (none given: those the path
        itself carries, ``/calendar?month=2024-03``)."""
        response: httpx.Response = self.client.get(
            path,
            params={**(query or {}), **params} or None,
            headers={**self.headers(caller), **(headers or {})},
        )
        return response

    def record(self, submissions: list[Submission]) -> None:
        """Record set-up commands straight through the ledger."""
        record_all(self.ledger, submissions)

    def project(self) -> None:
        """Bring the projections up to date (``ledger project``)."""
        self.app.state.reads.engine.catch_up()

    def head(self) -> int:
        with self.ledger.database.reading() as conn:
            return head_position(conn)

    def chain_hash_at(self, position: int) -> str:
        with self.ledger.database.reading() as conn:
            return chain_hash_at(conn, position)


class InterferingHandlers:
    """Command handlers that let another writer change the same aggregate
    after the command's aggregates were loaded, once."""

    def __init__(self, inner: Any, other_writer: Ledger, interference: Any) -> None:
        self.inner, self.other_writer, self.interference = inner, other_writer, None
        self.pending = interference

    def handle(self, command: Any, unit: Any) -> Any:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            result = self.other_writer.execute(pending)
            assert result.outcome == "accepted", result.reason
        return self.inner.handle(command, unit)


def beaten_to_activity_a3(
    api: Api, handlers: type[InterferingHandlers] = InterferingHandlers
) -> InterferingHandlers:
    """Activity A3 (at S1, LATER), and the ledger's handlers replaced by
    ``handlers`` letting another writer sign V2 up to it once, after the
    command's aggregates were loaded (the caller monkeypatches them in)."""
    api.record([activity("A3", venue_id="S1", starts_at=LATER)])
    other_writer = Ledger(
        api.ledger.database, api.ledger.id_number_digest, api.ledger.vault
    )
    interference = submission("sign_up", at=T0, activity_id="A3", volunteer_id="V2")
    return handlers(api.ledger.handlers, other_writer, interference)


@contextmanager
def open_api(database_url: str, tmp_path: Path, **more: Any) -> Iterator[Api]:
    """An app on ``database_url`` holding the city, projected, with a key
    for every role (venue_staff scoped to I1, volunteer to V1); ``more``
    are further ``LedgerSettings`` fields."""
    settings = LedgerSettings(
        database_url=database_url, key_directory=tmp_path / "keys", **more
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(app, client)
        api.record(city())
        api.project()
        api.keys = {
            "admin": api.key("admin"),
            "auditor": api.key("auditor"),
            "dispatcher": api.key("dispatcher"),
            "venue_staff": api.key("venue_staff", venue=INSTITUTE_IN_SCOPE),
            "volunteer": api.key("volunteer", volunteer=VOLUNTEER_IN_SCOPE),
            "dashboard": api.key("dashboard"),
        }
        try:
            yield api
        finally:
            api.ledger.database.dispose()
            app.state.reads.database.dispose()


def is_problem(response: httpx.Response, status: int, code: str) -> bool:
    """The response is an RFC 9457 problem of ``status`` naming rule ``code``."""
    document = response.json()
    return (
        response.status_code == status
        and response.headers["content-type"].startswith(PROBLEM_JSON)
        and document["status"] == status
        and document["type"].endswith("/" + code)
        and document["code"] == code
    )
