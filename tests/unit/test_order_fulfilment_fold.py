"""The ``order_fulfilment`` fold, in memory: an order's counts follow from
the events the domain triggers, all in the venue and month it was posted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ledger.domain.orders import Order
from ledger.engine import Entry
from ledger.projections.order_fulfilment import MEASURES
from ledger.projections.registry import ORDER_FULFILMENT
from tests.factories import T0
from tests.unit.domain_builders import HOUR, recorded, venue_of_level

ORDER_O1 = ("station-1", "2024-03", "wish", "education", "O1")


def posted(at: datetime = T0) -> Order:
    return Order.post(
        order_id="O1",
        kind="wish",
        venue=venue_of_level("station"),
        category="education",
        description="课后辅导",
        at=at,
    )


def counts(entry: Entry) -> dict[str, int]:
    """The measures an entry changes, by name."""
    return {m: v for m, v in zip(MEASURES, entry.measures, strict=True) if v}


def test_each_step_to_fulfilment_counts_once_and_ratings_add_their_stars() -> None:
    wish = posted()
    wish.dispatch(venue_id="S1", team_id=None, at=T0 + HOUR)
    wish.dispatch(venue_id="S2", team_id=None, at=T0 + 2 * HOUR)  # reassigned
    wish.accept(volunteer_ids=["V1"], team_id=None, at=T0 + 3 * HOUR)
    wish.accept(volunteer_ids=["V2"], team_id=None, at=T0 + 4 * HOUR)  # joins
    wish.fulfil(T0 + 5 * HOUR)
    wish.rate("R1", 5, "很好", T0 + 6 * HOUR)
    wish.rate("R2", 3, None, T0 + 7 * HOUR)

    entries = ORDER_FULFILMENT.fold(
        recorded(wish, topics=ORDER_FULFILMENT.topics)
    ).entries

    assert {entry.key for entry in entries} == {ORDER_O1}
    assert [(entry.position, counts(entry)) for entry in entries] == [
        (1, {"posted": 1}),
        (2, {"dispatched": 1}),
        (4, {"accepted": 1}),
        (6, {"fulfilled": 1, "fulfil_minutes": 300}),
        (7, {"ratings": 1, "stars": 5, "satisfied": 1}),
        (8, {"ratings": 1, "stars": 3}),
    ]


@pytest.mark.parametrize(
    ("close", "closing"),
    [
        (lambda order: order.withdraw("no longer needed", T0 + HOUR), "withdrawn"),
        (lambda order: order.reject("not a volunteer service", T0 + HOUR), "rejected"),
        (lambda order: order.expire(T0 + HOUR), "expired"),
    ],
)
def test_an_order_closed_unfulfilled_counts_how_it_closed(
    close: Callable[[Order], None], closing: str
) -> None:
    wish = posted()
    close(wish)

    figures = ORDER_FULFILMENT.replay(recorded(wish, topics=ORDER_FULFILMENT.topics))

    assert {key: counts(Entry(0, key, m)) for key, m in figures.items()} == {
        ORDER_O1: {"posted": 1, closing: 1}
    }


def test_an_order_belongs_to_the_china_standard_time_month_it_was_posted() -> None:
    # 17:00 UTC on 31 March is 1 April in China.
    wish = posted(datetime(2024, 3, 31, 17, 0, tzinfo=UTC))

    (posting,) = ORDER_FULFILMENT.fold(
        recorded(wish, topics=ORDER_FULFILMENT.topics)
    ).entries

    assert posting.key == ("station-1", "2024-04", "wish", "education", "O1")
