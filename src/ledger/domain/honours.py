"""A volunteer's honours (星级 and 嘉许礼遇) as awarded by honours runs.

Each award is an event naming the rule set and version, the as-of date and
the ledger position the run read, so an award can always be traced to the
inputs that decided it. Awards are never taken back by later corrections:
a run at an earlier position reproduces what was decided then.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.common import stream_id
from ledger.domain.errors import InvalidCommandError, NothingToChangeError


class Honours(Aggregate):
    """The awards recorded for one volunteer, under every rule set."""

    TOPIC = "Honours"

    class Event(Aggregate.Event):
        TOPIC = "Honours.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Honours.Created"

    @staticmethod
    def create_id(volunteer_id: str) -> UUID:
        return stream_id("honours", volunteer_id)

    @event("Opened", topic="Honours.Opened")
    def __init__(self, volunteer_id: str) -> None:
        self.volunteer_id = volunteer_id
        # By award scope: the rule set, and for cyclic rules the cycle (year).
        self.stars: dict[str, int] = {}  # highest level reached
        self.benefits: dict[str, set[str]] = {}
        self.points: dict[str, int] = {}  # points credited so far

    def award(
        self,
        *,
        rules: str,
        cycle: str | None,
        stars: int,
        benefits: list[str],
        points: int,
        as_of: str,
        position: int,
    ) -> None:
        """Record what a run decided that is not recorded yet. Cyclic rules
        (counting within a calendar year) award afresh in every cycle."""
        if not 0 <= stars <= 5 or points < 0:
            raise InvalidCommandError("stars are 0–5 and points are not negative")
        scope = award_scope(rules, cycle)
        reached = self.stars.get(scope, 0)
        new_benefits = [b for b in benefits if b not in self.benefits.get(scope, set())]
        credited = self.points.get(scope, 0)
        if stars <= reached and not new_benefits and points <= credited:
            raise NothingToChangeError(
                f"volunteer '{self.volunteer_id}' already holds these honours "
                f"under {scope}"
            )
        who = self.volunteer_id
        for level in range(reached + 1, stars + 1):
            self._star_level_reached(level, who, rules, cycle, as_of, position)
        for benefit in new_benefits:
            self._benefit_granted(benefit, who, rules, cycle, as_of, position)
        if points > credited:
            self._points_credited(
                points - credited, points, who, rules, cycle, as_of, position
            )

    @event("StarLevelReached", topic="Honours.StarLevelReached")
    def _star_level_reached(
        self,
        level: int,
        volunteer_id: str,
        rules: str,
        cycle: str | None,
        as_of: str,
        position: int,
    ) -> None:
        self.stars[award_scope(rules, cycle)] = level

    @event("BenefitGranted", topic="Honours.BenefitGranted")
    def _benefit_granted(
        self,
        benefit: str,
        volunteer_id: str,
        rules: str,
        cycle: str | None,
        as_of: str,
        position: int,
    ) -> None:
        self.benefits.setdefault(award_scope(rules, cycle), set()).add(benefit)

    @event("PointsCredited", topic="Honours.PointsCredited")
    def _points_credited(
        self,
        points: int,
        total: int,
        volunteer_id: str,
        rules: str,
        cycle: str | None,
        as_of: str,
        position: int,
    ) -> None:
        self.points[award_scope(rules, cycle)] = total


def award_scope(rules: str, cycle: str | None) -> str:
    """What awards are counted within: a rule set, or one cycle of it."""
    return rules if cycle is None else f"{rules} {cycle}"
