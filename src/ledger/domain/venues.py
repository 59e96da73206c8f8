"""The venue network (阵地): centre → institute → station → point, plus bases.

Every activity and order happens at one venue, and figures roll up this tree.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.bounds import ID, NAME, TEXT
from ledger.domain.common import venue_stream_id
from ledger.domain.errors import InvalidCommandError, WrongParentLevelError
from ledger.domain.messages import Message


class VenueLevel(StrEnum):
    CENTRE = "centre"  # 中心, city
    INSTITUTE = "institute"  # 所, town or street
    STATION = "station"  # 站, village or community
    POINT = "point"  # 点, mall, firm, hub, site …
    BASE = "base"  # 基地, hangs under any level but another base


# Points sit in a community (station) or directly under a town (institute):
# transport hubs and large firms often belong to no village.
ALLOWED_VENUE_PARENTS: dict[VenueLevel, tuple[VenueLevel, ...]] = {
    VenueLevel.CENTRE: (),
    VenueLevel.INSTITUTE: (VenueLevel.CENTRE,),
    VenueLevel.STATION: (VenueLevel.INSTITUTE,),
    VenueLevel.POINT: (VenueLevel.STATION, VenueLevel.INSTITUTE),
    VenueLevel.BASE: (
        VenueLevel.CENTRE,
        VenueLevel.INSTITUTE,
        VenueLevel.STATION,
        VenueLevel.POINT,
    ),
}


class Venue(Aggregate):
    """A place where activities are held and orders are posted."""

    TOPIC = "Venue"

    class Event(Aggregate.Event):
        TOPIC = "Venue.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "Venue.Created"

    @staticmethod
    def create_id(venue_id: str) -> UUID:
        return venue_stream_id(venue_id)

    @classmethod
    def register(
        cls,
        *,
        venue_id: str,
        name: str,
        level: str,
        parent: Venue | None,
        kind: str | None = None,
    ) -> Venue:
        """Register a venue under ``parent`` (None only for a centre)."""
        venue_level = _parse_level(level)
        allowed = ALLOWED_VENUE_PARENTS[venue_level]
        if parent is None and allowed:
            raise WrongParentLevelError(
                "a {level} needs a parent venue of level {allowed}",
                level=Message(venue_level),
                allowed=" / ".join(allowed),
            )
        if parent is not None and parent.level not in allowed:
            raise WrongParentLevelError(
                "a {level} cannot hang under {parent_level} '{parent_id}': its "
                "parent must be {expected}",
                level=Message(venue_level),
                parent_level=Message(parent.level),
                parent_id=parent.venue_id,
                expected=" / ".join(allowed) if allowed else Message("no parent"),
            )
        return cls(
            venue_id=ID.check(venue_id),
            name=NAME.check(name),
            level=venue_level.value,
            parent_id=parent.venue_id if parent else None,
            kind=None if kind is None else TEXT.check(kind),
        )

    @event("Registered", topic="Venue.Registered")
    def __init__(
        self,
        venue_id: str,
        name: str,
        level: str,
        parent_id: str | None,
        kind: str | None,
    ) -> None:
        self.venue_id = venue_id
        self.name = name
        self.level = VenueLevel(level)
        self.parent_id = parent_id
        self.kind = kind


def _parse_level(level: str) -> VenueLevel:
    try:
        return VenueLevel(level)
    except ValueError:
        levels = ", ".join(v.value for v in VenueLevel)
        raise InvalidCommandError(
            "unknown venue level '{level}': use one of {levels}",
            level=level,
            levels=levels,
        ) from None
