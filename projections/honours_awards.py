"""``honours_awards``: what honours runs have recorded, per volunteer and
award scope (a rule set, and for cyclic rules its cycle), so that a run
reads what is already awarded from entries instead of decoding every award
event ever recorded.

Entries: one per award event, keyed by volunteer, rule set, cycle ('' for
cumulative rules) and benefit ('' for stars and points). ``star_levels``
counts the levels reached: a run records every level from the one held up
to the one reached, so their count is the highest level. ``points`` sums
the points credited, which is the latest credited total. ``benefits`` counts
the benefit granted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.projection import (
    Entry,
    Projection,
    ProjectionEngine,
    RecordedEvent,
    define_entries_table,
    read_events,
)
from ledger.store import head_position, select_rows

STAR_LEVEL_REACHED = "Honours.StarLevelReached"
BENEFIT_GRANTED = "Honours.BenefitGranted"
POINTS_CREDITED = "Honours.PointsCredited"
AWARD_TOPICS = (STAR_LEVEL_REACHED, BENEFIT_GRANTED, POINTS_CREDITED)
NO_CYCLE = ""
NO_BENEFIT = ""

entries_table = define_entries_table(
    "proj_honours_awards_entries",
    [
        # As wide as RecordHonours allows: a value the command accepts must
        # never fail the page that writes it.
        sa.Column("volunteer_id", sa.String(64), nullable=False),
        sa.Column("rules", sa.String(60), nullable=False),
        sa.Column("cycle", sa.String(20), nullable=False),
        sa.Column("benefit", sa.String(500), nullable=False),
    ],
    ["star_levels", "points", "benefits"],
    lookup=["rules", "cycle", "volunteer_id"],
)

# Per volunteer: highest star level, benefits granted, points credited.
Awards = dict[str, tuple[int, set[str], int]]


class HonoursAwardsProjection(Projection):
    name: ClassVar[str] = "honours_awards"
    topics: ClassVar[frozenset[str]] = frozenset(AWARD_TOPICS)
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = (
        "volunteer_id",
        "rules",
        "cycle",
        "benefit",
    )
    measure_columns: ClassVar[tuple[str, ...]] = ("star_levels", "points", "benefits")

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        p = event.payload
        scope = (p["volunteer_id"], p["rules"], p.get("cycle") or NO_CYCLE)
        if event.topic == STAR_LEVEL_REACHED:
            return [Entry(event.position, (*scope, NO_BENEFIT), (1, 0, 0))]
        if event.topic == BENEFIT_GRANTED:
            return [Entry(event.position, (*scope, p["benefit"]), (0, 0, 1))]
        return [Entry(event.position, (*scope, NO_BENEFIT), (0, int(p["points"]), 0))]

    def recorded_awards(
        self, conn: Connection, rules: str, cycle: str | None
    ) -> Awards:
        """Everything recorded under ``rules`` (in ``cycle``) up to the head of
        the ledger: the live version's entries, and the award events it has
        not processed yet, folded the same way."""
        live = ProjectionEngine.live_state(conn, self.name)
        projected = 0 if live is None else live.position
        scope = (rules, cycle or NO_CYCLE)
        # Per volunteer: [star levels, points, benefits]
        held: dict[str, list[Any]] = {}

        def add(volunteer_id: str, benefit: str, stars: int, points: int) -> None:
            found = held.get(volunteer_id)
            if found is None:
                found = held[volunteer_id] = [0, 0, set()]
            found[0] += stars
            found[1] += points
            if benefit != NO_BENEFIT:
                found[2].add(benefit)

        if live is not None:
            t = entries_table.c
            query = (
                sa.select(
                    t.volunteer_id,
                    t.benefit,
                    sa.func.sum(t.star_levels),
                    sa.func.sum(t.points),
                )
                .where(
                    t.version == live.version,
                    t.rules == scope[0],
                    t.cycle == scope[1],
                    t.position <= projected,
                )
                .group_by(t.volunteer_id, t.benefit)
            )
            for volunteer_id, benefit, stars, points in select_rows(conn, query):
                add(volunteer_id, benefit, int(stars), int(points))
        unprojected = read_events(
            conn, after=projected, upto=head_position(conn), topics=self.topics
        )
        for entry in self.fold(unprojected).entries:
            volunteer_id, *entry_scope, benefit = entry.key
            if tuple(entry_scope) == scope:
                add(volunteer_id, benefit, entry.measures[0], entry.measures[1])
        return {
            volunteer_id: (stars, benefits, points)
            for volunteer_id, (stars, points, benefits) in held.items()
        }
