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

from collections.abc import Collection
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.honours import NOTHING_HELD, HeldAwards
from ledger.engine import (
    Entry,
    Projection,
    ProjectionEngine,
    RecordedEvent,
    define_entries_table,
    read_events,
)
from ledger.store.event_store import head_position, select_rows_among

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

# What each volunteer holds within one award scope.
Awards = dict[str, HeldAwards]


class IncompleteAwardsError(RuntimeError):
    """Award events the projection could not process: what is held is not
    known, and a run deciding from it could award a level twice."""


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
        self,
        conn: Connection,
        rules: str,
        cycle: str | None,
        only: Collection[str] | None = None,
    ) -> Awards:
        """Everything recorded under ``rules`` (in ``cycle``) up to the head of
        the ledger, for every volunteer or ``only`` those: the live version's
        entries, and the award events it has not processed yet, folded the
        same way."""
        live = ProjectionEngine.live_state(conn, self.name)
        if live is not None and live.dead_letters:
            raise IncompleteAwardsError(
                f"{self.name} has {live.dead_letters} award event(s) it could not "
                f"process (see `ledger project`); fix the cause and `ledger rebuild "
                f"{self.name}` before an honours run"
            )
        projected = 0 if live is None else live.position
        scope = (rules, cycle or NO_CYCLE)
        held: dict[str, HeldAwards] = {}
        if live is not None:
            t = entries_table.c
            in_scope = (
                t.version == live.version,
                t.rules == scope[0],
                t.cycle == scope[1],
                t.position <= projected,
            )
            # Stars and points, then the few benefits: one tuple per
            # volunteer, however many runs recorded their awards.
            totals = (
                sa.select(
                    t.volunteer_id, sa.func.sum(t.star_levels), sa.func.sum(t.points)
                )
                .where(*in_scope, t.benefit == NO_BENEFIT)
                .group_by(t.volunteer_id)
            )
            held = {
                volunteer_id: HeldAwards(int(stars), NOTHING_HELD.benefits, int(points))
                for volunteer_id, stars, points in select_rows_among(
                    conn, totals, t.volunteer_id, only
                )
            }
            granted = (
                sa.select(t.volunteer_id, t.benefit)
                .where(*in_scope, t.benefit != NO_BENEFIT)
                .group_by(t.volunteer_id, t.benefit)
                .having(sa.func.sum(t.benefits) > 0)
            )
            for volunteer_id, benefit in select_rows_among(
                conn, granted, t.volunteer_id, only
            ):
                _add(held, volunteer_id, benefit=benefit)
        unprojected = read_events(
            conn, after=projected, upto=head_position(conn), topics=self.topics
        )
        folded = self.fold(unprojected)
        if folded.dead_letters:
            recorded, error = folded.dead_letters[0]
            raise IncompleteAwardsError(
                f"the award event at position {recorded.position} cannot be read "
                f"({error}); fix the cause before an honours run"
            )
        for entry in folded.entries:
            volunteer_id, *entry_scope, benefit = entry.key
            if tuple(entry_scope) == scope and (only is None or volunteer_id in only):
                stars, points, _ = entry.measures
                _add(held, volunteer_id, stars, points, benefit)
        return held


def _add(
    held: dict[str, HeldAwards],
    volunteer_id: str,
    stars: int = 0,
    points: int = 0,
    benefit: str = NO_BENEFIT,
) -> None:
    found = held.get(volunteer_id, NOTHING_HELD)
    held[volunteer_id] = HeldAwards(
        found.stars + stars,
        found.benefits | {benefit} if benefit != NO_BENEFIT else found.benefits,
        found.points + points,
    )
