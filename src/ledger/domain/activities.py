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
            f"unknown category '{category}': use one of {names}"
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
                f"the activity ends at {ends_at.isoformat()}, which is not after "
                f"its start {starts_at.isoformat()}"
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

    def sign_up(self, volunteer_id: str, at: datetime) -> None:
        """报名: take a place, refusing a second sign-up or one past capacity."""
        ensure_in_time_order(at, self.published_at, f"activity '{self.activity_id}'")
        if at >= self.ends_at:
            raise ActivityClosedError(
                f"activity '{self.activity_id}' ended at {self.ends_at.isoformat()}; "
                "sign-ups are closed"
            )
        ensure_in_time_order(
            at,
            self.sign_up_changed_at.get(volunteer_id),
            f"the sign-up of '{volunteer_id}' to '{self.activity_id}'",
        )
        if volunteer_id in self.signed_up:
            raise AlreadySignedUpError(
                f"volunteer '{volunteer_id}' is already signed up for "
                f"'{self.activity_id}'"
            )
        if len(self.signed_up) >= self.capacity:
            raise CapacityReachedError(
                f"activity '{self.activity_id}' is full: all {self.capacity} "
                "places are taken"
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
                f"activity '{self.activity_id}' ended at {self.ends_at.isoformat()}; "
                "a sign-up can no longer be cancelled"
            )
        ensure_in_time_order(
            at,
            self.sign_up_changed_at.get(volunteer_id),
            f"the sign-up of '{volunteer_id}' to '{self.activity_id}'",
        )
        if volunteer_id not in self.signed_up:
            raise NotSignedUpError(
                f"volunteer '{volunteer_id}' has no sign-up for "
                f"'{self.activity_id}' to cancel"
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
                f"volunteer '{volunteer_id}' must sign up for "
                f"'{self.activity_id}' before checking in"
            )
        earliest = self.starts_at - WINDOW_TOLERANCE
        if not earliest <= at < self.ends_at:
            raise OutsideActivityWindowError(
                f"check-in at {at.isoformat()} is outside activity "
                f"'{self.activity_id}' ({self.starts_at.isoformat()} to "
                f"{self.ends_at.isoformat()}, check-in from "
                f"{earliest.isoformat()})"
            )

    def ensure_check_out_allowed(self, at: datetime) -> None:
        latest = self.ends_at + WINDOW_TOLERANCE
        if at > latest:
            raise OutsideActivityWindowError(
                f"check-out at {at.isoformat()} is after activity "
                f"'{self.activity_id}' ended ({self.ends_at.isoformat()}, "
                f"check-out until {latest.isoformat()})"
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
                f"activity '{self.activity_id}' starts at "
                f"{self.starts_at.isoformat()}; it cannot be rated before then"
            )
        if rater_id in self.raters:
            raise AlreadyRatedError(
                f"'{rater_id}' has already rated activity '{self.activity_id}'"
            )
        self._rated(rater_id=rater_id, stars=stars, comment=comment)

    @event("Rated", topic="Activity.Rated")
    def _rated(self, rater_id: str, stars: int, comment: str | None) -> None:
        self.raters.add(rater_id)
