"""Factories for interchange commands: valid by default, overridable per test."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.application.commands import Command, parse_command
from ledger.application.ledger import Ledger, Submission
from ledger.store.event_store import Envelope

# Where each test ledger keeps its key material (its ID-number secret), by
# database URL: a CLI run on it must be told (tests/conftest.py fills it).
KEY_DIRECTORIES: dict[str, Path] = {}

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=CST)

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_serials = itertools.count(1)


def id_number(serial: int | None = None, birth: str = "19900101") -> str:
    """A valid 18-character resident ID number (Kunshan region code)."""
    serial = next(_serials) if serial is None else serial
    body = f"320583{birth}{serial % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(body, _GB11643_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def line(type_: str, at: datetime = T0, **fields: Any) -> dict[str, Any]:
    """One interchange line as a dict (what an import file holds)."""
    actor = fields.pop("actor", {"id": "staff-1", "role": "venue_staff"})
    return {"type": type_, "at": at.isoformat(), "actor": actor, **fields}


def command(type_: str, at: datetime = T0, **fields: Any) -> Command:
    import orjson

    return parse_command(orjson.dumps(line(type_, at, **fields)))


def submission(type_: str, at: datetime = T0, **fields: Any) -> Submission:
    parsed = command(type_, at, **fields)
    return Submission(
        parsed,
        Envelope(
            actor_id=parsed.actor.id,
            actor_role=parsed.actor.role,
            at=parsed.at,
            source="cli",
            correlation_id=uuid.uuid4().hex,
            caller="cli",
            idempotency_key=parsed.key,
        ),
    )


def register_venue(
    venue_id: str, level: str, parent_id: str | None, **kw: Any
) -> Submission:
    return submission(
        "register_venue",
        venue_id=venue_id,
        name=f"venue {venue_id}",
        level=level,
        parent_id=parent_id,
        **kw,
    )


def small_city() -> list[Submission]:
    """A centre, an institute, a station, a point, a team and two volunteers."""
    return [
        register_venue("C", "centre", None),
        register_venue("I1", "institute", "C"),
        register_venue("S1", "station", "I1"),
        register_venue("P1", "point", "S1"),
        submission(
            "register_team", team_id="T1", name="team 1", level="corps", parent_id=None
        ),
        submission(
            "register_volunteer", volunteer_id="V1", name="张三", id_number=id_number()
        ),
        submission(
            "register_volunteer", volunteer_id="V2", name="李四", id_number=id_number()
        ),
    ]


def activity(
    activity_id: str = "A1",
    venue_id: str = "S1",
    starts_at: datetime = T0,
    hours: int = 3,
    capacity: int = 10,
    category: str = "culture",
) -> Submission:
    return submission(
        "publish_activity",
        at=starts_at - timedelta(days=7),
        activity_id=activity_id,
        venue_id=venue_id,
        category=category,
        title=f"activity {activity_id}",
        starts_at=starts_at.isoformat(),
        ends_at=(starts_at + timedelta(hours=hours)).isoformat(),
        capacity=capacity,
    )


def record_all(ledger: Ledger, submissions: list[Submission]) -> None:
    """Record set-up commands, failing loudly if any is not accepted."""
    for result, sub in zip(ledger.execute_batch(submissions), submissions, strict=True):
        assert result.outcome == "accepted", (sub.command.type, result.reason)
