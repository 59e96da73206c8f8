"""``volunteer_hours``: each volunteer's approved service, for star levels
and 嘉许礼遇 honours.

Definitions (CONTRACT §1.1–§3): approved verified minutes and approved
make-up minutes, always reported apart and beside their total; per calendar
year (China Standard Time) and category; the number of counted sessions;
the last service date; and the star level under the national rules (a level
is reached at or above 100 / 300 / 600 / 1,000 / 1,500 hours of approved
minutes, make-up included). Corrections replace a session's minutes; voids
take the session out.

Entries: one per event that changes what a session counts for, keyed by
volunteer, session, kind, year, category and service date.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ledger.engine import Entry, Projection, RecordedEvent, define_entries_table
from ledger.projections.service_sessions import COUNTED_SESSION_TOPICS, counted_change

NATIONAL_STAR_HOURS = (100, 300, 600, 1000, 1500)

entries_table = define_entries_table(
    "proj_volunteer_hours_entries",
    [
        sa.Column("volunteer_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("year", sa.String(4), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("service_date", sa.String(10), nullable=False),
    ],
    ["minutes", "sessions"],
    lookup=["volunteer_id"],
)


def served_through(day: date) -> sa.ColumnElement[bool]:
    """The entries of service dated up to ``day`` (its date in China Standard
    Time): the business-date cutoff of honours runs, certificates and
    ``ledger query hours --through``."""
    return entries_table.c.service_date <= day.isoformat()


def stars_for_minutes(
    minutes: int, thresholds_hours: Sequence[int] = NATIONAL_STAR_HOURS
) -> int:
    """The star level reached: at or above each threshold."""
    return sum(1 for hours in thresholds_hours if minutes >= hours * 60)


class HoursTotals(BaseModel):
    """A volunteer's approved minutes and sessions."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    verified_minutes: int
    makeup_minutes: int
    total_minutes: int = Field(description="Verified plus make-up minutes.")
    sessions: int


class HoursFigures(HoursTotals):
    """A volunteer's figures as of a position: the totals, and the minutes
    by year (China Standard Time), kind and category."""

    last_service_date: str | None
    by_year: dict[str, int] = Field(
        description='Minutes per year with any, e.g. {"2022": 600}.'
    )
    by_year_and_kind: dict[str, dict[str, int]]
    by_category: dict[str, int]
    stars: int = Field(
        ge=0, le=5, description="Under the national rule, computed live."
    )

    def totals(self) -> HoursTotals:
        return HoursTotals(
            verified_minutes=self.verified_minutes,
            makeup_minutes=self.makeup_minutes,
            total_minutes=self.total_minutes,
            sessions=self.sessions,
        )


class VolunteerHoursProjection(Projection):
    name: ClassVar[str] = "volunteer_hours"
    topics: ClassVar[frozenset[str]] = COUNTED_SESSION_TOPICS
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = (
        "volunteer_id",
        "session_id",
        "kind",
        "year",
        "category",
        "service_date",
    )
    measure_columns: ClassVar[tuple[str, ...]] = ("minutes", "sessions")

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        change = counted_change(event)
        if change is None or (change.minutes == 0 and change.sessions == 0):
            return []
        return [
            Entry(
                event.position,
                (
                    change.volunteer_id,
                    change.session_id,
                    change.kind,
                    change.year,
                    change.category,
                    change.service_date,
                ),
                (change.minutes, change.sessions),
            )
        ]

    def get_hours(
        self,
        conn: Connection,
        version: int,
        volunteer_id: str,
        position: int,
        through: date | None = None,
    ) -> HoursFigures:
        """The volunteer's figures as known at ``position``; only service
        dated up to ``through`` when it is given."""
        t = entries_table.c
        dated = () if through is None else (served_through(through),)
        rows = conn.execute(
            sa.select(
                t.session_id,
                t.kind,
                t.year,
                t.category,
                t.service_date,
                sa.func.sum(t.minutes),
                sa.func.sum(t.sessions),
            )
            .where(
                t.version == version,
                t.volunteer_id == volunteer_id,
                t.position <= position,
                *dated,
            )
            .group_by(t.session_id, t.kind, t.year, t.category, t.service_date)
        )
        verified = makeup = counted_sessions = 0
        last_service_date: str | None = None
        by_year: dict[str, int] = defaultdict(int)
        by_category: dict[str, int] = defaultdict(int)
        by_year_and_kind: dict[str, dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        for _session, kind, year, category, service_date, minutes, sessions in rows:
            minutes, sessions = int(minutes or 0), int(sessions or 0)
            if kind == "verified":
                verified += minutes
            else:
                makeup += minutes
            counted_sessions += sessions
            if sessions > 0 and (
                last_service_date is None or service_date > last_service_date
            ):
                last_service_date = service_date
            if minutes:
                by_year[year] += minutes
                by_category[category] += minutes
                by_year_and_kind[year][kind] += minutes
        return HoursFigures(
            verified_minutes=verified,
            makeup_minutes=makeup,
            total_minutes=verified + makeup,
            sessions=counted_sessions,
            last_service_date=last_service_date,
            by_year={y: m for y, m in sorted(by_year.items()) if m},
            by_year_and_kind={
                y: dict(sorted(kinds.items()))
                for y, kinds in sorted(by_year_and_kind.items())
            },
            by_category={c: m for c, m in sorted(by_category.items()) if m},
            stars=stars_for_minutes(verified + makeup),
        )

    def explain_hours(
        self, conn: Connection, version: int, volunteer_id: str, position: int
    ) -> list[dict[str, Any]]:
        """Every entry behind the volunteer's figures, in ledger order."""
        volunteer = entries_table.c.volunteer_id == volunteer_id
        return self.explain(conn, version, position, volunteer).entries

    def last_entry(
        self, conn: Connection, version: int, volunteer_id: str, position: int
    ) -> int | None:
        """The position of the volunteer's latest entry up to ``position``: their
        figures are the same at every position from there on (one index seek)."""
        t = entries_table.c
        found = conn.execute(
            sa.select(sa.func.max(t.position)).where(
                t.version == version,
                t.volunteer_id == volunteer_id,
                t.position <= position,
            )
        ).scalar()
        return None if found is None else int(found)

    def get_totals(
        self, conn: Connection, version: int, position: int
    ) -> list[tuple[str, int, int, int]]:
        """Every volunteer with counted service: (id, verified, make-up,
        sessions), most minutes first."""
        t = entries_table.c
        verified = sa.func.sum(sa.case((t.kind == "verified", t.minutes), else_=0))
        makeup = sa.func.sum(sa.case((t.kind == "makeup", t.minutes), else_=0))
        total = sa.func.sum(t.minutes)
        rows = conn.execute(
            sa.select(t.volunteer_id, verified, makeup, sa.func.sum(t.sessions))
            .where(t.version == version, t.position <= position)
            .group_by(t.volunteer_id)
            .having(total > 0)
            .order_by(total.desc(), t.volunteer_id)
        )
        return [(v, int(a or 0), int(b or 0), int(c or 0)) for v, a, b, c in rows]
