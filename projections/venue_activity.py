"""``venue_activity``: per venue, month and category — activities held,
sessions, distinct volunteers and volunteer-minutes; rolled up the tree.

Definitions (CONTRACT §2–§3): ``activities`` counts published activities by
the month (China Standard Time) of ``starts_at``, whether or not anyone
served; ``sessions`` and ``volunteers`` count approved, non-voided sessions
and the distinct volunteers in them (distinct across the whole roll-up);
``volunteer_minutes`` is verified plus make-up minutes, also reported apart.
A session belongs to the venue and category of its activity, and to the
month of its check-in (make-up hours: of the activity's start).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.activities import Activity
from ledger.domain.common import topic_of
from ledger.engine import (
    Entry,
    ExplainedPage,
    Projection,
    RecordedEvent,
    define_entries_table,
)
from ledger.projections.service_sessions import (
    COUNTED_SESSION_TOPICS,
    china_date,
    counted_change,
)
from ledger.store.event_store import select_rows

PUBLISHED = topic_of(Activity, "Published")
NO_VOLUNTEER = ""  # the volunteer of an "activity published" entry

entries_table = define_entries_table(
    "proj_venue_activity_entries",
    [
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("volunteer_id", sa.String(64), nullable=False),
    ],
    ["activities", "sessions", "minutes"],
    lookup=["venue_id", "month"],
)


@dataclass
class ActivityFigures:
    activities: int = 0
    sessions: int = 0
    verified_minutes: int = 0
    makeup_minutes: int = 0
    volunteer_ids: set[str] = field(default_factory=set)

    def add(
        self, kind: str, volunteer_id: str, activities: int, sessions: int, minutes: int
    ) -> None:
        self.activities += activities
        self.sessions += sessions
        if kind == "verified":
            self.verified_minutes += minutes
        elif kind == "makeup":
            self.makeup_minutes += minutes
        if volunteer_id != NO_VOLUNTEER and sessions > 0:
            self.volunteer_ids.add(volunteer_id)

    def as_dict(self) -> dict[str, int]:
        return {
            "activities": self.activities,
            "sessions": self.sessions,
            "volunteers": len(self.volunteer_ids),
            "verified_minutes": self.verified_minutes,
            "makeup_minutes": self.makeup_minutes,
            "volunteer_minutes": self.verified_minutes + self.makeup_minutes,
        }


@dataclass
class VenueActivity:
    total: ActivityFigures
    by_month: dict[str, ActivityFigures]
    by_category: dict[str, ActivityFigures]


class VenueActivityProjection(Projection):
    name: ClassVar[str] = "venue_activity"
    topics: ClassVar[frozenset[str]] = COUNTED_SESSION_TOPICS | {PUBLISHED}
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = (
        "venue_id",
        "month",
        "category",
        "kind",
        "volunteer_id",
    )
    measure_columns: ClassVar[tuple[str, ...]] = ("activities", "sessions", "minutes")
    change_scope: ClassVar[str | None] = "venue_id"

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        if event.topic == PUBLISHED:
            p = event.payload
            month = china_date(p["starts_at"])[:7]
            key = (p["venue_id"], month, p["category"], "", NO_VOLUNTEER)
            return [Entry(event.position, key, (1, 0, 0))]
        change = counted_change(event)
        if change is None or (change.minutes == 0 and change.sessions == 0):
            return []
        key = (
            change.venue_id,
            change.month,
            change.category,
            change.kind,
            change.volunteer_id,
        )
        return [Entry(event.position, key, (0, change.sessions, change.minutes))]

    def explain_activity(
        self,
        conn: Connection,
        version: int,
        venue_ids: Sequence[str],
        from_month: str,
        to_month: str,
        position: int,
        *,
        after: int = 0,
        events: int | None = None,
    ) -> ExplainedPage:
        """The entries behind the venues' figures over the months, of the
        first ``events`` events after position ``after`` (default: all)."""
        t = entries_table.c
        months = (t.month >= from_month, t.month <= to_month)
        return self.explain(
            conn,
            version,
            position,
            *months,
            among=("venue_id", venue_ids),
            after=after,
            events=events,
        )

    def get_activity(
        self,
        conn: Connection,
        version: int,
        venue_ids: Sequence[str],
        from_month: str,
        to_month: str,
        position: int,
    ) -> VenueActivity:
        t = entries_table.c
        result = VenueActivity(
            ActivityFigures(),
            defaultdict(ActivityFigures),
            defaultdict(ActivityFigures),
        )
        for start in range(0, len(venue_ids), 500):
            rows = select_rows(
                conn,
                sa.select(
                    t.month,
                    t.category,
                    t.kind,
                    t.volunteer_id,
                    sa.func.sum(t.activities),
                    sa.func.sum(t.sessions),
                    sa.func.sum(t.minutes),
                )
                .where(
                    t.version == version,
                    t.venue_id.in_(venue_ids[start : start + 500]),
                    t.month >= from_month,
                    t.month <= to_month,
                    t.position <= position,
                )
                .group_by(t.month, t.category, t.kind, t.volunteer_id),
            )
            for (
                month,
                category,
                kind,
                volunteer_id,
                activities,
                sessions,
                minutes,
            ) in rows:
                figures = (
                    kind,
                    volunteer_id,
                    int(activities or 0),
                    int(sessions or 0),
                    int(minutes or 0),
                )
                result.total.add(*figures)
                result.by_month[month].add(*figures)
                result.by_category[category].add(*figures)
        return result
