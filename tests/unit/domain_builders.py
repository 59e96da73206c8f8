"""Aggregates built in given states, for in-memory tests of the domain rules.

Every builder returns its aggregate *settled*: the events that built it have
been collected, so a test can assert that a refused command triggered none
(``aggregate.collect_events() == []``). ``recorded`` gives the events
triggered since as the ledger records them, for the projections' folds.

Business times: activities start at ``T0`` (2024-03-01 09:00 CST) and last
three hours unless told otherwise; set-up commands (sign-ups, approvals …)
are dated so that a test's own commands dated ``LATER`` come after them.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TypeVar

import orjson
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from ledger.domain.activities import Activity
from ledger.domain.orders import Order
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import SessionStatus, Volunteer
from ledger.engine import RecordedEvent
from tests.factories import T0, id_number

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
BEFORE = T0 - timedelta(days=7)  # when set-up facts (sign-ups) are dated
LATER = T0 + timedelta(days=2)  # after anything a builder records

A = TypeVar("A", bound=Aggregate)


def settled(aggregate: A) -> A:
    """The aggregate with its pending events collected."""
    aggregate.collect_events()
    return aggregate


def event_names(aggregate: Aggregate) -> list[str]:
    """The names of the events the aggregate triggered since it was settled."""
    return [type(e).__name__ for e in aggregate.collect_events()]


# The ledger's mapper (the Ledger adds no transcoding of its own), without
# the ledger's database: it gives the topic and payload an event is stored as.
_MAPPER = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def recorded(
    *aggregates: Aggregate, topics: Collection[str] | None = None
) -> list[RecordedEvent]:
    """The events the aggregates triggered since they were settled, as the
    ledger records them (positions from 1, aggregate after aggregate) and as
    a projection reading ``topics`` (default: every topic) reads them."""
    stored = [
        _MAPPER.to_stored_event(event)
        for aggregate in aggregates
        for event in aggregate.collect_events()
    ]
    return [
        RecordedEvent(
            position, event.topic, str(event.originator_id), orjson.loads(event.state)
        )
        for position, event in enumerate(stored, start=1)
        if topics is None or event.topic in topics
    ]


# --- venues and teams -------------------------------------------------------


def centre(venue_id: str = "C") -> Venue:
    return settled(
        Venue.register(
            venue_id=venue_id, name="昆山市中心", level="centre", parent=None
        )
    )


def venue_of_level(level: str) -> Venue:
    """A venue of ``level`` in a well-formed tree (a base hangs under the centre)."""
    venue = centre()
    path = {
        "centre": [],
        "institute": ["institute"],
        "station": ["institute", "station"],
        "point": ["institute", "station", "point"],
        "base": ["base"],
    }[level]
    for step in path:
        venue = Venue.register(
            venue_id=f"{step}-1", name=f"a {step}", level=step, parent=venue
        )
    return settled(venue)


def team_of_level(level: str) -> Team:
    """A team of ``level`` in a well-formed hierarchy."""
    unit = Team.register(team_id="corps-1", name="总队", level="corps", parent=None)
    for step in {"corps": [], "brigade": ["brigade"], "team": ["brigade", "team"]}[
        level
    ]:
        unit = Team.register(team_id=f"{step}-1", name=step, level=step, parent=unit)
    return settled(unit)


# --- activities and volunteers ----------------------------------------------


def activity(
    activity_id: str = "A1",
    *,
    starts_at: datetime = T0,
    duration: timedelta = 3 * HOUR,
    capacity: int = 10,
    signed_up: tuple[str, ...] = (),
) -> Activity:
    """A published activity, with ``signed_up`` volunteers signed up a week early."""
    published = Activity.publish(
        activity_id=activity_id,
        venue=venue_of_level("station"),
        category="culture",
        title=f"activity {activity_id}",
        starts_at=starts_at,
        ends_at=starts_at + duration,
        capacity=capacity,
        at=starts_at - timedelta(days=14),
    )
    for volunteer_id in signed_up:
        published.sign_up(volunteer_id, starts_at - timedelta(days=7))
    return settled(published)


def volunteer(volunteer_id: str = "V1") -> Volunteer:
    return settled(
        Volunteer.register(
            volunteer_id=volunteer_id,
            name="张三",
            id_number=id_number(),
            phone=None,
            teams=[],
        )
    )


def volunteer_at(
    activity_id: str = "A1", *, starts_at: datetime = T0, duration: timedelta = 3 * HOUR
) -> tuple[Volunteer, Activity]:
    """Volunteer V1 and an activity V1 has signed up for."""
    return volunteer(), activity(
        activity_id, starts_at=starts_at, duration=duration, signed_up=("V1",)
    )


def session_in(
    status: SessionStatus,
    who: Volunteer,
    at_activity: Activity,
    *,
    session_id: str = "S1",
    start: datetime | None = None,
    minutes: int = 60,
) -> Volunteer:
    """Give ``who`` a verified session in ``status``: checked in at ``start``
    (default: the activity's start), checked out ``minutes`` later, then
    approved, rejected or voided a minute apart."""
    start = at_activity.starts_at if start is None else start
    end = start + minutes * MINUTE
    who.check_in(session_id, at_activity, start)
    if status is not SessionStatus.OPEN:
        who.check_out(session_id, at_activity, end)
    if status is SessionStatus.REJECTED:
        who.reject_session(session_id, "no sign-in sheet", end + MINUTE)
    if status in (SessionStatus.APPROVED, SessionStatus.VOIDED):
        who.approve_session(session_id, end + MINUTE)
    if status is SessionStatus.VOIDED:
        who.void_session(session_id, "entered twice", False, end + 2 * MINUTE)
    return settled(who)


def makeup_in(
    status: SessionStatus,
    who: Volunteer,
    at_activity: Activity,
    *,
    session_id: str = "M1",
    minutes: int = 60,
) -> Volunteer:
    """Give ``who`` a make-up session in ``status``, recorded after the activity."""
    if status is SessionStatus.OPEN:
        raise ValueError("a make-up session is never open")
    recorded = at_activity.ends_at + HOUR
    who.record_makeup_hours(
        session_id, at_activity, minutes, "forgot to check in", recorded
    )
    if status is SessionStatus.REJECTED:
        who.reject_session(session_id, "not on the roster", recorded + MINUTE)
    if status in (SessionStatus.APPROVED, SessionStatus.VOIDED):
        who.approve_session(session_id, recorded + MINUTE)
    if status is SessionStatus.VOIDED:
        who.void_session(session_id, "entered twice", False, recorded + 2 * MINUTE)
    return settled(who)


# --- orders -----------------------------------------------------------------

ORDER_STATES = (
    "posted",
    "dispatched",
    "accepted",
    "fulfilled",
    "withdrawn",
    "rejected",
    "expired",
)


def order(state: str = "posted", order_id: str = "O1") -> Order:
    """An order of kind wish in ``state``, each step an hour after the last:
    posted at T0, dispatched to venue S1, accepted by V1, then fulfilled,
    or withdrawn / rejected / expired from the furthest state that allows it."""
    posted = Order.post(
        order_id=order_id,
        kind="wish",
        venue=venue_of_level("station"),
        category="education",
        description="课后辅导",
        at=T0,
    )
    steps = {
        "posted": [],
        "dispatched": ["dispatch"],
        "accepted": ["dispatch", "accept"],
        "fulfilled": ["dispatch", "accept", "fulfil"],
        "withdrawn": ["dispatch", "accept", "withdraw"],
        "rejected": ["dispatch", "reject"],
        "expired": ["dispatch", "accept", "expire"],
    }[state]
    for hours, step in enumerate(steps, start=1):
        at = T0 + hours * HOUR
        if step == "dispatch":
            posted.dispatch(venue_id="S1", team_id=None, at=at)
        elif step == "accept":
            posted.accept(volunteer_ids=["V1"], team_id=None, at=at)
        elif step == "fulfil":
            posted.fulfil(at)
        elif step == "withdraw":
            posted.withdraw("no longer needed", at)
        elif step == "reject":
            posted.reject("not a volunteer service", at)
        elif step == "expire":
            posted.expire(at)
    return settled(posted)
