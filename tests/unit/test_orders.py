"""The five orders (五单): posted → dispatched → accepted → fulfilled → rated,
with the side exits withdrawn, rejected and expired."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.activities import Category
from ledger.domain.errors import (
    AlreadyRatedError,
    InvalidCommandError,
    InvalidTransitionError,
    MissingReasonError,
    NothingToChangeError,
    OutOfOrderError,
    StarsOutOfRangeError,
)
from ledger.domain.orders import Order, OrderKind, OrderStatus
from tests.factories import T0
from tests.unit.domain_builders import (
    HOUR,
    LATER,
    MINUTE,
    ORDER_STATES,
    event_names,
    order,
    venue_of_level,
)

OPEN = ["posted", "dispatched", "accepted"]
CLOSED = ["fulfilled", "withdrawn", "rejected", "expired"]
BLANK_REASONS = ["", "   ", "\t\n"]


def others(*states: str) -> list[str]:
    return [s for s in ORDER_STATES if s not in states]


def post(kind: str = "wish", category: str = "education") -> Order:
    return Order.post(
        order_id="O1",
        kind=kind,
        venue=venue_of_level("point"),
        category=category,
        description="帮独居老人买菜",
        at=T0,
    )


# --- posting ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wish", "service"])
def test_an_order_is_posted_at_a_venue(kind: str) -> None:
    posted = post(kind=kind)

    assert event_names(posted) == ["Posted"]
    assert posted.kind is OrderKind(kind)
    assert posted.status is OrderStatus.POSTED
    assert posted.category is Category.EDUCATION
    assert (posted.venue_id, posted.posted_at) == ("point-1", T0)


def test_an_order_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidCommandError):
        post(kind="gift")


def test_an_order_of_an_unknown_category_is_refused() -> None:
    with pytest.raises(InvalidCommandError):
        post(category="sports")


def test_an_order_posted_without_an_offset_is_refused() -> None:
    with pytest.raises(InvalidCommandError):
        Order.post(
            order_id="O1",
            kind="wish",
            venue=venue_of_level("point"),
            category="culture",
            description="x",
            at=T0.replace(tzinfo=None),
        )


# --- dispatch ---------------------------------------------------------------


def test_a_posted_order_is_dispatched_to_a_venue() -> None:
    posted = order("posted")

    posted.dispatch(venue_id="S1", team_id=None, at=LATER)

    assert event_names(posted) == ["Dispatched"]
    assert posted.status is OrderStatus.DISPATCHED
    assert posted.dispatched_to == ("venue", "S1")


def test_a_posted_order_is_dispatched_to_a_team() -> None:
    posted = order("posted")

    posted.dispatch(venue_id=None, team_id="T1", at=LATER)

    assert event_names(posted) == ["Dispatched"]
    assert posted.dispatched_to == ("team", "T1")


def test_dispatching_again_is_a_redispatch() -> None:
    dispatched = order("dispatched")  # to venue S1

    dispatched.dispatch(venue_id=None, team_id="T1", at=LATER)

    assert event_names(dispatched) == ["Redispatched"]
    assert dispatched.status is OrderStatus.DISPATCHED
    assert dispatched.dispatched_to == ("team", "T1")


def test_a_redispatch_clears_the_acceptance() -> None:
    # Given an order accepted by V1 through venue S1
    accepted = order("accepted")

    # When the centre reassigns it to another venue
    accepted.dispatch(venue_id="S2", team_id=None, at=LATER)

    # Then it waits for a new acceptance
    assert event_names(accepted) == ["Redispatched"]
    assert accepted.status is OrderStatus.DISPATCHED
    assert accepted.accepting_volunteers == set()
    assert accepted.accepting_teams == set()
    with pytest.raises(InvalidTransitionError):
        accepted.fulfil(LATER + HOUR)


@pytest.mark.parametrize("state", ["dispatched", "accepted"])
def test_dispatching_to_the_same_target_again_is_refused(state: str) -> None:
    subject = order(state)  # dispatched to venue S1

    with pytest.raises(NothingToChangeError):
        subject.dispatch(venue_id="S1", team_id=None, at=LATER)

    assert subject.collect_events() == []
    assert subject.status is OrderStatus(state)


def test_a_venue_and_a_team_with_the_same_id_are_different_targets() -> None:
    dispatched = order("dispatched")  # to venue S1

    dispatched.dispatch(venue_id=None, team_id="S1", at=LATER)

    assert event_names(dispatched) == ["Redispatched"]


@pytest.mark.parametrize(
    ("venue_id", "team_id"), [(None, None), ("S1", "T1")], ids=["neither", "both"]
)
def test_a_dispatch_to_not_exactly_one_target_is_refused(
    venue_id: str | None, team_id: str | None
) -> None:
    posted = order("posted")

    with pytest.raises(InvalidCommandError):
        posted.dispatch(venue_id=venue_id, team_id=team_id, at=LATER)

    assert posted.collect_events() == []
    assert posted.status is OrderStatus.POSTED
    assert posted.dispatched_to is None


@pytest.mark.parametrize(
    ("venue_id", "team_id"), [(None, None), ("S2", "T1")], ids=["neither", "both"]
)
def test_a_redispatch_to_not_exactly_one_target_is_refused(
    venue_id: str | None, team_id: str | None
) -> None:
    accepted = order("accepted")  # dispatched to venue S1, accepted by V1

    with pytest.raises(InvalidCommandError):
        accepted.dispatch(venue_id=venue_id, team_id=team_id, at=LATER)

    assert accepted.collect_events() == []
    assert accepted.dispatched_to == ("venue", "S1")
    assert accepted.accepting_volunteers == {"V1"}


@pytest.mark.parametrize("state", CLOSED)
def test_a_closed_order_cannot_be_dispatched(state: str) -> None:
    closed = order(state)

    with pytest.raises(InvalidTransitionError):
        closed.dispatch(venue_id="S2", team_id=None, at=LATER)

    assert closed.collect_events() == []
    assert closed.status is OrderStatus(state)


def test_a_dispatch_dated_before_the_posting_is_refused() -> None:
    posted = order("posted")

    with pytest.raises(OutOfOrderError):
        posted.dispatch(venue_id="S1", team_id=None, at=T0 - MINUTE)

    assert posted.collect_events() == []
    assert posted.status is OrderStatus.POSTED


# --- acceptance ---------------------------------------------------------------


def test_a_dispatched_order_is_accepted_by_a_volunteer() -> None:
    dispatched = order("dispatched")

    dispatched.accept(volunteer_ids=["V1"], team_id=None, at=LATER)

    assert event_names(dispatched) == ["Accepted"]
    assert dispatched.status is OrderStatus.ACCEPTED
    assert dispatched.accepting_volunteers == {"V1"}


def test_a_dispatched_order_is_accepted_by_a_team() -> None:
    dispatched = order("dispatched")

    dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER)

    assert event_names(dispatched) == ["Accepted"]
    assert dispatched.status is OrderStatus.ACCEPTED
    assert dispatched.accepting_teams == {"T1"}
    assert dispatched.accepting_volunteers == set()


def test_a_group_of_volunteers_accepts_an_order_together() -> None:
    dispatched = order("dispatched")

    dispatched.accept(volunteer_ids=["V1", "V2", "V3"], team_id=None, at=LATER)

    assert dispatched.accepting_volunteers == {"V1", "V2", "V3"}


def test_a_group_acceptance_grows_with_newcomers_only() -> None:
    # Given an order accepted by V1
    accepted = order("accepted")

    # When V1 and V2 claim it
    accepted.accept(volunteer_ids=["V1", "V2"], team_id=None, at=LATER)

    # Then only V2 is recorded as joining
    events = accepted.collect_events()
    assert [type(e).__name__ for e in events] == ["Accepted"]
    assert events[0].volunteer_ids == ["V2"]  # type: ignore[attr-defined]
    assert accepted.accepting_volunteers == {"V1", "V2"}
    assert accepted.status is OrderStatus.ACCEPTED


def test_accepting_again_by_the_same_volunteers_is_refused() -> None:
    accepted = order("accepted")  # by V1

    with pytest.raises(NothingToChangeError):
        accepted.accept(volunteer_ids=["V1"], team_id=None, at=LATER)

    assert accepted.collect_events() == []


def test_accepting_again_by_the_same_team_is_refused() -> None:
    dispatched = order("dispatched")
    dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER)
    dispatched.collect_events()

    with pytest.raises(NothingToChangeError):
        dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER + HOUR)

    assert dispatched.collect_events() == []


def test_a_second_team_joins_the_first() -> None:
    # Given an order accepted by team T1
    dispatched = order("dispatched")
    dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER)
    dispatched.collect_events()

    # When team T2 accepts it too
    dispatched.accept(volunteer_ids=[], team_id="T2", at=LATER + HOUR)

    # Then both teams are on it
    events = dispatched.collect_events()
    assert [type(e).__name__ for e in events] == ["Accepted"]
    assert events[0].team_id == "T2"  # type: ignore[attr-defined]
    assert dispatched.accepting_teams == {"T1", "T2"}
    assert dispatched.status is OrderStatus.ACCEPTED


def test_accepting_again_by_either_of_two_teams_is_refused() -> None:
    dispatched = order("dispatched")
    dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER)
    dispatched.accept(volunteer_ids=[], team_id="T2", at=LATER + HOUR)
    dispatched.collect_events()

    with pytest.raises(NothingToChangeError):
        dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER + 2 * HOUR)

    assert dispatched.collect_events() == []
    assert dispatched.accepting_teams == {"T1", "T2"}


def test_a_redispatch_clears_the_accepting_teams() -> None:
    dispatched = order("dispatched")
    dispatched.accept(volunteer_ids=[], team_id="T1", at=LATER)
    dispatched.accept(volunteer_ids=[], team_id="T2", at=LATER + HOUR)

    dispatched.dispatch(venue_id=None, team_id="T3", at=LATER + 2 * HOUR)

    assert dispatched.accepting_teams == set()
    assert dispatched.status is OrderStatus.DISPATCHED


@pytest.mark.parametrize(
    ("volunteer_ids", "team_id"),
    [([], None), (["V1"], "T1")],
    ids=["nobody", "volunteers and a team"],
)
def test_an_acceptance_not_by_volunteers_or_a_team_alone_is_refused(
    volunteer_ids: list[str], team_id: str | None
) -> None:
    dispatched = order("dispatched")

    with pytest.raises(InvalidCommandError):
        dispatched.accept(volunteer_ids=volunteer_ids, team_id=team_id, at=LATER)

    assert dispatched.collect_events() == []
    assert dispatched.status is OrderStatus.DISPATCHED
    assert dispatched.accepting_volunteers == set()
    assert dispatched.accepting_teams == set()


def test_accepting_an_order_before_it_is_dispatched_is_refused() -> None:
    posted = order("posted")

    with pytest.raises(InvalidTransitionError):
        posted.accept(volunteer_ids=["V1"], team_id=None, at=LATER)

    assert posted.collect_events() == []
    assert posted.status is OrderStatus.POSTED


@pytest.mark.parametrize("state", CLOSED)
def test_a_closed_order_cannot_be_accepted(state: str) -> None:
    closed = order(state)

    with pytest.raises(InvalidTransitionError):
        closed.accept(volunteer_ids=["V9"], team_id=None, at=LATER)

    assert closed.collect_events() == []


def test_an_acceptance_dated_before_the_dispatch_is_refused() -> None:
    dispatched = order("dispatched")  # at T0 + 1 h

    with pytest.raises(OutOfOrderError):
        dispatched.accept(volunteer_ids=["V1"], team_id=None, at=T0 + 30 * MINUTE)

    assert dispatched.collect_events() == []


# --- fulfilment ---------------------------------------------------------------


def test_an_accepted_order_is_fulfilled() -> None:
    accepted = order("accepted")

    accepted.fulfil(LATER)

    assert event_names(accepted) == ["Fulfilled"]
    assert accepted.status is OrderStatus.FULFILLED
    assert accepted.fulfilled_at == LATER


@pytest.mark.parametrize("state", others("accepted"))
def test_fulfilling_an_order_that_is_not_accepted_is_refused(state: str) -> None:
    subject = order(state)

    with pytest.raises(InvalidTransitionError):
        subject.fulfil(LATER)

    assert subject.collect_events() == []
    assert subject.status is OrderStatus(state)


def test_fulfilling_a_never_accepted_order_is_refused() -> None:
    # Given an order that was accepted, then reassigned before anyone served
    reassigned = order("accepted")
    reassigned.dispatch(venue_id=None, team_id="T1", at=LATER)
    reassigned.collect_events()

    # Then it cannot be fulfilled until someone accepts it again
    with pytest.raises(InvalidTransitionError):
        reassigned.fulfil(LATER + HOUR)

    assert reassigned.collect_events() == []


def test_a_fulfilment_dated_before_the_acceptance_is_refused() -> None:
    accepted = order("accepted")  # at T0 + 2 h

    with pytest.raises(OutOfOrderError):
        accepted.fulfil(T0 + HOUR)

    assert accepted.collect_events() == []
    assert accepted.status is OrderStatus.ACCEPTED


# --- side exits ---------------------------------------------------------------


@pytest.mark.parametrize("state", OPEN)
def test_the_resident_withdraws_an_open_order(state: str) -> None:
    subject = order(state)

    subject.withdraw("已自行解决", LATER)

    assert event_names(subject) == ["Withdrawn"]
    assert subject.status is OrderStatus.WITHDRAWN


@pytest.mark.parametrize("state", CLOSED)
def test_withdrawing_a_closed_order_is_refused(state: str) -> None:
    closed = order(state)

    with pytest.raises(InvalidTransitionError):
        closed.withdraw("changed my mind", LATER)

    assert closed.collect_events() == []
    assert closed.status is OrderStatus(state)


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_withdrawing_with_a_blank_reason_is_refused(reason: str) -> None:
    posted = order("posted")

    with pytest.raises(MissingReasonError):
        posted.withdraw(reason, LATER)

    assert posted.collect_events() == []
    assert posted.status is OrderStatus.POSTED


@pytest.mark.parametrize("state", ["posted", "dispatched"])
def test_an_order_not_yet_taken_is_rejected_at_vetting(state: str) -> None:
    subject = order(state)

    subject.reject("超出志愿服务范围", LATER)

    assert event_names(subject) == ["Rejected"]
    assert subject.status is OrderStatus.REJECTED


@pytest.mark.parametrize("state", others("posted", "dispatched"))
def test_rejecting_an_order_once_taken_or_closed_is_refused(state: str) -> None:
    subject = order(state)

    with pytest.raises(InvalidTransitionError):
        subject.reject("not a volunteer service", LATER)

    assert subject.collect_events() == []
    assert subject.status is OrderStatus(state)


@pytest.mark.parametrize("reason", BLANK_REASONS)
def test_rejecting_with_a_blank_reason_is_refused(reason: str) -> None:
    posted = order("posted")

    with pytest.raises(MissingReasonError):
        posted.reject(reason, LATER)

    assert posted.collect_events() == []
    assert posted.status is OrderStatus.POSTED


@pytest.mark.parametrize("state", OPEN)
def test_an_open_order_expires(state: str) -> None:
    subject = order(state)

    subject.expire(LATER)

    assert event_names(subject) == ["Expired"]
    assert subject.status is OrderStatus.EXPIRED


@pytest.mark.parametrize("state", CLOSED)
def test_a_closed_order_cannot_expire(state: str) -> None:
    closed = order(state)

    with pytest.raises(InvalidTransitionError):
        closed.expire(LATER)

    assert closed.collect_events() == []
    assert closed.status is OrderStatus(state)


def test_an_expiry_dated_before_the_latest_change_is_refused() -> None:
    accepted = order("accepted")  # at T0 + 2 h

    with pytest.raises(OutOfOrderError):
        accepted.expire(T0 + HOUR)

    assert accepted.collect_events() == []


# --- ratings ------------------------------------------------------------------


def test_a_fulfilled_order_is_rated() -> None:
    fulfilled = order("fulfilled")

    fulfilled.rate("R1", 5, "非常感谢", LATER)

    assert event_names(fulfilled) == ["Rated"]
    assert fulfilled.raters == {"R1"}


@pytest.mark.parametrize("state", others("fulfilled"))
def test_rating_an_order_that_is_not_fulfilled_is_refused(state: str) -> None:
    subject = order(state)

    with pytest.raises(InvalidTransitionError):
        subject.rate("R1", 5, None, LATER)

    assert subject.collect_events() == []
    assert subject.raters == set()


def test_a_second_rating_by_the_same_rater_is_refused() -> None:
    fulfilled = order("fulfilled")
    fulfilled.rate("R1", 5, None, LATER)
    fulfilled.collect_events()

    with pytest.raises(AlreadyRatedError):
        fulfilled.rate("R1", 1, "changed my mind", LATER + HOUR)

    assert fulfilled.collect_events() == []


def test_different_raters_each_rate_an_order_once() -> None:
    fulfilled = order("fulfilled")

    fulfilled.rate("R1", 5, None, LATER)
    fulfilled.rate("R2", 3, None, LATER)

    assert event_names(fulfilled) == ["Rated", "Rated"]


def test_a_rating_dated_before_the_fulfilment_is_refused() -> None:
    fulfilled = order("fulfilled")  # at T0 + 3 h

    with pytest.raises(OutOfOrderError):
        fulfilled.rate("R1", 5, None, T0 + 2 * HOUR)

    assert fulfilled.collect_events() == []


@pytest.mark.parametrize("stars", [1, 2, 3, 4, 5])
def test_an_order_rating_of_one_to_five_stars_is_accepted(stars: int) -> None:
    fulfilled = order("fulfilled")

    fulfilled.rate("R1", stars, None, LATER)

    assert fulfilled.raters == {"R1"}


@pytest.mark.parametrize("stars", [0, 6, -1, True, False, 4.5, "5", None])
def test_an_order_rating_outside_one_to_five_whole_stars_is_refused(
    stars: Any,
) -> None:
    fulfilled = order("fulfilled")

    with pytest.raises(StarsOutOfRangeError):
        fulfilled.rate("R1", stars, None, LATER)

    assert fulfilled.collect_events() == []
    assert fulfilled.raters == set()
