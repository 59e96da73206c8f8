"""One handler per command of the interchange format.

A handler finds the aggregates a command needs, asks the one it changes to
carry the command out (the aggregate checks its rules before it triggers any
event) and returns it. Every command changes exactly one aggregate, so a
refused command leaves all aggregates as they were.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import singledispatchmethod
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.application import commands as c
from ledger.application.unit_of_work import UnitOfWork
from ledger.domain.activities import Activity
from ledger.domain.errors import (
    DuplicateIdError,
    DuplicateIdNumberError,
    UnknownReferenceError,
)
from ledger.domain.honours import Honours
from ledger.domain.orders import Order
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import Volunteer

TAggregate = TypeVar("TAggregate", bound=Aggregate)

SESSION_CLAIM = "session"
ID_NUMBER_CLAIM = "id_number"


def id_number_digest(id_number: str) -> str:
    """Claims hold a digest of the ID number, never the number itself."""
    return hashlib.sha256(f"id_number:{id_number}".encode()).hexdigest()


# The event classes ``@event`` made (mypy does not see them).
_volunteer_events: Any = Volunteer


def claims_of(event: Any) -> list[tuple[str, str]]:
    """The unique values an event takes for its stream: a registration the
    volunteer's ID number (as a digest), a check-in or make-up hours the
    session id. The ledger records them with the event (handlers refuse a
    command whose values are taken), and ``ledger verify`` derives them
    again from the stored events."""
    made_by = type(event)  # by exact type: every event is checked, keep it cheap
    if made_by is _volunteer_events.Registered:
        return [(ID_NUMBER_CLAIM, id_number_digest(event.id_number))]
    if made_by in (_volunteer_events.CheckedIn, _volunteer_events.MakeupHoursRecorded):
        return [(SESSION_CLAIM, event.session_id)]
    return []


def _kind(cls: type[Aggregate]) -> str:
    return str(cls.TOPIC).lower()  # type: ignore[attr-defined]


def require(unit: UnitOfWork, cls: type[TAggregate], domain_id: str) -> TAggregate:
    found = unit.find(cls, domain_id)
    if found is None:
        raise UnknownReferenceError(f"{_kind(cls)} '{domain_id}' is not registered")
    return found


def require_existing(unit: UnitOfWork, cls: type[Aggregate], domain_id: str) -> None:
    """Like ``require``, for a command that only names the aggregate."""
    if not unit.exists(cls, domain_id):
        raise UnknownReferenceError(f"{_kind(cls)} '{domain_id}' is not registered")


def ensure_new(unit: UnitOfWork, cls: type[Aggregate], domain_id: str) -> None:
    if unit.find(cls, domain_id) is not None:
        raise DuplicateIdError(f"{_kind(cls)} '{domain_id}' is already registered")


def session_owner(unit: UnitOfWork, session_id: str) -> Volunteer:
    """The volunteer whose record holds ``session_id``."""
    owner = unit.owner_of(SESSION_CLAIM, session_id)
    volunteer = unit.aggregate_by_stream(owner) if owner else None
    if not isinstance(volunteer, Volunteer):
        raise UnknownReferenceError(f"session '{session_id}' is not recorded")
    return volunteer


def ensure_new_session(unit: UnitOfWork, session_id: str) -> None:
    if unit.owner_of(SESSION_CLAIM, session_id) is not None:
        raise DuplicateIdError(f"session '{session_id}' is already recorded")


@dataclass(frozen=True)
class References:
    """What a command will look up: streams by id, and claims."""

    streams: tuple[UUID, ...] = ()
    claims: tuple[tuple[str, str], ...] = ()
    existing: tuple[UUID, ...] = ()  # only whether they exist


def references(command: Any) -> References:
    """What ``command`` names, so a batch can load it all in a few queries."""
    fields = vars(command)
    streams: list[UUID] = []
    if isinstance(command, c.RecordHonours):
        # Honours are decided from the projections: the volunteer's record
        # needs only to exist.
        return References(
            streams=(Honours.create_id(command.volunteer_id),),
            existing=(Volunteer.create_id(command.volunteer_id),),
        )
    for field_name, cls in REFERENCE_FIELDS.items():
        value = fields.get(field_name)
        if isinstance(value, str):
            streams.append(cls.create_id(value))
    for volunteer_id in fields.get("volunteer_ids") or ():
        streams.append(Volunteer.create_id(volunteer_id))
    for team_id in fields.get("team_ids") or ():
        streams.append(Team.create_id(team_id))
    if isinstance(command, c.Rate):
        subject = Order if command.subject == "order" else Activity
        streams.append(subject.create_id(command.subject_id))
    if isinstance(command, c.RegisterVenue) and command.parent_id:
        streams.append(Venue.create_id(command.parent_id))
    if isinstance(command, c.RegisterTeam) and command.parent_id:
        streams.append(Team.create_id(command.parent_id))
    claims: list[tuple[str, str]] = []
    if isinstance(command, c.RegisterVolunteer):
        claims.append(
            (ID_NUMBER_CLAIM, id_number_digest(command.id_number.strip().upper()))
        )
    session_id = fields.get("session_id")
    if isinstance(session_id, str):
        claims.append((SESSION_CLAIM, session_id))
    return References(tuple(streams), tuple(claims))


REFERENCE_FIELDS: dict[str, type[Aggregate]] = {
    "venue_id": Venue,
    "team_id": Team,
    "volunteer_id": Volunteer,
    "activity_id": Activity,
    "order_id": Order,
}


class CommandHandlers:
    """Carries each command out on the aggregate it changes."""

    @singledispatchmethod
    def handle(self, command: Any, unit: UnitOfWork) -> Aggregate:
        raise TypeError(f"no handler for {type(command).__name__}")

    @handle.register
    def _(self, command: c.RegisterVenue, unit: UnitOfWork) -> Aggregate:
        ensure_new(unit, Venue, command.venue_id)
        parent = require(unit, Venue, command.parent_id) if command.parent_id else None
        venue = Venue.register(
            venue_id=command.venue_id,
            name=command.name,
            level=command.level,
            parent=parent,
            kind=command.kind,
        )
        unit.add(venue)
        return venue

    @handle.register
    def _(self, command: c.RegisterTeam, unit: UnitOfWork) -> Aggregate:
        ensure_new(unit, Team, command.team_id)
        parent = require(unit, Team, command.parent_id) if command.parent_id else None
        team = Team.register(
            team_id=command.team_id,
            name=command.name,
            level=command.level,
            parent=parent,
        )
        unit.add(team)
        return team

    @handle.register
    def _(self, command: c.RegisterVolunteer, unit: UnitOfWork) -> Aggregate:
        ensure_new(unit, Volunteer, command.volunteer_id)
        teams = [require(unit, Team, team_id) for team_id in command.team_ids]
        volunteer = Volunteer.register(
            volunteer_id=command.volunteer_id,
            name=command.name,
            id_number=command.id_number,
            phone=command.phone,
            teams=teams,
        )
        digest = id_number_digest(volunteer.id_number)
        if unit.owner_of(ID_NUMBER_CLAIM, digest) is not None:
            raise DuplicateIdNumberError(
                "another volunteer is already registered with this ID number"
            )
        unit.add(volunteer)
        return volunteer

    @handle.register
    def _(self, command: c.PublishActivity, unit: UnitOfWork) -> Aggregate:
        ensure_new(unit, Activity, command.activity_id)
        activity = Activity.publish(
            activity_id=command.activity_id,
            venue=require(unit, Venue, command.venue_id),
            category=command.category,
            title=command.title,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            capacity=command.capacity,
            at=command.at,
        )
        unit.add(activity)
        return activity

    @handle.register
    def _(self, command: c.SignUp, unit: UnitOfWork) -> Aggregate:
        activity = require(unit, Activity, command.activity_id)
        require(unit, Volunteer, command.volunteer_id)
        activity.sign_up(command.volunteer_id, command.at)
        return activity

    @handle.register
    def _(self, command: c.CancelSignUp, unit: UnitOfWork) -> Aggregate:
        activity = require(unit, Activity, command.activity_id)
        activity.cancel_sign_up(command.volunteer_id, command.at)
        return activity

    @handle.register
    def _(self, command: c.CheckIn, unit: UnitOfWork) -> Aggregate:
        volunteer = require(unit, Volunteer, command.volunteer_id)
        activity = require(unit, Activity, command.activity_id)
        ensure_new_session(unit, command.session_id)
        volunteer.check_in(command.session_id, activity, command.at)
        return volunteer

    @handle.register
    def _(self, command: c.CheckOut, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        session = volunteer.session(command.session_id)
        activity = require(unit, Activity, session.activity_id)
        volunteer.check_out(command.session_id, activity, command.at)
        return volunteer

    @handle.register
    def _(self, command: c.RecordMakeupHours, unit: UnitOfWork) -> Aggregate:
        volunteer = require(unit, Volunteer, command.volunteer_id)
        activity = require(unit, Activity, command.activity_id)
        ensure_new_session(unit, command.session_id)
        volunteer.record_makeup_hours(
            command.session_id, activity, command.minutes, command.reason, command.at
        )
        return volunteer

    @handle.register
    def _(self, command: c.ApproveSession, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        volunteer.approve_session(command.session_id, command.at)
        return volunteer

    @handle.register
    def _(self, command: c.RejectSession, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        volunteer.reject_session(command.session_id, command.reason, command.at)
        return volunteer

    @handle.register
    def _(self, command: c.RequestCorrection, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        activity = require(
            unit, Activity, volunteer.session(command.session_id).activity_id
        )
        volunteer.request_correction(
            command.session_id, activity, command.minutes, command.reason, command.at
        )
        return volunteer

    @handle.register
    def _(self, command: c.DeclineCorrection, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        volunteer.decline_correction(command.session_id, command.reason, command.at)
        return volunteer

    @handle.register
    def _(self, command: c.CorrectSession, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        activity = require(
            unit, Activity, volunteer.session(command.session_id).activity_id
        )
        volunteer.correct_session(
            command.session_id, activity, command.minutes, command.reason, command.at
        )
        return volunteer

    @handle.register
    def _(self, command: c.VoidSession, unit: UnitOfWork) -> Aggregate:
        volunteer = session_owner(unit, command.session_id)
        volunteer.void_session(
            command.session_id, command.reason, command.fraud, command.at
        )
        return volunteer

    @handle.register
    def _(self, command: c.PostOrder, unit: UnitOfWork) -> Aggregate:
        ensure_new(unit, Order, command.order_id)
        order = Order.post(
            order_id=command.order_id,
            kind=command.kind,
            venue=require(unit, Venue, command.venue_id),
            category=command.category,
            description=command.description,
            at=command.at,
        )
        unit.add(order)
        return order

    @handle.register
    def _(self, command: c.DispatchOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        if command.venue_id is not None:
            require(unit, Venue, command.venue_id)
        if command.team_id is not None:
            require(unit, Team, command.team_id)
        order.dispatch(
            venue_id=command.venue_id, team_id=command.team_id, at=command.at
        )
        return order

    @handle.register
    def _(self, command: c.AcceptOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        volunteer_ids = list(dict.fromkeys(command.volunteer_ids or ()))
        for volunteer_id in volunteer_ids:
            require(unit, Volunteer, volunteer_id)
        if command.team_id is not None:
            require(unit, Team, command.team_id)
        order.accept(
            volunteer_ids=volunteer_ids, team_id=command.team_id, at=command.at
        )
        return order

    @handle.register
    def _(self, command: c.FulfilOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        order.fulfil(command.at)
        return order

    @handle.register
    def _(self, command: c.WithdrawOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        order.withdraw(command.reason, command.at)
        return order

    @handle.register
    def _(self, command: c.RejectOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        order.reject(command.reason, command.at)
        return order

    @handle.register
    def _(self, command: c.ExpireOrder, unit: UnitOfWork) -> Aggregate:
        order = require(unit, Order, command.order_id)
        order.expire(command.at)
        return order

    @handle.register
    def _(self, command: c.RecordHonours, unit: UnitOfWork) -> Aggregate:
        require_existing(unit, Volunteer, command.volunteer_id)
        honours = unit.find(Honours, command.volunteer_id)
        if honours is None:
            honours = Honours(volunteer_id=command.volunteer_id)
            unit.add(honours)
        honours.award(
            rules=command.rules,
            cycle=command.cycle,
            stars=command.stars,
            benefits=command.benefits,
            points=command.points,
            as_of=command.as_of.isoformat(),
            position=command.position,
        )
        return honours

    @handle.register
    def _(self, command: c.Rate, unit: UnitOfWork) -> Aggregate:
        subject: Order | Activity
        if command.subject == "order":
            subject = require(unit, Order, command.subject_id)
        else:
            subject = require(unit, Activity, command.subject_id)
        subject.rate(command.rater_id, command.stars, command.comment, command.at)
        return subject


@dataclass(frozen=True)
class CommandScope:
    """Where a command acts and on whose behalf: the venue whose subtree it
    falls in, and the volunteer whose own record it touches (either may be
    None: registering a team concerns no venue, posting an order no
    volunteer). An unknown reference gives None; the command itself will
    then be refused for it."""

    venue_id: str | None
    volunteer_id: str | None


def scope_of(command: Any, unit: UnitOfWork) -> CommandScope:
    """The venue and volunteer ``command`` concerns, looked up as needed."""
    fields = vars(command)
    if isinstance(command, c.RegisterVenue):
        return CommandScope(command.parent_id, None)
    if isinstance(command, c.Rate):
        subject: Activity | Order | None = (
            unit.find(Order, command.subject_id)
            if command.subject == "order"
            else unit.find(Activity, command.subject_id)
        )
        return CommandScope(subject.venue_id if subject else None, command.rater_id)
    volunteer_id = fields.get("volunteer_id")
    if isinstance(fields.get("session_id"), str) and volunteer_id is None:
        owner = unit.owner_of(SESSION_CLAIM, fields["session_id"])
        volunteer = unit.aggregate_by_stream(owner) if owner else None
        if isinstance(volunteer, Volunteer):
            session = volunteer.sessions.get(fields["session_id"])
            return CommandScope(
                session.venue_id if session else None, volunteer.volunteer_id
            )
        return CommandScope(None, None)
    if isinstance(command, (c.PostOrder, c.PublishActivity)):
        return CommandScope(command.venue_id, None)
    if isinstance(fields.get("order_id"), str):
        order = unit.find(Order, fields["order_id"])
        return CommandScope(order.venue_id if order else None, None)
    if isinstance(fields.get("activity_id"), str):
        activity = unit.find(Activity, fields["activity_id"])
        return CommandScope(activity.venue_id if activity else None, volunteer_id)
    return CommandScope(None, volunteer_id)
