"""A volunteer's honours (星级 and 嘉许礼遇) as awarded by honours runs.

Each award is an event naming the rule set and version, the as-of date and
the ledger position the run read, so an award can always be traced to the
inputs that decided it. Awards are never taken back by later corrections:
a run at an earlier position reproduces what was decided then.

What is due is decided by one pure function, ``awards_due``, from what the
volunteer already holds. The aggregate applies it to commands one at a
time; an honours run applies it to a whole register at once
(``Honours.award_events``), from holdings it read in bulk, and relies on the
stream versions it read with them to refuse a concurrent change.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.bounds import POINTS, POSITION
from ledger.domain.common import stream_id
from ledger.domain.errors import InvalidCommandError, NothingToChangeError


class HeldAwards(NamedTuple):
    """What a volunteer holds within one award scope."""

    stars: int = 0  # the highest level reached
    benefits: frozenset[str] = frozenset()
    points: int = 0  # credited so far


NOTHING_HELD = HeldAwards()


class AwardsDue(NamedTuple):
    """What a standing adds to what is held: every level from the one held
    up to the one reached, the benefits not granted yet, and the points
    credited since."""

    levels: range
    benefits: tuple[str, ...]
    points: int
    total_points: int

    @property
    def events(self) -> int:
        return len(self.levels) + len(self.benefits) + (self.points > 0)


def awards_due(
    held: HeldAwards, *, stars: int, benefits: list[str], points: int
) -> AwardsDue | None:
    """What is due, or None when everything is held already (a run asks for
    hundreds of thousands of volunteers, most of whom hold it all)."""
    if not 0 <= stars <= 5:
        raise InvalidCommandError("stars are 0–5, not {stars}", stars=stars)
    POINTS.check(points)
    if (
        stars <= held.stars
        and points <= held.points
        and held.benefits.issuperset(benefits)
    ):
        return None
    return AwardsDue(
        levels=range(held.stars + 1, stars + 1),
        benefits=tuple([b for b in benefits if b not in held.benefits]),
        points=max(points - held.points, 0),
        total_points=max(points, held.points),
    )


class AwardEvent(NamedTuple):
    """One event of a volunteer's honours record, described: its class and
    the values of its fields (all but the record, version and time)."""

    event_class: type[Aggregate.Event]
    fields: dict[str, Any]


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

    def held(self, rules: str, cycle: str | None) -> HeldAwards:
        scope = award_scope(rules, cycle)
        return HeldAwards(
            self.stars.get(scope, 0),
            frozenset(self.benefits.get(scope, ())),
            self.points.get(scope, 0),
        )

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
        POSITION.check(position)
        due = awards_due(
            self.held(rules, cycle), stars=stars, benefits=benefits, points=points
        )
        if due is None:
            raise NothingToChangeError(
                "volunteer '{volunteer_id}' already holds these honours under {scope}",
                volunteer_id=self.volunteer_id,
                scope=award_scope(rules, cycle),
            )
        who = self.volunteer_id
        for level in due.levels:
            self._star_level_reached(level, who, rules, cycle, as_of, position)
        for benefit in due.benefits:
            self._benefit_granted(benefit, who, rules, cycle, as_of, position)
        if due.points:
            self._points_credited(
                due.points, due.total_points, who, rules, cycle, as_of, position
            )

    @classmethod
    def award_events(
        cls,
        volunteer_id: str,
        version: int,
        due: AwardsDue,
        *,
        rules: str,
        cycle: str | None,
        as_of: str,
        position: int,
    ) -> list[AwardEvent]:
        """The events ``award`` triggers for ``due`` on the volunteer's record
        at ``version`` (0: none yet, so it is opened first), described
        without loading the record or making the event objects: an honours
        run knows what every volunteer holds from one read, and appends the
        awards of a whole register. Each event follows the one before it in
        the record's stream; appending them fails if the record moved past
        ``version`` meanwhile."""
        # The classes ``@event`` made (mypy does not see them)
        made: Any = cls
        events: list[AwardEvent] = []
        if version == 0:
            opened = {"originator_topic": cls.TOPIC, "volunteer_id": volunteer_id}
            events.append(AwardEvent(made.Opened, opened))
        scope = {
            "volunteer_id": volunteer_id,
            "rules": rules,
            "cycle": cycle,
            "as_of": as_of,
            "position": position,
        }
        events.extend(
            AwardEvent(made.StarLevelReached, {"level": level, **scope})
            for level in due.levels
        )
        events.extend(
            AwardEvent(made.BenefitGranted, {"benefit": benefit, **scope})
            for benefit in due.benefits
        )
        if due.points:
            credited = {"points": due.points, "total": due.total_points, **scope}
            events.append(AwardEvent(made.PointsCredited, credited))
        return events

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


class HonoursRunRecord(Aggregate):
    """That an honours run recorded everything it decided: what it read (the
    rule set and cycle, the as-of date, the ledger position and the
    ``volunteer_hours`` version) and how many volunteers stood at each star
    level. A later run under the same rules builds on it: only volunteers
    whose service was recorded, or is dated, since then (or whose fraud bar
    may have changed) can stand differently, and all the others hold what
    it decided already."""

    TOPIC = "HonoursRun"

    class Event(Aggregate.Event):
        TOPIC = "HonoursRun.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "HonoursRun.Created"

    @staticmethod
    def create_id(run_id: str) -> UUID:
        return stream_id("honours-run", run_id)

    @event("Completed", topic="HonoursRun.Completed")
    def __init__(
        self,
        run_id: str,
        rules: str,
        cycle: str | None,
        as_of: str,
        position: int,
        hours_version: int,
        volunteers: int,
        standings_by_stars: dict[str, int],
        awards: int,
    ) -> None:
        self.run_id = run_id
        self.rules = rules
        self.cycle = cycle
        self.as_of = as_of
        self.position = position
        self.hours_version = hours_version
        self.volunteers = volunteers
        self.standings_by_stars = standings_by_stars
        self.awards = awards
