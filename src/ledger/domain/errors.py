"""Named errors for every rule of the domain.

A command that breaks a rule raises one of these before any event is
triggered, so a rejected command never changes an aggregate or writes a row.
Each error has a stable ``code`` (used in rejection reports and HTTP problem
details), a short ``title`` and a message that says what was wrong and how to
put it right: an English template with named parameters, rendered in the
reader's language from the catalogs (``ledger.domain.messages``).
"""

from __future__ import annotations

from typing import ClassVar

from ledger.domain.messages import TranslatedError


class DomainError(TranslatedError):
    """A command broke a rule of the domain; nothing was written."""

    code: ClassVar[str] = "domain_rule_broken"
    title: ClassVar[str] = "The command breaks a rule"
    http_status: ClassVar[int] = 422


class UnknownReferenceError(DomainError):
    """The command names a venue, team, volunteer, activity, order or session
    that the ledger has never registered."""

    code = "unknown_reference"
    title = "Unknown record"
    http_status = 404


class DuplicateIdError(DomainError):
    """An id that is unique per kind was registered a second time."""

    code = "duplicate_id"
    title = "The id is already in use"
    http_status = 409


class DuplicateIdNumberError(DomainError):
    """A second volunteer was registered with an ID number already in use."""

    code = "duplicate_id_number"
    title = "The ID number is already registered"
    http_status = 409


class InvalidIdNumberError(DomainError):
    """A resident ID number is not 18 characters with a valid check digit."""

    code = "invalid_id_number"
    title = "Invalid resident ID number"


class WrongParentLevelError(DomainError):
    """A venue or team was placed under a parent of the wrong level."""

    code = "wrong_parent_level"
    title = "Wrong parent level"


class InvalidScheduleError(DomainError):
    """An activity's time window or capacity makes no sense."""

    code = "invalid_schedule"
    title = "Invalid schedule"


class CapacityOutOfRangeError(InvalidScheduleError):
    """An activity's capacity is outside 1–10,000 (CONTRACT §1.3)."""

    code = "capacity_out_of_range"
    title = "Capacity out of range"


class CapacityReachedError(DomainError):
    """A sign-up would take an activity past its capacity."""

    code = "capacity_reached"
    title = "The activity is full"
    http_status = 409


class AlreadySignedUpError(DomainError):
    """A volunteer tried to sign up twice for one activity."""

    code = "already_signed_up"
    title = "Already signed up"
    http_status = 409


class NotSignedUpError(DomainError):
    """A volunteer cancelled, or checked in to, an activity without a sign-up."""

    code = "not_signed_up"
    title = "Not signed up"


class ActivityClosedError(DomainError):
    """A sign-up arrived after the activity had ended."""

    code = "activity_closed"
    title = "The activity is closed"


class OutsideActivityWindowError(DomainError):
    """A check-in or check-out lies outside the activity window and its tolerance."""

    code = "outside_activity_window"
    title = "Outside the activity's time window"


class CheckOutBeforeCheckInError(DomainError):
    """A check-out is dated at or before its check-in."""

    code = "check_out_before_check_in"
    title = "Check-out before check-in"


class SessionTooLongError(DomainError):
    """A session would last more than 24 hours."""

    code = "session_too_long"
    title = "The session is too long"


class OverlappingSessionError(DomainError):
    """A session would overlap another live session of the same volunteer."""

    code = "overlapping_session"
    title = "Overlapping sessions"
    http_status = 409


class MakeupExceedsScheduleError(DomainError):
    """Make-up minutes exceed the activity's scheduled duration."""

    code = "makeup_exceeds_schedule"
    title = "Make-up hours exceed the schedule"


class InvalidMinutesError(DomainError):
    """A number of minutes is not a positive whole number in range."""

    code = "invalid_minutes"
    title = "Invalid minutes"


class InvalidTransitionError(DomainError):
    """A command came out of order for the state its subject is in
    (for example fulfilling an order that was never accepted)."""

    code = "invalid_transition"
    title = "Not allowed in the current state"
    http_status = 409


class OutOfOrderError(DomainError):
    """A command is dated before the latest recorded change of its subject.

    Facts about one subject are recorded in business-time order; this is also
    what makes re-importing a file accept nothing new.
    """

    code = "out_of_order"
    title = "Dated before the latest change"
    http_status = 409


class NothingToChangeError(DomainError):
    """A command would record a change that changes nothing."""

    code = "nothing_to_change"
    title = "Nothing to change"
    http_status = 409


class PersonalDataNotSealedError(DomainError):
    """A volunteer registered by an earlier release, whose personal data sits
    unsealed in the events under the hash chain, cannot be erased in place."""

    code = "personal_data_not_sealed"
    title = "Personal data not sealed"
    http_status = 409


class StarsOutOfRangeError(DomainError):
    """A rating is not a whole number of stars from 1 to 5."""

    code = "stars_out_of_range"
    title = "Stars out of range"


class AlreadyRatedError(DomainError):
    """The rater has already rated this subject."""

    code = "already_rated"
    title = "Already rated"
    http_status = 409


class MissingReasonError(DomainError):
    """A command that needs a reason was given a blank one."""

    code = "missing_reason"
    title = "A reason is required"


class InvalidCommandError(DomainError):
    """A command's shape is wrong (missing field, bad type, naive timestamp)."""

    code = "invalid_command"
    title = "Invalid command"


# --- the bounds of CONTRACT §1.3 (``ledger.domain.bounds``) -----------------


class InvalidTimeError(InvalidCommandError):
    """A business time is not ISO 8601 text with a UTC offset (a number, a
    date alone or a time without an offset is not one)."""

    code = "invalid_time"
    title = "Invalid time"


class TimeOutOfRangeError(DomainError):
    """A business time lies outside the years 2000–2099, or its offset
    outside −12:00 to +14:00."""

    code = "time_out_of_range"
    title = "Time out of range"


class TextTooLongError(DomainError):
    """An id, name, title, reason, description, comment or kind is longer than
    its bound."""

    code = "text_too_long"
    title = "Text too long"


class ListTooLongError(DomainError):
    """A list of ids holds more items than its bound."""

    code = "list_too_long"
    title = "List too long"


class NumberOutOfRangeError(DomainError):
    """A number is outside the range the ledger records."""

    code = "number_out_of_range"
    title = "Number out of range"
