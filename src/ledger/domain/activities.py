"""Activities on the monthly calendar (每月有发布), their sign-ups and ratings."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.bounds import CAPACITY, ID, NAME, TEXT
from ledger.domain.common import (
    ensure_in_time_order,
    from_iso,
    require_stars,
    stream_id,
    to_iso,
    whole_minutes,
)
from ledger.domain.errors import (
    ActivityClosedError,
    AlreadyRatedError,
    AlreadySignedUpError,
    CapacityReachedError,
    InvalidCommandError,
    InvalidScheduleError,
    NotSignedUpError,
    OutsideActivityWindowError,
)
from ledger.domain.messages import Message
from ledger.domain.venues import Venue


class Category(StrEnum):
    """The "5+X" service platforms; every activity and order carries one."""

    THEORY = "theory"  # 理论宣讲
    EDUCATION = "education"  # 教育服务
    CULTURE = "culture"  # 文化服务
    SCIENCE = "science"  # 科技科普
    HEALTH = "health"  # 健康促进与体育
    OTHER = "other"  # local extras


CATEGORY_NAMES_ZH: dict[str, str] = {
    Category.THEORY: "理论宣讲",
    Category.EDUCATION: "教育服务",
    Category.CULTURE: "文化服务",
    Category.SCIENCE: "科技科普",
    Category.HEALTH: "健康促进与体育",
    Category.OTHER: "其他",
}


def parse_category(category: str) -> Category:
    try:
        return Category(category)
    except ValueError:
        names = ", ".join(c.value for c in Category)
        raise InvalidCommandError(
            "unknown category '{category}': use one of {names}",
            category=category,
            names=names,
        ) from None


# How far a check-in may come before the scheduled start, and a check-out
# after the scheduled end (people arrive early to set up, and stay to tidy).
WINDOW_TOLERANCE = timedelta(minutes=60)


class Activity(Aggregate):
    """A published activity with a time window and a capacity."""

    TOPIC = "Activity"

    class Event(Aggregate.Event):
        TOPIC = "Activity.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Activity.Created"

    @staticmethod
    def create_id(activity_id: str) -> UUID:
        return stream_id("activity", activity_id)

    @classmethod
    def publish(
        cls,
        *,
        activity_id: str,
        venue: Venue,
        category: str,
        title: str,
        starts_at: datetime,
        ends_at: datetime,
        capacity: int,
        at: datetime,
    ) -> Activity:
        """Publish an activity at ``venue`` to the calendar."""
        if ends_at <= starts_at:
            raise InvalidScheduleError(
                "the activity ends at {ends_at}, which is not after its start "
                "{starts_at}",
                ends_at=ends_at.isoformat(),
                starts_at=starts_at.isoformat(),
            )
        return cls(
            activity_id=ID.check(activity_id),
            venue_id=venue.venue_id,
            category=parse_category(category).value,
            title=NAME.check(title),
            starts_at=to_iso(starts_at),
            ends_at=to_iso(ends_at),
            capacity=CAPACITY.check(capacity),
            at=to_iso(at),
        )

    @event("Published", topic="Activity.Published")
    def __init__(
        self,
        activity_id: str,
        venue_id: str,
        category: str,
        title: str,
        starts_at: str,
        ends_at: str,
        capacity: int,
        at: str,
    ) -> None:
        self.activity_id = activity_id
        self.published_at = from_iso(at)
        self.venue_id = venue_id
        self.category = Category(category)
        self.title = title
        self.starts_at = from_iso(starts_at)
        self.ends_at = from_iso(ends_at)
        self.capacity = capacity
        self.signed_up: set[str] = set()
        self.sign_up_changed_at: dict[str, datetime] = {}
        self.raters: set[str] = set()

    @property
    def scheduled_minutes(self) -> int:
        return whole_minutes(self.ends_at - self.starts_at)

    def _sign_up_of(self, volunteer_id: str) -> Message:
        return Message(
            "the sign-up of '{volunteer_id}' to '{activity_id}'",
            volunteer_id=volunteer_id,
            activity_id=self.activity_id,
        )

    def sign_up(self, volunteer_id: str, at: datetime) -> None:
        """报名: take a place, refusing a second sign-up or one past capacity."""
        ensure_in_time_order(
            at, self.published_at, Message("activity '{id}'", id=self.activity_id)
        )
        if at >= self.ends_at:
            raise ActivityClosedError(
                "activity '{activity_id}' ended at {ends_at}; sign-ups are closed",
                activity_id=self.activity_id,
                ends_at=self.ends_at.isoformat(),
            )
        ensure_in_time_order(
            at,
            self.sign_up_changed_at.get(volunteer_id),
            self._sign_up_of(volunteer_id),
        )
        if volunteer_id in self.signed_up:
            raise AlreadySignedUpError(
                "volunteer '{volunteer_id}' is already signed up for '{activity_id}'",
                volunteer_id=volunteer_id,
                activity_id=self.activity_id,
            )
        if len(self.signed_up) >= self.capacity:
            raise CapacityReachedError(
                "activity '{activity_id}' is full: all {capacity} places are taken",
                activity_id=self.activity_id,
                capacity=self.capacity,
            )
        self._signed_up(volunteer_id=volunteer_id, at=to_iso(at))

    @event("SignedUp", topic="Activity.SignedUp")
    def _signed_up(self, volunteer_id: str, at: str) -> None:
        self.signed_up.add(volunteer_id)
        self.sign_up_changed_at[volunteer_id] = from_iso(at)

    def cancel_sign_up(self, volunteer_id: str, at: datetime) -> None:
        """Give a place back, before the activity is over."""
        if at >= self.ends_at:
            raise ActivityClosedError(
                "activity '{activity_id}' ended at {ends_at}; a sign-up can no "
                "longer be cancelled",
                activity_id=self.activity_id,
                ends_at=self.ends_at.isoformat(),
            )
        ensure_in_time_order(
            at,
            self.sign_up_changed_at.get(volunteer_id),
            self._sign_up_of(volunteer_id),
        )
        if volunteer_id not in self.signed_up:
            raise NotSignedUpError(
                "volunteer '{volunteer_id}' has no sign-up for '{activity_id}' to "
                "cancel",
                volunteer_id=volunteer_id,
                activity_id=self.activity_id,
            )
        self._sign_up_cancelled(volunteer_id=volunteer_id, at=to_iso(at))

    @event("SignUpCancelled", topic="Activity.SignUpCancelled")
    def _sign_up_cancelled(self, volunteer_id: str, at: str) -> None:
        self.signed_up.discard(volunteer_id)
        self.sign_up_changed_at[volunteer_id] = from_iso(at)

    def ensure_check_in_allowed(self, volunteer_id: str, at: datetime) -> None:
        """A check-in needs a sign-up and must fall inside the window."""
        signed_up_at = self.sign_up_changed_at.get(volunteer_id)
        if (
            volunteer_id not in self.signed_up
            or signed_up_at is None
            or at < signed_up_at
        ):
            raise NotSignedUpError(
                "volunteer '{volunteer_id}' must sign up for '{activity_id}' before "
                "checking in",
                volunteer_id=volunteer_id,
                activity_id=self.activity_id,
            )
        earliest = self.starts_at - WINDOW_TOLERANCE
        if not earliest <= at < self.ends_at:
            raise OutsideActivityWindowError(
                "check-in at {at} is outside activity '{activity_id}' ({starts_at} "
                "to {ends_at}, check-in from {earliest})",
                at=at.isoformat(),
                activity_id=self.activity_id,
                starts_at=self.starts_at.isoformat(),
                ends_at=self.ends_at.isoformat(),
                earliest=earliest.isoformat(),
            )

    def ensure_check_out_allowed(self, at: datetime) -> None:
        latest = self.ends_at + WINDOW_TOLERANCE
        if at > latest:
            raise OutsideActivityWindowError(
                "check-out at {at} is after activity '{activity_id}' ended "
                "({ends_at}, check-out until {latest})",
                at=at.isoformat(),
                activity_id=self.activity_id,
                ends_at=self.ends_at.isoformat(),
                latest=latest.isoformat(),
            )

    def rate(
        self, rater_id: str, stars: int, comment: str | None, at: datetime
    ) -> None:
        """群众评单 on an activity: one rating per rater, once it has begun."""
        require_stars(stars)
        ID.check(rater_id)
        if comment is not None:
            TEXT.check(comment)
        if at < self.starts_at:
            raise ActivityClosedError(
                "activity '{activity_id}' starts at {starts_at}; it cannot be rated "
                "before then",
                activity_id=self.activity_id,
                starts_at=self.starts_at.isoformat(),
            )
        if rater_id in self.raters:
            raise AlreadyRatedError(
                "'{rater_id}' has already rated activity '{activity_id}'",
                rater_id=rater_id,
                activity_id=self.activity_id,
            )
        self._rated(rater_id=rater_id, stars=stars, comment=comment)

    @event("Rated", topic="Activity.Rated")
    def _rated(self, rater_id: str, stars: int, comment: str | None) -> None:
        self.raters.add(rater_id)
