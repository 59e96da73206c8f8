"""``activity_calendar``: the activities published for each venue and
month, and how many places each has left — the monthly calendar that 文明办
gathers from every 所、站、点 and publishes (每月底对下月全市所、站、点拟开展
的活动进行汇总 … 对外发布).

Definitions: an activity belongs to the month (China Standard Time) of its
start and to the venue it was published at; its places left are its
capacity minus its current sign-ups (a cancelled sign-up gives its place
back). Nothing personal is kept: sign-ups are counted, not named.

A sign-up event names only its activity's stream, so the fold makes two
kinds of entry from the event alone: ``Activity.Published`` one carrying
the activity's facts (and its capacity), each sign-up or cancellation one
carrying only the stream and +1 or -1. A read picks the activities of some
venues and a month, then sums the sign-ups of their streams.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine import Entry, Projection, RecordedEvent, define_entries_table
from ledger.projections.service_sessions import china_date
from ledger.store.event_store import select_rows_among

PUBLISHED = "Activity.Published"
SIGNED_UP = "Activity.SignedUp"
SIGN_UP_CANCELLED = "Activity.SignUpCancelled"

entries_table = define_entries_table(
    "proj_activity_calendar_entries",
    [
        sa.Column("activity_stream", sa.String(36), nullable=False),
        # The activity's facts, on its published entry only (null on sign-ups)
        sa.Column("activity_id", sa.String(64)),
        sa.Column("venue_id", sa.String(64)),
        sa.Column("month", sa.String(7)),
        sa.Column("category", sa.String(16)),
        sa.Column("title", sa.String(500)),
        sa.Column("starts_at", sa.String(40)),
        sa.Column("ends_at", sa.String(40)),
    ],
    ["activities", "capacity", "signed_up"],
    lookup=["month", "venue_id"],
)
sa.Index(
    "proj_activity_calendar_entries_stream",
    entries_table.c.version,
    entries_table.c.activity_stream,
    entries_table.c.position,
)


@dataclass(frozen=True)
class CalendarEntry:
    """A published activity as the calendar lists it."""

    activity_id: str
    venue_id: str
    category: str
    title: str
    starts_at: str
    ends_at: str
    capacity: int
    signed_up: int


class ActivityCalendarProjection(Projection):
    name: ClassVar[str] = "activity_calendar"
    topics: ClassVar[frozenset[str]] = frozenset(
        {PUBLISHED, SIGNED_UP, SIGN_UP_CANCELLED}
    )
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = (
        "activity_stream",
        "activity_id",
        "venue_id",
        "month",
        "category",
        "title",
        "starts_at",
        "ends_at",
    )
    measure_columns: ClassVar[tuple[str, ...]] = ("activities", "capacity", "signed_up")

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        if event.topic == PUBLISHED:
            p = event.payload
            key = (
                event.stream_id,
                p["activity_id"],
                p["venue_id"],
                china_date(p["starts_at"])[:7],
                p["category"],
                p["title"],
                p["starts_at"],
                p["ends_at"],
            )
            return [Entry(event.position, key, (1, int(p["capacity"]), 0))]
        change = 1 if event.topic == SIGNED_UP else -1
        nobody = (event.stream_id, None, None, None, None, None, None, None)
        return [Entry(event.position, nobody, (0, 0, change))]

    def list_activities(
        self,
        conn: Connection,
        version: int,
        position: int,
        month: str,
        venue_ids: Collection[str],
    ) -> list[CalendarEntry]:
        """The activities published at ``venue_ids`` starting in ``month``,
        with their sign-ups, as of ``position``."""
        t = entries_table.c
        published = select_rows_among(
            conn,
            sa.select(
                t.activity_stream,
                t.activity_id,
                t.venue_id,
                t.category,
                t.title,
                t.starts_at,
                t.ends_at,
                t.capacity,
            ).where(
                t.version == version,
                t.position <= position,
                t.month == month,
                t.activities == 1,
            ),
            t.venue_id,
            venue_ids,
        )
        signed_up = dict(
            select_rows_among(
                conn,
                sa.select(t.activity_stream, sa.func.sum(t.signed_up))
                .where(t.version == version, t.position <= position)
                .group_by(t.activity_stream),
                t.activity_stream,
                [row[0] for row in published],
            )
        )
        return [
            CalendarEntry(
                activity_id=activity_id,
                venue_id=venue_id,
                category=category,
                title=title,
                starts_at=starts_at,
                ends_at=ends_at,
                capacity=int(capacity),
                signed_up=int(signed_up.get(stream, 0)),
            )
            for (
                stream,
                activity_id,
                venue_id,
                category,
                title,
                starts_at,
                ends_at,
                capacity,
            ) in published
        ]
