"""Volunteer teams: 总队 corps → 支队 brigade → 队 team."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.bounds import ID, NAME
from ledger.domain.common import stream_id
from ledger.domain.errors import InvalidCommandError, WrongParentLevelError
from ledger.domain.messages import Message


class TeamLevel(StrEnum):
    CORPS = "corps"  # 总队
    BRIGADE = "brigade"  # 支队
    TEAM = "team"  # 队


# A parent is optional (a firm's own team may stand alone), but when given it
# must be exactly one level up; a corps is always a root.
TEAM_PARENT_LEVEL: dict[TeamLevel, TeamLevel | None] = {
    TeamLevel.CORPS: None,
    TeamLevel.BRIGADE: TeamLevel.CORPS,
    TeamLevel.TEAM: TeamLevel.BRIGADE,
}


class Team(Aggregate):
    """A volunteer unit that can be dispatched orders and accept them."""

    TOPIC = "Team"

    class Event(Aggregate.Event):
        TOPIC = "Team.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Team.Created"

    @staticmethod
    def create_id(team_id: str) -> UUID:
        return stream_id("team", team_id)

    @classmethod
    def register(
        cls, *, team_id: str, name: str, level: str, parent: Team | None
    ) -> Team:
        """Register a team, optionally under a parent one level up."""
        try:
            team_level = TeamLevel(level)
        except ValueError:
            levels = ", ".join(t.value for t in TeamLevel)
            raise InvalidCommandError(
                "unknown team level '{level}': use one of {levels}",
                level=level,
                levels=levels,
            ) from None
        if parent is not None:
            expected = TEAM_PARENT_LEVEL[team_level]
            if expected is None:
                raise WrongParentLevelError(
                    "a corps is a root unit and cannot hang under '{parent_id}'",
                    parent_id=parent.team_id,
                )
            if parent.level != expected:
                raise WrongParentLevelError(
                    "a {level} cannot hang under {parent_level} '{parent_id}': its "
                    "parent must be a {expected}",
                    level=Message(team_level),
                    parent_level=Message(parent.level),
                    parent_id=parent.team_id,
                    expected=Message(expected),
                )
        return cls(
            team_id=ID.check(team_id),
            name=NAME.check(name),
            level=team_level.value,
            parent_id=parent.team_id if parent else None,
        )

    @event("Registered", topic="Team.Registered")
    def __init__(
        self, team_id: str, name: str, level: str, parent_id: str | None
    ) -> None:
        self.team_id = team_id
        self.name = name
        self.level = TeamLevel(level)
        self.parent_id = parent_id
