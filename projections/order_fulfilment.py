"""``order_fulfilment``: the five orders (五单) per venue and month of
posting, rolled up the venue tree.

Definitions (CONTRACT §2–§3): an order belongs to the venue where it was
posted (whatever it is dispatched to) and to the month (China Standard
Time) in which it was posted. ``posted``, ``dispatched`` (at least once),
``accepted`` (at least once), ``fulfilled``, ``withdrawn``, ``rejected``,
``expired``; ``open`` = posted − fulfilled − withdrawn − rejected − expired;
``rate`` (实现率) = fulfilled ÷ (posted − withdrawn), unrounded, null when
the denominator is 0; median minutes from posting to fulfilment; ratings of
orders counted in the order's period: count, mean stars, ``satisfaction``
(满意度) = share of ratings with 4 or 5 stars, null without ratings.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ledger.engine import (
    Entry,
    ExplainedPage,
    Projection,
    RecordedEvent,
    define_entries_table,
)
from ledger.projections.fulfilment_rollup import (
    COUNTS,
    FULFILMENT_ROLLUP_TABLES,
    WAIT_MEASURE,
    KeptPeriod,
    keep_fulfilment_rollup,
    kept_year,
)
from ledger.projections.service_sessions import china_date
from ledger.projections.venue_selection import VenueSelection
from ledger.store.event_store import select_rows

MEASURES = (*COUNTS, WAIT_MEASURE)

entries_table = define_entries_table(
    "proj_order_fulfilment_entries",
    [
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
    ],
    MEASURES,
    lookup=["venue_id", "month"],
)

SATISFIED_STARS = 4

POSTED = "Order.Posted"
DISPATCHED = "Order.Dispatched"
REDISPATCHED = "Order.Redispatched"
ACCEPTED = "Order.Accepted"
FULFILLED = "Order.Fulfilled"
RATED = "Order.Rated"
# Orders closed without being fulfilled, and the count each closing adds to.
CLOSINGS = {
    "Order.Withdrawn": "withdrawn",
    "Order.Rejected": "rejected",
    "Order.Expired": "expired",
}


def _minutes_between(start: str, end: str) -> int:
    waited = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return int(waited.total_seconds() // 60)


def order_changes(topic: str, payload: dict[str, Any]) -> dict[str, int]:
    """How one order event changes the counts of its order."""
    if topic == POSTED:
        return {"posted": 1}
    if topic == DISPATCHED:  # a re-dispatch changes no count
        return {"dispatched": 1}
    if topic == ACCEPTED:
        return {"accepted": 1} if payload["first_acceptance"] else {}
    if topic == FULFILLED:
        waited = _minutes_between(payload["order"]["posted_at"], payload["at"])
        return {"fulfilled": 1, "fulfil_minutes": waited}
    if topic == RATED:
        stars = int(payload["stars"])
        return {
            "ratings": 1,
            "stars": stars,
            "satisfied": int(stars >= SATISFIED_STARS),
        }
    return {CLOSINGS[topic]: 1} if topic in CLOSINGS else {}


class FulfilmentFigures(BaseModel):
    """The five orders at a venue, or a roll-up of venues, over a period."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    posted: int
    dispatched: int
    accepted: int
    fulfilled: int
    withdrawn: int
    rejected: int
    expired: int
    ratings: int
    open: int = Field(
        description="Posted and not fulfilled, withdrawn, rejected or expired."
    )
    rate: float | None = Field(
        description="实现率: fulfilled ÷ (posted − withdrawn), unrounded."
    )
    # An odd count of orders has a whole median, an even one maybe not.
    median_minutes_to_fulfil: int | float | None
    mean_stars: float | None
    satisfaction: float | None = Field(
        description="满意度: the share of order ratings of 4 or 5 stars."
    )


@dataclass
class FulfilmentTally:
    """Fulfilment figures being summed from entries."""

    posted: int = 0
    dispatched: int = 0
    accepted: int = 0
    fulfilled: int = 0
    withdrawn: int = 0
    rejected: int = 0
    expired: int = 0
    ratings: int = 0
    stars: int = 0
    satisfied: int = 0
    fulfil_minutes: list[int] = field(default_factory=list)

    def add(self, measures: dict[str, int]) -> None:
        for name, value in measures.items():
            if name == "fulfil_minutes":
                if measures["fulfilled"]:
                    self.fulfil_minutes.append(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def figures(self) -> FulfilmentFigures:
        counts = {name: getattr(self, name) for name in COUNTS}
        waits = self.fulfil_minutes
        return fulfilment_figures(counts, statistics.median(waits) if waits else None)


def fulfilment_figures(
    counts: Mapping[str, int], median_minutes: int | float | None
) -> FulfilmentFigures:
    """The figures that follow from the ``COUNTS`` summed and the median wait
    of the fulfilled orders, however they were summed."""
    posted, withdrawn, ratings = (
        counts["posted"],
        counts["withdrawn"],
        counts["ratings"],
    )
    closed = sum(
        counts[name] for name in ("fulfilled", "withdrawn", "rejected", "expired")
    )
    return FulfilmentFigures(
        **{name: counts[name] for name in COUNTS if name not in ("stars", "satisfied")},
        open=posted - closed,
        rate=counts["fulfilled"] / (posted - withdrawn) if posted - withdrawn else None,
        median_minutes_to_fulfil=median_minutes,
        mean_stars=counts["stars"] / ratings if ratings else None,
        satisfaction=counts["satisfied"] / ratings if ratings else None,
    )


@dataclass(frozen=True)
class VenueFulfilmentFigures:
    """A selection's orders: in total and by month of posting (sorted)."""

    total: FulfilmentFigures
    by_month: dict[str, FulfilmentFigures]


class OrderFulfilmentProjection(Projection):
    name: ClassVar[str] = "order_fulfilment"
    topics: ClassVar[frozenset[str]] = frozenset(
        {POSTED, DISPATCHED, REDISPATCHED, ACCEPTED, FULFILLED, RATED, *CLOSINGS}
    )
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = (
        "venue_id",
        "month",
        "kind",
        "category",
        "order_id",
    )
    measure_columns: ClassVar[tuple[str, ...]] = MEASURES
    change_scope: ClassVar[str | None] = "venue_id"
    kept_tables: ClassVar[tuple[sa.Table, ...]] = FULFILMENT_ROLLUP_TABLES

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        payload = event.payload
        changes = order_changes(event.topic, payload)
        if not changes:
            return []
        order = payload if event.topic == POSTED else payload["order"]
        posted_at = payload["at"] if event.topic == POSTED else order["posted_at"]
        key = (
            order["venue_id"],
            china_date(posted_at)[:7],
            order["kind"],
            order["category"],
            order["order_id"],
        )
        return [Entry(event.position, key, tuple(changes.get(m, 0) for m in MEASURES))]

    def write_entries(
        self, conn: Connection, version: int, entries: Sequence[Entry]
    ) -> None:
        """The entries, and the kept roll-up they move (fulfilment_rollup)."""
        super().write_entries(conn, version, entries)
        keep_fulfilment_rollup(conn, version, entries)

    def explain_venue_figures(
        self,
        conn: Connection,
        selection: VenueSelection,
        *,
        after: int = 0,
        events: int | None = None,
    ) -> ExplainedPage:
        """The entries behind the selection's figures, of the first
        ``events`` events after position ``after`` (default: all)."""
        return self.explain(
            conn,
            selection.version,
            selection.position,
            *selection.months(entries_table),
            *_of_kind(selection),
            among=("venue_id", selection.venue_ids),
            after=after,
            events=events,
        )

    def get_venue_figures(
        self, conn: Connection, selection: VenueSelection
    ) -> VenueFulfilmentFigures:
        """The selection's orders, in total and by month of posting: a
        subtree's year from the kept roll-up where it answers exactly."""
        if (whole := selection.subtree_year) is not None:
            kept = kept_year(
                conn, selection.version, *whole, selection.kind, selection.position
            )
            if kept is not None:
                return _kept_figures(whole[1], kept)
        t = entries_table.c
        query = (
            sa.select(t.month, t.order_id, *(sa.func.sum(t[m]) for m in MEASURES))
            .where(
                t.version == selection.version,
                t.position <= selection.position,
                *selection.months(entries_table),
                *_of_kind(selection),
            )
            .group_by(t.month, t.order_id)
        )
        total = FulfilmentTally()
        by_month: dict[str, FulfilmentTally] = defaultdict(FulfilmentTally)
        for venues in selection.venue_chunks():
            for row in select_rows(conn, query.where(t.venue_id.in_(venues))):
                measures = {
                    m: int(v or 0) for m, v in zip(MEASURES, row[2:], strict=True)
                }
                total.add(measures)
                by_month[row[0]].add(measures)
        return VenueFulfilmentFigures(
            total.figures(),
            {month: by_month[month].figures() for month in sorted(by_month)},
        )


def _of_kind(selection: VenueSelection) -> tuple[sa.ColumnElement[bool], ...]:
    """Orders of the selection's kind only, when it names one."""
    if selection.kind is None:
        return ()
    return (entries_table.c.kind == selection.kind,)


def _kept_figures(year: str, kept: dict[str, KeptPeriod]) -> VenueFulfilmentFigures:
    """A year's figures from the kept roll-up (``kept_year``)."""

    def figures(period: KeptPeriod) -> FulfilmentFigures:
        return fulfilment_figures(period.counts, period.median_minutes)

    none = KeptPeriod(dict.fromkeys(COUNTS, 0), None)
    return VenueFulfilmentFigures(
        figures(kept.get(year, none)),
        {
            period: figures(found)
            for period, found in sorted(kept.items())
            if period != year
        },
    )
