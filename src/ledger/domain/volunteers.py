"""Volunteers and their service record: registration, and the service
sessions (签到/签退 check-in and check-out, 补录 make-up hours) with their
approval, corrections and voids.

The volunteer is the consistency boundary for their own time: overlapping
sessions can only be refused by something that sees all of a volunteer's
sessions at once, so sessions are entities inside the volunteer aggregate.
"""

from __future__ import annotations

import re
from bisect import bisect_right, insort
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.activities import Activity
from ledger.domain.bounds import ID, IDS, NAME, SESSION_MINUTES
from ledger.domain.common import (
    ensure_in_time_order,
    from_iso,
    require_reason,
    stream_id,
    to_iso,
    volunteer_stream_id,
    whole_minutes,
)
from ledger.domain.errors import (
    CheckOutBeforeCheckInError,
    DuplicateIdError,
    InvalidIdNumberError,
    InvalidTransitionError,
    MakeupExceedsScheduleError,
    NothingToChangeError,
    OutsideActivityWindowError,
    OverlappingSessionError,
    SessionTooLongError,
    UnknownReferenceError,
)
from ledger.domain.messages import Message
from ledger.domain.teams import Team

MAX_SESSION = timedelta(minutes=SESSION_MINUTES.most)

_ID_NUMBER_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_NUMBER_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_NUMBER_CHECK_CHARACTERS = "10X98765432"


def validate_id_number(id_number: str) -> str:
    """Check an 18-character resident ID number (GB 11643) and its check digit."""
    normalised = id_number.strip().upper()
    if not _ID_NUMBER_SHAPE.match(normalised):
        raise InvalidIdNumberError(
            "a resident ID number has 17 digits followed by a digit or X"
        )
    total = sum(
        int(d) * w for d, w in zip(normalised[:17], _ID_NUMBER_WEIGHTS, strict=True)
    )
    if _ID_NUMBER_CHECK_CHARACTERS[total % 11] != normalised[17]:
        raise InvalidIdNumberError(
            "the resident ID number's check digit does not match its first 17 digits"
        )
    return normalised


class SessionKind(StrEnum):
    VERIFIED = "verified"  # from check-in and check-out
    MAKEUP = "makeup"  # entered afterwards by an organiser


class SessionStatus(StrEnum):
    OPEN = "open"  # checked in, not yet out
    PENDING = "pending"  # awaiting approval
    APPROVED = "approved"
    REJECTED = "rejected"
    VOIDED = "voided"


@dataclass
class ServiceSession:
    """One stretch of service credited to a volunteer at one activity."""

    session_id: str
    volunteer_id: str
    kind: SessionKind
    activity_id: str
    venue_id: str
    category: str
    counted_from: str  # the check-in, or for make-up hours the activity's start
    status: SessionStatus
    minutes: int
    last_changed_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    correction_requested: bool = False

    def is_live(self) -> bool:
        return self.status not in (SessionStatus.REJECTED, SessionStatus.VOIDED)

    def facts(self) -> dict[str, str]:
        """What the session counts for: the events that change its counted
        minutes (approved, corrected, voided) carry these, so each of them
        tells on its own whose service it was, where, of what kind and when."""
        return {
            "volunteer_id": self.volunteer_id,
            "kind": self.kind.value,
            "activity_id": self.activity_id,
            "venue_id": self.venue_id,
            "category": self.category,
            "counted_from": self.counted_from,
        }


class Volunteer(Aggregate):
    """A registered volunteer (志愿者) and their service record.

    Their personal data (name, ID and phone numbers) is None once erased
    (``forget_personal_data``): the key it was sealed with is destroyed, so
    even their registration, replayed, no longer holds it."""

    TOPIC = "Volunteer"

    name: str | None
    id_number: str | None
    phone: str | None

    class Event(Aggregate.Event):
        TOPIC = "Volunteer.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Volunteer.Created"

    @staticmethod
    def create_id(volunteer_id: str) -> UUID:
        return volunteer_stream_id(volunteer_id)

    @classmethod
    def register(
        cls,
        *,
        volunteer_id: str,
        name: str,
        id_number: str,
        phone: str | None,
        teams: list[Team],
    ) -> Volunteer:
        """Register a volunteer with their personal data and team memberships."""
        return cls(
            volunteer_id=ID.check(volunteer_id),
            name=NAME.check(name),
            id_number=validate_id_number(id_number),
            phone=phone,
            team_ids=[team.team_id for team in IDS.check(teams)],
        )

    @event("Registered", topic="Volunteer.Registered")
    def __init__(
        self,
        volunteer_id: str,
        name: str,
        id_number: str,
        phone: str | None,
        team_ids: list[str],
    ) -> None:
        self.volunteer_id = volunteer_id
        self.name = name
        self.id_number = id_number
        self.phone = phone
        self.team_ids = list(team_ids)
        self.sessions: dict[str, ServiceSession] = {}
        # Time taken by live verified sessions: closed ones as sorted
        # (start, end, session id) intervals, and the one still open.
        self._busy: list[tuple[datetime, datetime, str]] = []
        self._open_session_id: str | None = None

    # --- personal data ----------------------------------------------------

    @property
    def personal_data_erased(self) -> bool:
        """Whether the volunteer's personal data is erased: every registration
        holds an ID number, so none means its key is gone — also when the
        record is replayed only up to a point before the erasure."""
        return self.id_number is None

    def forget_personal_data(self, reason: str, at: datetime) -> None:
        """Erase the volunteer's personal data for ever (PIPL): the erasure is
        recorded, and the ledger destroys, with it, the key their data was
        sealed with. Their service record stays whole. Erasing again
        records nothing: there is nothing left to erase."""
        if self.personal_data_erased:
            return
        self._personal_data_erased(reason=require_reason(reason), at=to_iso(at))

    @event("PersonalDataErased", topic="Volunteer.PersonalDataErased")
    def _personal_data_erased(self, reason: str, at: str) -> None:
        self.name = self.id_number = self.phone = None

    # --- sessions -------------------------------------------------------

    def session(self, session_id: str) -> ServiceSession:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise UnknownReferenceError(
                "volunteer '{volunteer_id}' has no session '{session_id}'",
                volunteer_id=self.volunteer_id,
                session_id=session_id,
            ) from None

    def _changing(self, session_id: str, at: datetime) -> ServiceSession:
        session = self.session(session_id)
        ensure_in_time_order(
            at, session.last_changed_at, Message("session '{id}'", id=session_id)
        )
        return session

    def _ensure_new_session_id(self, session_id: str) -> None:
        ID.check(session_id)
        if session_id in self.sessions:
            raise DuplicateIdError(
                "session '{session_id}' is already recorded", session_id=session_id
            )

    def _ensure_free(self, start: datetime, end: datetime | None) -> None:
        """Refuse [start, end) when it meets another session's time (with no
        end, refuse a start inside another session). Sessions are half-open:
        one ending at 12:00 and one starting then do not overlap.

        Busy intervals never overlap each other and are kept sorted by start,
        so only the neighbours of ``start`` need looking at."""
        # A volunteer has at most one open session: the one a check-out closes.
        if end is None and self._open_session_id is not None:
            other = self.sessions[self._open_session_id]
            assert other.started_at is not None
            raise OverlappingSessionError(
                "volunteer '{volunteer_id}' is still checked in to session "
                "'{session_id}' since {since}; check that session out first",
                volunteer_id=self.volunteer_id,
                session_id=other.session_id,
                since=other.started_at.isoformat(),
            )
        after = bisect_right(self._busy, start, key=_interval_start)
        neighbours = self._busy[max(after - 1, 0) : after + 1]
        for other_start, other_end, other_id in neighbours:
            if end is None:
                overlaps = other_start <= start < other_end
            else:
                overlaps = start < other_end and other_start < end
            if overlaps:
                raise OverlappingSessionError(
                    "volunteer '{volunteer_id}' was already serving in session "
                    "'{session_id}' from {start} to {end}",
                    volunteer_id=self.volunteer_id,
                    session_id=other_id,
                    start=other_start.isoformat(),
                    end=other_end.isoformat(),
                )

    def _release_time(self, session: ServiceSession) -> None:
        """A rejected or voided session blocks nothing any more."""
        if session.kind is SessionKind.VERIFIED and session.ended_at is not None:
            interval = (session.started_at, session.ended_at, session.session_id)
            if interval in self._busy:
                self._busy.remove(interval)

    def check_in(self, session_id: str, activity: Activity, at: datetime) -> None:
        """签到: open a verified session at an activity the volunteer signed up for."""
        self._ensure_new_session_id(session_id)
        activity.ensure_check_in_allowed(self.volunteer_id, at)
        for other in self.sessions.values():
            if (
                other.kind is SessionKind.MAKEUP
                and other.activity_id == activity.activity_id
                and other.is_live()
            ):
                raise OverlappingSessionError(
                    "volunteer '{volunteer_id}' was already credited make-up hours "
                    "for activity '{activity_id}' (session '{session_id}'); "
                    "correct that session instead",
                    volunteer_id=self.volunteer_id,
                    activity_id=activity.activity_id,
                    session_id=other.session_id,
                )
        self._ensure_free(at, None)
        self._checked_in(
            session_id=session_id,
            volunteer_id=self.volunteer_id,
            activity_id=activity.activity_id,
            venue_id=activity.venue_id,
            category=activity.category.value,
            at=to_iso(at),
        )

    @event("CheckedIn", topic="Volunteer.CheckedIn")
    def _checked_in(
        self,
        session_id: str,
        volunteer_id: str,
        activity_id: str,
        venue_id: str,
        category: str,
        at: str,
    ) -> None:
        started_at = from_iso(at)
        self._open_session_id = session_id
        self.sessions[session_id] = ServiceSession(
            session_id=session_id,
            volunteer_id=volunteer_id,
            kind=SessionKind.VERIFIED,
            activity_id=activity_id,
            venue_id=venue_id,
            category=category,
            counted_from=at,
            status=SessionStatus.OPEN,
            minutes=0,
            last_changed_at=started_at,
            started_at=started_at,
        )

    def check_out(self, session_id: str, activity: Activity, at: datetime) -> None:
        """签退: close an open session; its minutes are whole minutes served."""
        session = self.session(session_id)
        if session.status is not SessionStatus.OPEN:
            raise InvalidTransitionError(
                "session '{session_id}' is {status}; only an open session can be "
                "checked out",
                session_id=session_id,
                status=Message(session.status.value),
            )
        assert session.started_at is not None
        if at <= session.started_at:
            raise CheckOutBeforeCheckInError(
                "check-out at {at} is not after the check-in at {check_in}",
                at=at.isoformat(),
                check_in=session.started_at.isoformat(),
            )
        if at - session.started_at > MAX_SESSION:
            raise SessionTooLongError(
                "session '{session_id}' would last {duration}; a session may not "
                "exceed 24 hours",
                session_id=session_id,
                duration=at - session.started_at,
            )
        activity.ensure_check_out_allowed(at)
        self._ensure_free(session.started_at, at)
        self._checked_out(
            session_id=session_id,
            at=to_iso(at),
            minutes=whole_minutes(at - session.started_at),
        )

    @event("CheckedOut", topic="Volunteer.CheckedOut")
    def _checked_out(self, session_id: str, at: str, minutes: int) -> None:
        session = self.sessions[session_id]
        session.ended_at = session.last_changed_at = from_iso(at)
        session.minutes = minutes
        session.status = SessionStatus.PENDING
        self._open_session_id = None
        assert session.started_at is not None
        insort(self._busy, (session.started_at, session.ended_at, session_id))

    def record_makeup_hours(
        self,
        session_id: str,
        activity: Activity,
        minutes: int,
        reason: str,
        at: datetime,
    ) -> None:
        """补录: an organiser credits service that was not checked in."""
        self._ensure_new_session_id(session_id)
        _ensure_makeup_minutes(minutes, activity)
        if at < activity.starts_at:
            raise OutsideActivityWindowError(
                "make-up hours dated {at} come before activity '{activity_id}' "
                "starts at {starts_at}",
                at=at.isoformat(),
                activity_id=activity.activity_id,
                starts_at=activity.starts_at.isoformat(),
            )
        for other in self.sessions.values():
            if other.activity_id == activity.activity_id and other.is_live():
                raise NothingToChangeError(
                    "volunteer '{volunteer_id}' already has session '{session_id}' "
                    "at activity '{activity_id}'; correct that session instead of "
                    "adding make-up hours",
                    volunteer_id=self.volunteer_id,
                    session_id=other.session_id,
                    activity_id=activity.activity_id,
                )
        self._makeup_hours_recorded(
            session_id=session_id,
            volunteer_id=self.volunteer_id,
            activity_id=activity.activity_id,
            venue_id=activity.venue_id,
            category=activity.category.value,
            activity_starts_at=to_iso(activity.starts_at),
            minutes=minutes,
            reason=require_reason(reason),
            at=to_iso(at),
        )

    @event("MakeupHoursRecorded", topic="Volunteer.MakeupHoursRecorded")
    def _makeup_hours_recorded(
        self,
        session_id: str,
        volunteer_id: str,
        activity_id: str,
        venue_id: str,
        category: str,
        activity_starts_at: str,
        minutes: int,
        reason: str,
        at: str,
    ) -> None:
        self.sessions[session_id] = ServiceSession(
            session_id=session_id,
            volunteer_id=volunteer_id,
            kind=SessionKind.MAKEUP,
            activity_id=activity_id,
            venue_id=venue_id,
            category=category,
            counted_from=activity_starts_at,
            status=SessionStatus.PENDING,
            minutes=minutes,
            last_changed_at=from_iso(at),
        )

    def approve_session(self, session_id: str, at: datetime) -> None:
        """A pending session starts to count."""
        session = self._changing(session_id, at)
        self._ensure_pending(session, "approved")
        self._session_approved(
            session_id=session_id,
            minutes=session.minutes,
            session=session.facts(),
            at=to_iso(at),
        )

    @event("SessionApproved", topic="Volunteer.SessionApproved")
    def _session_approved(
        self, session_id: str, minutes: int, session: dict[str, str], at: str
    ) -> None:
        record = self.sessions[session_id]
        record.status = SessionStatus.APPROVED
        record.last_changed_at = from_iso(at)

    def reject_session(self, session_id: str, reason: str, at: datetime) -> None:
        """A pending session is refused and will never count. So is a session
        never checked out (the volunteer forgot): rejecting it is the way to
        close it, after which make-up hours can credit the service."""
        session = self._changing(session_id, at)
        if session.status is not SessionStatus.OPEN:
            self._ensure_pending(session, "rejected")
        self._session_rejected(
            session_id=session_id, reason=require_reason(reason), at=to_iso(at)
        )

    @event("SessionRejected", topic="Volunteer.SessionRejected")
    def _session_rejected(self, session_id: str, reason: str, at: str) -> None:
        session = self.sessions[session_id]
        if session.status is SessionStatus.OPEN:
            self._open_session_id = None
        session.status = SessionStatus.REJECTED
        session.last_changed_at = from_iso(at)
        self._release_time(session)

    def request_correction(
        self,
        session_id: str,
        activity: Activity,
        minutes: int,
        reason: str,
        at: datetime,
    ) -> None:
        """The volunteer asks the organiser to fix an approved session's minutes."""
        session = self._changing(session_id, at)
        self._ensure_approved(session, "the subject of a correction request")
        if session.correction_requested:
            raise InvalidTransitionError(
                "session '{session_id}' already has a correction request awaiting "
                "the organiser's decision",
                session_id=session_id,
            )
        _ensure_session_minutes(session, minutes, activity)
        self._correction_requested(
            session_id=session_id,
            minutes=minutes,
            reason=require_reason(reason),
            at=to_iso(at),
        )

    @event("CorrectionRequested", topic="Volunteer.CorrectionRequested")
    def _correction_requested(
        self, session_id: str, minutes: int, reason: str, at: str
    ) -> None:
        session = self.sessions[session_id]
        session.correction_requested = True
        session.last_changed_at = from_iso(at)

    def decline_correction(self, session_id: str, reason: str, at: datetime) -> None:
        """The organiser turns a correction request down, saying why."""
        session = self._changing(session_id, at)
        if not session.correction_requested:
            raise InvalidTransitionError(
                "session '{session_id}' has no correction request to decline",
                session_id=session_id,
            )
        self._correction_declined(
            session_id=session_id, reason=require_reason(reason), at=to_iso(at)
        )

    @event("CorrectionDeclined", topic="Volunteer.CorrectionDeclined")
    def _correction_declined(self, session_id: str, reason: str, at: str) -> None:
        session = self.sessions[session_id]
        session.correction_requested = False
        session.last_changed_at = from_iso(at)

    def correct_session(
        self,
        session_id: str,
        activity: Activity,
        minutes: int,
        reason: str,
        at: datetime,
    ) -> None:
        """Replace an approved session's minutes; it stays approved and keeps
        its kind. Answers any open correction request."""
        session = self._changing(session_id, at)
        self._ensure_approved(session, "corrected")
        _ensure_session_minutes(session, minutes, activity)
        self._session_corrected(
            session_id=session_id,
            minutes=minutes,
            previous_minutes=session.minutes,
            reason=require_reason(reason),
            session=session.facts(),
            at=to_iso(at),
        )

    @event("SessionCorrected", topic="Volunteer.SessionCorrected")
    def _session_corrected(
        self,
        session_id: str,
        minutes: int,
        previous_minutes: int,
        reason: str,
        session: dict[str, str],
        at: str,
    ) -> None:
        record = self.sessions[session_id]
        record.minutes = minutes
        record.correction_requested = False
        record.last_changed_at = from_iso(at)

    def void_session(
        self, session_id: str, reason: str, fraud: bool, at: datetime
    ) -> None:
        """An approved session stops counting; ``fraud`` can bar star ratings."""
        session = self._changing(session_id, at)
        self._ensure_approved(session, "voided")
        self._session_voided(
            session_id=session_id,
            minutes=session.minutes,
            reason=require_reason(reason),
            fraud=fraud,
            session=session.facts(),
            at=to_iso(at),
        )

    @event("SessionVoided", topic="Volunteer.SessionVoided")
    def _session_voided(
        self,
        session_id: str,
        minutes: int,
        reason: str,
        fraud: bool,
        session: dict[str, str],
        at: str,
    ) -> None:
        record = self.sessions[session_id]
        record.status = SessionStatus.VOIDED
        record.correction_requested = False
        record.last_changed_at = from_iso(at)
        self._release_time(record)

    @staticmethod
    def _ensure_pending(session: ServiceSession, action: str) -> None:
        if session.status is not SessionStatus.PENDING:
            raise InvalidTransitionError(
                "session '{session_id}' is {status}; only a pending session "
                "(checked out, or make-up recorded) can be {action}",
                session_id=session.session_id,
                status=Message(session.status.value),
                action=Message(action),
            )

    @staticmethod
    def _ensure_approved(session: ServiceSession, action: str) -> None:
        if session.status is not SessionStatus.APPROVED:
            raise InvalidTransitionError(
                "session '{session_id}' is {status}; only an approved session can "
                "be {action}",
                session_id=session.session_id,
                status=Message(session.status.value),
                action=Message(action),
            )


class Disclosure(Aggregate):
    """That someone was shown volunteers' full ID and phone numbers (an
    admin's read), recorded so that auditors see who read whose personal
    data, and when (the envelope's actor and recording time). It holds no
    personal data itself: the volunteers by id, and what was read."""

    TOPIC = "Disclosure"

    class Event(Aggregate.Event):
        TOPIC = "Disclosure.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Disclosure.Created"

    @staticmethod
    def create_id(access_id: str) -> UUID:
        return stream_id("disclosure", access_id)

    # Named ``access_id``, not ``disclosure_id``: a disclosure is no subject
    # of audit queries of its own; the volunteers it names are.

    @classmethod
    def record(
        cls, *, access_id: str, volunteer_ids: list[str], read: str
    ) -> Disclosure:
        """A disclosure of the personal data of ``volunteer_ids`` through
        ``read`` (an audit query, a roster)."""
        return cls(
            access_id=access_id,
            volunteer_ids=sorted(set(volunteer_ids)),
            read=read,
        )

    @event("PersonalDataRevealed", topic="Disclosure.PersonalDataRevealed")
    def __init__(self, access_id: str, volunteer_ids: list[str], read: str) -> None:
        self.access_id = access_id
        self.volunteer_ids = list(volunteer_ids)
        self.read = read


def _interval_start(interval: tuple[datetime, datetime, str]) -> datetime:
    return interval[0]


def _ensure_session_minutes(
    session: ServiceSession, minutes: int, activity: Activity
) -> None:
    """New minutes for a session: in range for its kind, and a real change."""
    if session.kind is SessionKind.MAKEUP:
        _ensure_makeup_minutes(minutes, activity)
    else:
        SESSION_MINUTES.check(minutes)
    if minutes == session.minutes:
        raise NothingToChangeError(
            "session '{session_id}' already has {minutes} minutes",
            session_id=session.session_id,
            minutes=minutes,
        )


def _ensure_makeup_minutes(minutes: int, activity: Activity) -> None:
    SESSION_MINUTES.check(minutes)
    if minutes > activity.scheduled_minutes:
        raise MakeupExceedsScheduleError(
            "{minutes} make-up minutes exceed the {scheduled} scheduled minutes of "
            "activity '{activity_id}'",
            minutes=minutes,
            scheduled=activity.scheduled_minutes,
            activity_id=activity.activity_id,
        )
