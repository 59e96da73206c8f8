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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.projection import (
    Entry,
    Fold,
    Projection,
    RecordedEvent,
    load_state_rows,
)
from ledger.store import metadata, upsert_rows
from projections.service_sessions import china_date

MEASURES = (
    "posted",
    "dispatched",
    "accepted",
    "fulfilled",
    "withdrawn",
    "rejected",
    "expired",
    "ratings",
    "stars",
    "satisfied",
    "fulfil_minutes",
)

entries_table = sa.Table(
    "proj_order_fulfilment_entries",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    *(sa.Column(name, sa.Integer, nullable=False) for name in MEASURES),
    sa.Index(
        "proj_order_fulfilment_by_venue", "version", "venue_id", "month", "position"
    ),
)

orders_table = sa.Table(
    "proj_order_fulfilment_orders",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("stream_id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("venue_id", sa.String(64), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("posted_at", sa.String(40), nullable=False),
    sa.Column("dispatched", sa.Boolean, nullable=False),
    sa.Column("accepted", sa.Boolean, nullable=False),
)

SATISFIED_STARS = 4


class OrderEventError(Exception):
    """An order event that does not fit what the projection knows."""


@dataclass(slots=True)
class OrderRecord:
    stream_id: str
    order_id: str
    venue_id: str
    month: str
    kind: str
    category: str
    posted_at: str
    dispatched: bool = False
    accepted: bool = False

    def as_row(self) -> tuple[Any, ...]:
        """The record in the column order of the orders state table."""
        return (
            self.stream_id,
            self.order_id,
            self.venue_id,
            self.month,
            self.kind,
            self.category,
            self.posted_at,
            self.dispatched,
            self.accepted,
        )


class OrderFulfilmentFold(Fold):
    def __init__(self, orders: dict[str, OrderRecord] | None = None) -> None:
        self.orders = orders if orders is not None else {}
        self.changed: set[str] = set()
        self._handlers: dict[
            str, Callable[[OrderRecord, dict[str, Any]], dict[str, int]]
        ] = {
            "Order.Dispatched": self._dispatched,
            "Order.Redispatched": self._dispatched,
            "Order.Accepted": self._accepted,
            "Order.Fulfilled": self._fulfilled,
            "Order.Withdrawn": lambda order, p: {"withdrawn": 1},
            "Order.Rejected": lambda order, p: {"rejected": 1},
            "Order.Expired": lambda order, p: {"expired": 1},
            "Order.Rated": self._rated,
        }

    def size(self) -> int:
        return len(self.orders)

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        payload = event.payload
        if event.topic == "Order.Posted":
            order = self._posted(event.stream_id, payload)
            changes = {"posted": 1}
        else:
            order = self._order(event.stream_id)
            changes = self._handlers[event.topic](order, payload)
        if not changes:
            return []
        key = (order.venue_id, order.month, order.kind, order.category, order.order_id)
        return [Entry(event.position, key, tuple(changes.get(m, 0) for m in MEASURES))]

    def _posted(self, stream_id: str, payload: dict[str, Any]) -> OrderRecord:
        if stream_id in self.orders:
            raise OrderEventError(f"order '{payload['order_id']}' was posted twice")
        order = OrderRecord(
            stream_id=stream_id,
            order_id=payload["order_id"],
            venue_id=payload["venue_id"],
            month=china_date(payload["at"])[:7],
            kind=payload["kind"],
            category=payload["category"],
            posted_at=payload["at"],
        )
        self.orders[stream_id] = order
        self.changed.add(stream_id)
        return order

    def _order(self, stream_id: str) -> OrderRecord:
        order = self.orders.get(stream_id)
        if order is None:
            raise OrderEventError(f"order stream {stream_id} was never posted")
        return order

    def _dispatched(
        self, order: OrderRecord, payload: dict[str, Any]
    ) -> dict[str, int]:
        if order.dispatched:
            return {}
        order.dispatched = True
        self.changed.add(order.stream_id)
        return {"dispatched": 1}

    def _accepted(self, order: OrderRecord, payload: dict[str, Any]) -> dict[str, int]:
        if order.accepted:
            return {}
        order.accepted = True
        self.changed.add(order.stream_id)
        return {"accepted": 1}

    def _fulfilled(self, order: OrderRecord, payload: dict[str, Any]) -> dict[str, int]:
        waited = datetime.fromisoformat(payload["at"]) - datetime.fromisoformat(
            order.posted_at
        )
        return {"fulfilled": 1, "fulfil_minutes": int(waited.total_seconds() // 60)}

    def _rated(self, order: OrderRecord, payload: dict[str, Any]) -> dict[str, int]:
        stars = int(payload["stars"])
        return {
            "ratings": 1,
            "stars": stars,
            "satisfied": int(stars >= SATISFIED_STARS),
        }


@dataclass
class FulfilmentFigures:
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

    @property
    def open(self) -> int:
        return (
            self.posted - self.fulfilled - self.withdrawn - self.rejected - self.expired
        )

    @property
    def rate(self) -> float | None:
        denominator = self.posted - self.withdrawn
        return self.fulfilled / denominator if denominator else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings else None

    def as_dict(self) -> dict[str, Any]:
        counts = asdict(self)
        del counts["fulfil_minutes"], counts["stars"], counts["satisfied"]
        return {
            **counts,
            "open": self.open,
            "rate": self.rate,
            "median_minutes_to_fulfil": (
                statistics.median(self.fulfil_minutes) if self.fulfil_minutes else None
            ),
            "ratings": self.ratings,
            "mean_stars": self.stars / self.ratings if self.ratings else None,
            "satisfaction": self.satisfaction,
        }


@dataclass
class VenueFulfilment:
    total: FulfilmentFigures
    by_month: dict[str, FulfilmentFigures]


class OrderFulfilmentProjection(Projection):
    name: ClassVar[str] = "order_fulfilment"
    topics: ClassVar[frozenset[str]] = frozenset(
        {
            "Order.Posted",
            "Order.Dispatched",
            "Order.Redispatched",
            "Order.Accepted",
            "Order.Fulfilled",
            "Order.Withdrawn",
            "Order.Rejected",
            "Order.Expired",
            "Order.Rated",
        }
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
    state_tables: ClassVar[tuple[sa.Table, ...]] = (orders_table,)

    def new_fold(self) -> OrderFulfilmentFold:
        return OrderFulfilmentFold()

    def load_state(
        self,
        conn: Connection,
        version: int,
        fold: Fold,
        events: Sequence[RecordedEvent],
    ) -> None:
        assert isinstance(fold, OrderFulfilmentFold)
        posted = {e.stream_id for e in events if e.topic == "Order.Posted"}
        wanted = sorted({e.stream_id for e in events} - posted - fold.orders.keys())
        rows = load_state_rows(conn, orders_table, version, "stream_id", wanted)
        fold.orders.update({row[0]: OrderRecord(*row) for row in rows})

    def save_state(self, conn: Connection, version: int, fold: Fold) -> None:
        assert isinstance(fold, OrderFulfilmentFold)
        upsert_rows(
            conn,
            orders_table,
            [
                (version, *fold.orders[stream].as_row())
                for stream in sorted(fold.changed)
            ],
        )
        fold.changed.clear()

    def get_fulfilment(
        self,
        conn: Connection,
        version: int,
        venue_ids: Sequence[str],
        from_month: str,
        to_month: str,
        position: int,
        kind: str | None = None,
    ) -> VenueFulfilment:
        t = entries_table.c
        result = VenueFulfilment(FulfilmentFigures(), defaultdict(FulfilmentFigures))
        for start in range(0, len(venue_ids), 500):
            query = (
                sa.select(t.month, t.order_id, *(sa.func.sum(t[m]) for m in MEASURES))
                .where(
                    t.version == version,
                    t.venue_id.in_(venue_ids[start : start + 500]),
                    t.month >= from_month,
                    t.month <= to_month,
                    t.position <= position,
                )
                .group_by(t.month, t.order_id)
            )
            if kind is not None:
                query = query.where(t.kind == kind)
            for row in conn.execute(query):
                measures = {
                    m: int(v or 0) for m, v in zip(MEASURES, row[2:], strict=True)
                }
                result.total.add(measures)
                result.by_month[row[0]].add(measures)
        return result
