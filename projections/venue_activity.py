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
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ledger.engine import (
    Entry,
    ExplainedPage,
    Projection,
    RecordedEvent,
    define_entries_table,
)
from ledger.projections.activity_rollup import (
    ALL,
    ROLLUP_TABLES,
    keep_rollup,
    kept_year,
)
from ledger.projections.service_sessions import (
    COUNTED_SESSION_TOPICS,
    china_date,
    counted_change,
)
from ledger.projections.venue_selection import VenueSelection
from ledger.store.event_store import select_rows

PUBLISHED = "Activity.Published"
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


class ActivityFigures(BaseModel):
    """Activity at a venue, or a roll-up of venues, over a period."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    activities: int = Field(description="Activities published, by their start.")
    sessions: int = Field(description="Approved, non-voided sessions.")
    volunteers: int = Field(description="Distinct volunteers in those sessions.")
    verified_minutes: int
    makeup_minutes: int
    volunteer_minutes: int = Field(description="Verified plus make-up minutes.")


@dataclass
class ActivityTally:
    """Activity figures being summed from entries."""

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

    def figures(self) -> ActivityFigures:
        return ActivityFigures(
            activities=self.activities,
            sessions=self.sessions,
            volunteers=len(self.volunteer_ids),
            verified_minutes=self.verified_minutes,
            makeup_minutes=self.makeup_minutes,
            volunteer_minutes=self.verified_minutes + self.makeup_minutes,
        )


@dataclass(frozen=True)
class VenueActivityFigures:
    """A selection's activity: in total, by month and by category (sorted)."""

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
    kept_tables: ClassVar[tuple[sa.Table, ...]] = ROLLUP_TABLES

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

    def write_entries(
        self, conn: Connection, version: int, entries: Sequence[Entry]
    ) -> None:
        """The entries, and the kept roll-up they move (activity_rollup)."""
        super().write_entries(conn, version, entries)
        keep_rollup(conn, version, entries)

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
            among=("venue_id", selection.venue_ids),
            after=after,
            events=events,
        )

    def get_venue_figures(
        self, conn: Connection, selection: VenueSelection
    ) -> VenueActivityFigures:
        """The selection's activity, in total, by month and by category."""
        if (whole := selection.subtree_year) is not None:
            kept = kept_year(conn, selection.version, *whole, selection.position)
            if kept is not None:
                return _kept_figures(whole[1], kept)
        t = entries_table.c
        query = (
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
                t.version == selection.version,
                t.position <= selection.position,
                *selection.months(entries_table),
            )
            .group_by(t.month, t.category, t.kind, t.volunteer_id)
        )
        total = ActivityTally()
        by_month: dict[str, ActivityTally] = defaultdict(ActivityTally)
        by_category: dict[str, ActivityTally] = defaultdict(ActivityTally)
        # Each chunk of venues sums its own groups: the tallies add them up
        # (a session counts at one venue, so no group goes negative in part).
        for venues in selection.venue_chunks():
            rows = select_rows(conn, query.where(t.venue_id.in_(venues)))
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
                total.add(*figures)
                by_month[month].add(*figures)
                by_category[category].add(*figures)
        return VenueActivityFigures(
            total.figures(),
            {month: by_month[month].figures() for month in sorted(by_month)},
            {name: by_category[name].figures() for name in sorted(by_category)},
        )


def _kept_figures(
    year: str, kept: dict[tuple[str, str], tuple[int, ...]]
) -> VenueActivityFigures:
    """A year's figures from the kept roll-up (``kept_year``)."""

    def figures(found: tuple[int, ...]) -> ActivityFigures:
        activities, sessions, verified, makeup, volunteers = found
        return ActivityFigures(
            activities=activities,
            sessions=sessions,
            volunteers=volunteers,
            verified_minutes=verified,
            makeup_minutes=makeup,
            volunteer_minutes=verified + makeup,
        )

    empty = (0, 0, 0, 0, 0)
    return VenueActivityFigures(
        figures(kept.get((year, ALL), empty)),
        {
            period: figures(found)
            for (period, category), found in sorted(kept.items())
            if period != year
        },
        {
            category: figures(found)
            for (period, category), found in sorted(kept.items())
            if period == year and category != ALL
        },
    )
