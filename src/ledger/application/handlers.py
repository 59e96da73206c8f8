"""One handler per command of the interchange format.

A handler finds the aggregates a command needs, asks the one it changes to
carry the command out (the aggregate checks its rules before it triggers any
event) and returns it. Every command changes exactly one aggregate, so a
refused command leaves all aggregates as they were.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
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
    PersonalDataNotSealedError,
    UnknownReferenceError,
)
from ledger.domain.honours import Honours
from ledger.domain.messages import Message
from ledger.domain.orders import Order
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import Volunteer

TAggregate = TypeVar("TAggregate", bound=Aggregate)


class IdNumberDigest:
    """Claims hold a keyed digest of an ID number, never the number itself:
    HMAC-SHA256 under the ledger's secret, so that the ~10^9 plausible
    numbers cannot be tried against it without that secret. The fingerprints
    of keyed commands, which a registration's ID number is part of, are
    keyed with the same secret for the same reason."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __call__(self, id_number: str) -> str:
        return self._keyed(f"id_number:{id_number}".encode())

    def fingerprint(self, command: c.BaseCommand) -> str:
        """What an idempotency key is bound to: HMAC-SHA256 of the command's
        canonical JSON. Fingerprints recorded before they were keyed stay
        as they are (``unkeyed_fingerprint``)."""
        return self._keyed(b"command:" + c.canonical_command(command))

    def _keyed(self, message: bytes) -> str:
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


# The event classes ``@event`` made (mypy does not see them).
_volunteer_events: Any = Volunteer


def claims_of(event: Any, digest: IdNumberDigest) -> list[tuple[str, str]]:
    """The unique values an event takes for its stream: a registration the
    volunteer's ID number (as its ``digest``), a check-in or make-up hours
    the session id. The ledger records them with the event (handlers refuse
    a command whose values are taken), and ``ledger verify`` derives them
    again from the stored events."""
    made_by = type(event)  # by exact type: every event is checked, keep it cheap
    if made_by is _volunteer_events.Registered:
        # An erased registration holds no ID number: its claim was released.
        if event.id_number is None:
            return []
        return [(c.ID_NUMBER.kind, digest(event.id_number))]
    if made_by in (_volunteer_events.CheckedIn, _volunteer_events.MakeupHoursRecorded):
        return [(c.SESSION.kind, event.session_id)]
    return []


def erased_subject_of(aggregate: Aggregate, event: Any) -> str | None:
    """The subject whose personal data ``event`` erases (its data key is
    destroyed with the event), if it erases any."""
    if type(event) is _volunteer_events.PersonalDataErased:
        return str(aggregate.volunteer_id)  # type: ignore[attr-defined]
    return None


def _kind(cls: type[Aggregate]) -> Message:
    return Message(str(cls.TOPIC).lower())  # type: ignore[attr-defined]


def require(unit: UnitOfWork, cls: type[TAggregate], domain_id: str) -> TAggregate:
    found = unit.find(cls, domain_id)
    if found is None:
        raise UnknownReferenceError(
            "{kind} '{id}' is not registered", kind=_kind(cls), id=domain_id
        )
    return found


def require_existing(unit: UnitOfWork, cls: type[Aggregate], domain_id: str) -> None:
    """Like ``require``, for a command that only names the aggregate."""
    if not unit.exists(cls, domain_id):
        raise UnknownReferenceError(
            "{kind} '{id}' is not registered", kind=_kind(cls), id=domain_id
        )


def ensure_new(unit: UnitOfWork, cls: type[Aggregate], domain_id: str) -> None:
    if unit.find(cls, domain_id) is not None:
        raise DuplicateIdError(
            "{kind} '{id}' is already registered", kind=_kind(cls), id=domain_id
        )


def session_holder(unit: UnitOfWork, session_id: str) -> Volunteer | None:
    """The volunteer whose record holds ``session_id``, if any."""
    owner = unit.owner_of(c.SESSION.kind, session_id)
    volunteer = unit.aggregate_by_stream(owner) if owner else None
    return volunteer if isinstance(volunteer, Volunteer) else None


def session_owner(unit: UnitOfWork, session_id: str) -> Volunteer:
    """The volunteer whose record holds ``session_id``; it must be recorded."""
    volunteer = session_holder(unit, session_id)
    if volunteer is None:
        raise UnknownReferenceError(
            "session '{session_id}' is not recorded", session_id=session_id
        )
    return volunteer


def ensure_new_session(unit: UnitOfWork, session_id: str) -> None:
    if unit.owner_of(c.SESSION.kind, session_id) is not None:
        raise DuplicateIdError(
            "session '{session_id}' is already recorded", session_id=session_id
        )


@dataclass(frozen=True)
class References:
    """What a command will look up: streams by id, and claims."""

    streams: tuple[UUID, ...] = ()
    claims: tuple[tuple[str, str], ...] = ()
    existing: tuple[UUID, ...] = ()  # only whether they exist


def references(command: c.BaseCommand, digest: IdNumberDigest) -> References:
    """What ``command`` names, as its class declares, so a batch can load it
    all in a few queries (an ID number by its ``digest``)."""
    streams: list[UUID] = []
    claims: list[tuple[str, str]] = []
    existing: list[UUID] = []
    for field in command.refers_to:
        named = getattr(command, field)
        ids: list[str] = [named] if isinstance(named, str) else list(named or ())
        for reference in command.named_by(field):
            if isinstance(reference, c.Claimed):
                claims.extend(
                    (reference.kind, claim_value(reference, i, digest)) for i in ids
                )
            elif isinstance(reference, c.Existing):
                existing.extend(reference.kind.create_id(i) for i in ids)
            else:
                streams.extend(reference.create_id(i) for i in ids)
    return References(tuple(streams), tuple(claims), tuple(existing))


def claim_value(claim: c.Claimed, value: str, digest: IdNumberDigest) -> str:
    """The value a claim is recorded under: an ID number's digest, of the
    number as registration normalises it."""
    if claim == c.ID_NUMBER:
        return digest(value.strip().upper())
    return value


class CommandHandlers:
    """Carries each command out on the aggregate it changes; ID numbers are
    looked up by ``digest``; ``sealed`` tells whether a volunteer's personal
    data is sealed under a data key of their own (only then can it be
    erased)."""

    def __init__(self, digest: IdNumberDigest, sealed: Callable[[str], bool]) -> None:
        self.digest = digest
        self.sealed = sealed

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
        assert volunteer.id_number is not None  # just registered
        digest = self.digest(volunteer.id_number)
        if unit.owner_of(c.ID_NUMBER.kind, digest) is not None:
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
    def _(self, command: c.ForgetVolunteer, unit: UnitOfWork) -> Aggregate:
        volunteer = require(unit, Volunteer, command.volunteer_id)
        id_number = volunteer.id_number  # None once erased
        # Registered in this batch: sealed, with its key, in the same append.
        stored = not unit.is_new(volunteer)
        if id_number is not None and stored and not self.sealed(volunteer.volunteer_id):
            raise PersonalDataNotSealedError(
                "volunteer '{volunteer_id}' was registered by an earlier release, "
                "which kept personal data unsealed in the events: it cannot be "
                "erased in place; copy the ledger into a sealed one first "
                "(`ledger personal-data copy-sealed`, docs/personal-data.md), then "
                "forget it there",
                volunteer_id=volunteer.volunteer_id,
            )
        volunteer.forget_personal_data(command.reason, command.at)
        if id_number is not None:
            # Released: the person may register again, as a new volunteer.
            unit.release(c.ID_NUMBER.kind, self.digest(id_number))
        return volunteer

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


def scope_of(command: c.BaseCommand, unit: UnitOfWork) -> CommandScope:
    """The venue and volunteer ``command`` concerns, as its class declares
    (``acts_in``, ``acts_for``), looked up as needed."""
    return CommandScope(
        _venue_acted_in(command, unit), _volunteer_acted_for(command, unit)
    )


def _venue_acted_in(command: c.BaseCommand, unit: UnitOfWork) -> str | None:
    """The venue the record named by ``acts_in`` is, or is held at."""
    field = command.acts_in
    named = getattr(command, field) if field else None
    if field is None or not isinstance(named, str):
        return None
    (reference,) = command.named_by(field)
    if reference == c.SESSION:
        holder = session_holder(unit, named)
        session = holder.sessions.get(named) if holder else None
        return session.venue_id if session else None
    if reference is Venue:
        return named
    located = unit.find(reference, named) if isinstance(reference, type) else None
    venue_id: str | None = getattr(located, "venue_id", None)
    return venue_id


def _volunteer_acted_for(command: c.BaseCommand, unit: UnitOfWork) -> str | None:
    """The volunteer ``acts_for`` names, or who holds the session it names."""
    field = command.acts_for
    named = getattr(command, field) if field else None
    if field is None or not isinstance(named, str):
        return None
    if c.SESSION in command.named_by(field):
        holder = session_holder(unit, named)
        return holder.volunteer_id if holder else None
    return named
