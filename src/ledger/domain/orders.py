"""The five orders (五单): 点单 posted → 派单 dispatched → 接单 accepted →
销单 fulfilled → 评单 rated, with the side exits withdrawn, rejected and expired.
A micro-wish (微心愿) is an order of kind ``wish``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.activities import Category, parse_category
from ledger.domain.bounds import ID, IDS, TEXT
from ledger.domain.common import (
    ensure_in_time_order,
    from_iso,
    require_reason,
    require_stars,
    stream_id,
    to_iso,
)
from ledger.domain.errors import (
    AlreadyRatedError,
    InvalidCommandError,
    InvalidTransitionError,
    NothingToChangeError,
    OutOfOrderError,
)
from ledger.domain.messages import Message
from ledger.domain.venues import Venue


class OrderKind(StrEnum):
    WISH = "wish"  # 微心愿
    SERVICE = "service"


class OrderStatus(StrEnum):
    POSTED = "posted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    FULFILLED = "fulfilled"
    WITHDRAWN = "withdrawn"
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_STATUSES = frozenset(
    {OrderStatus.POSTED, OrderStatus.DISPATCHED, OrderStatus.ACCEPTED}
)


class Order(Aggregate):
    """A resident's need, followed from posting to rating."""

    TOPIC = "Order"

    class Event(Aggregate.Event):
        TOPIC = "Order.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Order.Created"

    @staticmethod
    def create_id(order_id: str) -> UUID:
        return stream_id("order", order_id)

    @classmethod
    def post(
        cls,
        *,
        order_id: str,
        kind: str,
        venue: Venue,
        category: str,
        description: str,
        at: datetime,
    ) -> Order:
        """百姓点单: a resident posts a need at a venue."""
        try:
            order_kind = OrderKind(kind)
        except ValueError:
            raise InvalidCommandError(
                "unknown order kind '{kind}': use wish or service", kind=kind
            ) from None
        return cls(
            order_id=ID.check(order_id),
            kind=order_kind.value,
            venue_id=venue.venue_id,
            category=parse_category(category).value,
            description=TEXT.check(description),
            at=to_iso(at),
        )

    @event("Posted", topic="Order.Posted")
    def __init__(
        self,
        order_id: str,
        kind: str,
        venue_id: str,
        category: str,
        description: str,
        at: str,
    ) -> None:
        self.order_id = order_id
        self.kind = OrderKind(kind)
        self.venue_id = venue_id
        self.category = Category(category)
        self.description = description
        self.status = OrderStatus.POSTED
        self.posted_at = from_iso(at)
        self.posted_at_text = at
        self.ever_accepted = False
        self.last_changed_at = self.posted_at
        self.fulfilled_at: datetime | None = None
        self.dispatched_to: tuple[str, str] | None = None
        self.accepting_volunteers: set[str] = set()
        self.accepting_teams: set[str] = set()
        self.raters: set[str] = set()

    def facts(self) -> dict[str, str]:
        """What the order counts for: every event after posting carries these,
        so each tells on its own which venue, period, kind and category it
        belongs to (an order belongs to where and when it was posted)."""
        return {
            "order_id": self.order_id,
            "venue_id": self.venue_id,
            "kind": self.kind.value,
            "category": self.category.value,
            "posted_at": self.posted_at_text,
        }

    def _ensure(self, action: str, at: datetime, *allowed: OrderStatus) -> None:
        ensure_in_time_order(
            at, self.last_changed_at, Message("order '{id}'", id=self.order_id)
        )
        if self.status not in allowed:
            raise InvalidTransitionError(
                "order '{order_id}' is {status}; only an order that is {allowed} "
                "can be {action}",
                order_id=self.order_id,
                status=Message(self.status.value),
                allowed=" / ".join(str(Message(s.value)) for s in allowed),
                action=Message(action),
            )

    def dispatch(
        self, *, venue_id: str | None, team_id: str | None, at: datetime
    ) -> None:
        """中心派单 to a venue or a team; dispatching again reassigns it."""
        if (venue_id is None) == (team_id is None):
            raise InvalidCommandError("an order is dispatched to one venue or one team")
        self._ensure("dispatched", at, *OPEN_STATUSES)
        target = (
            ("venue", venue_id) if venue_id is not None else ("team", team_id or "")
        )
        if self.dispatched_to == target:
            raise NothingToChangeError(
                "order '{order_id}' is already dispatched to {kind} '{target_id}'",
                order_id=self.order_id,
                kind=Message(target[0]),
                target_id=target[1],
            )
        if self.dispatched_to is None:
            self._dispatched(
                venue_id=venue_id, team_id=team_id, order=self.facts(), at=to_iso(at)
            )
        else:
            self._redispatched(
                venue_id=venue_id, team_id=team_id, order=self.facts(), at=to_iso(at)
            )

    @event("Dispatched", topic="Order.Dispatched")
    def _dispatched(
        self, venue_id: str | None, team_id: str | None, order: dict[str, str], at: str
    ) -> None:
        self._assign(venue_id, team_id, at)

    @event("Redispatched", topic="Order.Redispatched")
    def _redispatched(
        self, venue_id: str | None, team_id: str | None, order: dict[str, str], at: str
    ) -> None:
        self._assign(venue_id, team_id, at)

    def _assign(self, venue_id: str | None, team_id: str | None, at: str) -> None:
        self.dispatched_to = (
            ("venue", venue_id) if venue_id else ("team", team_id or "")
        )
        self.status = OrderStatus.DISPATCHED
        self.accepting_volunteers = set()
        self.accepting_teams = set()
        self.last_changed_at = from_iso(at)

    def accept(
        self, *, volunteer_ids: list[str], team_id: str | None, at: datetime
    ) -> None:
        """志愿接单 by one or more volunteers or a team; a group may grow."""
        if bool(volunteer_ids) == (team_id is not None):
            raise InvalidCommandError(
                "an order is accepted by one or more volunteers or by a team"
            )
        IDS.check(volunteer_ids)
        self._ensure("accepted", at, OrderStatus.DISPATCHED, OrderStatus.ACCEPTED)
        newcomers = [v for v in volunteer_ids if v not in self.accepting_volunteers]
        if volunteer_ids and not newcomers:
            raise NothingToChangeError(
                "order '{order_id}' is already accepted by {volunteer_ids}",
                order_id=self.order_id,
                volunteer_ids=", ".join(sorted(volunteer_ids)),
            )
        if team_id is not None and team_id in self.accepting_teams:
            raise NothingToChangeError(
                "order '{order_id}' is already accepted by team '{team_id}'",
                order_id=self.order_id,
                team_id=team_id,
            )
        self._accepted(
            volunteer_ids=newcomers,
            team_id=team_id,
            first_acceptance=not self.ever_accepted,
            order=self.facts(),
            at=to_iso(at),
        )

    @event("Accepted", topic="Order.Accepted")
    def _accepted(
        self,
        volunteer_ids: list[str],
        team_id: str | None,
        first_acceptance: bool,
        order: dict[str, str],
        at: str,
    ) -> None:
        self.accepting_volunteers.update(volunteer_ids)
        if team_id is not None:
            self.accepting_teams.add(team_id)
        self.status = OrderStatus.ACCEPTED
        self.ever_accepted = True
        self.last_changed_at = from_iso(at)

    def fulfil(self, at: datetime) -> None:
        """圆梦销单: the accepted order is done."""
        self._ensure("fulfilled", at, OrderStatus.ACCEPTED)
        self._fulfilled(order=self.facts(), at=to_iso(at))

    @event("Fulfilled", topic="Order.Fulfilled")
    def _fulfilled(self, order: dict[str, str], at: str) -> None:
        self.status = OrderStatus.FULFILLED
        self.fulfilled_at = self.last_changed_at = from_iso(at)

    def withdraw(self, reason: str, at: datetime) -> None:
        """The resident takes the order back."""
        self._ensure("withdrawn", at, *OPEN_STATUSES)
        self._withdrawn(
            reason=require_reason(reason), order=self.facts(), at=to_iso(at)
        )

    @event("Withdrawn", topic="Order.Withdrawn")
    def _withdrawn(self, reason: str, order: dict[str, str], at: str) -> None:
        self.status = OrderStatus.WITHDRAWN
        self.last_changed_at = from_iso(at)

    def reject(self, reason: str, at: datetime) -> None:
        """Refused at vetting, before any volunteer has taken it."""
        self._ensure("rejected", at, OrderStatus.POSTED, OrderStatus.DISPATCHED)
        self._rejected(reason=require_reason(reason), order=self.facts(), at=to_iso(at))

    @event("Rejected", topic="Order.Rejected")
    def _rejected(self, reason: str, order: dict[str, str], at: str) -> None:
        self.status = OrderStatus.REJECTED
        self.last_changed_at = from_iso(at)

    def expire(self, at: datetime) -> None:
        """An open order ran out of time."""
        self._ensure("expired", at, *OPEN_STATUSES)
        self._expired(order=self.facts(), at=to_iso(at))

    @event("Expired", topic="Order.Expired")
    def _expired(self, order: dict[str, str], at: str) -> None:
        self.status = OrderStatus.EXPIRED
        self.last_changed_at = from_iso(at)

    def rate(
        self, rater_id: str, stars: int, comment: str | None, at: datetime
    ) -> None:
        """群众评单: one rating per rater, only once the order is fulfilled."""
        require_stars(stars)
        ID.check(rater_id)
        if comment is not None:
            TEXT.check(comment)
        if self.status is not OrderStatus.FULFILLED or self.fulfilled_at is None:
            raise InvalidTransitionError(
                "order '{order_id}' is {status}; only a fulfilled order can be rated",
                order_id=self.order_id,
                status=Message(self.status.value),
            )
        if at < self.fulfilled_at:
            raise OutOfOrderError(
                "this rating is dated {at}, before order '{order_id}' was fulfilled "
                "at {fulfilled_at}",
                at=at.isoformat(),
                order_id=self.order_id,
                fulfilled_at=self.fulfilled_at.isoformat(),
            )
        if rater_id in self.raters:
            raise AlreadyRatedError(
                "'{rater_id}' has already rated order '{order_id}'",
                rater_id=rater_id,
                order_id=self.order_id,
            )
        self._rated(rater_id=rater_id, stars=stars, comment=comment, order=self.facts())

    @event("Rated", topic="Order.Rated")
    def _rated(
        self, rater_id: str, stars: int, comment: str | None, order: dict[str, str]
    ) -> None:
        self.raters.add(rater_id)
