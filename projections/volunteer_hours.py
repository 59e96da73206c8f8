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
from ledger.projections.kept import is_unkept, unkept_versions_table
from ledger.projections.service_sessions import COUNTED_SESSION_TOPICS, counted_change
from ledger.store.event_store import add_to_rows, metadata, select_rows

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

# The kept leaderboard: each volunteer's running totals, and how many
# volunteers with service stand at each star level, as they are at the
# version's position (see ``keep_leaderboard``).
TOTALS = ("verified_minutes", "makeup_minutes", "total_minutes", "sessions")
totals_table = sa.Table(
    "proj_volunteer_hours_totals",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("volunteer_id", sa.String(64), nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in TOTALS),
    sa.Index("proj_volunteer_hours_totals_key", "version", "volunteer_id", unique=True),
)
sa.Index(
    "proj_volunteer_hours_totals_rank",
    totals_table.c.version,
    totals_table.c.total_minutes.desc(),
    totals_table.c.volunteer_id,
)
stars_table = sa.Table(
    "proj_volunteer_hours_stars",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("stars", sa.Integer, nullable=False),
    sa.Column("volunteers", sa.BigInteger, nullable=False),
    sa.Index("proj_volunteer_hours_stars_key", "version", "stars", unique=True),
)
unkept_table = unkept_versions_table("volunteer_hours")
LEADERBOARD_TABLES = (totals_table, stars_table, unkept_table)


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
    kept_tables: ClassVar[tuple[sa.Table, ...]] = LEADERBOARD_TABLES

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

    def write_entries(
        self, conn: Connection, version: int, entries: Sequence[Entry]
    ) -> None:
        """The entries, and the kept leaderboard they move."""
        super().write_entries(conn, version, entries)
        keep_leaderboard(conn, version, entries)

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


def keep_leaderboard(conn: Connection, version: int, entries: Sequence[Entry]) -> None:
    """Add a page's entries to the volunteers' kept totals, and move the
    count of volunteers at each star level by those whose level changed (a
    volunteer counts while their total is above zero, as in ``get_totals``)."""
    if not entries or is_unkept(conn, unkept_table, version):
        return
    changes: dict[str, list[int]] = {}
    for _position, key, (minutes, sessions) in entries:
        volunteer_id, kind = key[0], key[2]
        change = changes.setdefault(volunteer_id, [0, 0, 0, 0])
        change[0 if kind == "verified" else 1] += minutes
        change[2] += minutes
        change[3] += sessions
    after = add_to_rows(
        conn,
        totals_table,
        [(version, volunteer, *change) for volunteer, change in changes.items()],
        keys=("version", "volunteer_id"),
        added=TOTALS,
        returning=True,
    )
    levels: dict[int, int] = defaultdict(int)
    for (_version, volunteer_id), (_, _, total, _) in after.items():
        before = total - changes[volunteer_id][2]
        if before > 0:
            levels[stars_for_minutes(before)] -= 1
        if total > 0:
            levels[stars_for_minutes(total)] += 1
    moved = [(version, level, count) for level, count in levels.items() if count]
    add_to_rows(
        conn, stars_table, moved, keys=("version", "stars"), added=("volunteers",)
    )


def kept_leaderboard(
    conn: Connection, version: int, limit: int
) -> tuple[list[tuple[str, int, int, int]], dict[int, int]] | None:
    """The kept leaderboard of ``version`` as it stands at its position: the
    ``limit`` volunteers with the most minutes (id, verified, make-up,
    sessions; most first, then by id) and the volunteers with service at
    each star level; None when the version keeps none (sum the entries)."""
    if is_unkept(conn, unkept_table, version):
        return None
    t = totals_table.c
    leaders = select_rows(
        conn,
        sa.select(t.volunteer_id, t.verified_minutes, t.makeup_minutes, t.sessions)
        .where(t.version == version, t.total_minutes > 0)
        .order_by(t.total_minutes.desc(), t.volunteer_id)
        .limit(limit),
    )
    s = stars_table.c
    levels = select_rows(
        conn, sa.select(s.stars, s.volunteers).where(s.version == version)
    )
    return (
        [(v, int(a), int(b), int(c)) for v, a, b, c in leaders],
        {int(level): int(count) for level, count in levels},
    )
