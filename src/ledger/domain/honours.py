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
        self.stars: dict[str, int] = {}  # rules label -> highest level reached
        self.benefits: dict[str, set[str]] = {}
        self.points: dict[str, int] = {}  # rules label -> points credited so far

    def award(
        self,
        *,
        rules: str,
        stars: int,
        benefits: list[str],
        points: int,
        as_of: str,
        position: int,
    ) -> None:
        """Record what a run decided that is not recorded yet."""
        if not 0 <= stars <= 5 or points < 0:
            raise InvalidCommandError("stars are 0–5 and points are not negative")
        reached = self.stars.get(rules, 0)
        new_benefits = [b for b in benefits if b not in self.benefits.get(rules, set())]
        credited = self.points.get(rules, 0)
        if stars <= reached and not new_benefits and points <= credited:
            raise NothingToChangeError(
                f"volunteer '{self.volunteer_id}' already holds these honours "
                f"under {rules}"
            )
        who = self.volunteer_id
        for level in range(reached + 1, stars + 1):
            self._star_level_reached(level, who, rules, as_of, position)
        for benefit in new_benefits:
            self._benefit_granted(benefit, who, rules, as_of, position)
        if points > credited:
            self._points_credited(
                points - credited, points, who, rules, as_of, position
            )

    @event("StarLevelReached", topic="Honours.StarLevelReached")
    def _star_level_reached(
        self, level: int, volunteer_id: str, rules: str, as_of: str, position: int
    ) -> None:
        self.stars[rules] = level

    @event("BenefitGranted", topic="Honours.BenefitGranted")
    def _benefit_granted(
        self, benefit: str, volunteer_id: str, rules: str, as_of: str, position: int
    ) -> None:
        self.benefits.setdefault(rules, set()).add(benefit)

    @event("PointsCredited", topic="Honours.PointsCredited")
    def _points_credited(
        self,
        points: int,
        total: int,
        volunteer_id: str,
        rules: str,
        as_of: str,
        position: int,
    ) -> None:
        self.points[rules] = total
