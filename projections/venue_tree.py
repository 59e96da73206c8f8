"""``venue_tree``: the venue network (centre → institute → station → point,
bases under any level), which the venue reads roll up.

A venue read for ``subtree=true`` covers the venue and all its descendants
as registered up to the position read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine import Entry, Projection, RecordedEvent, define_entries_table

REGISTERED = "Venue.Registered"

entries_table = define_entries_table(
    "proj_venue_tree_entries",
    [
        sa.Column("venue_id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(64)),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
    ],
    ["venues"],
    lookup=[],
)


@dataclass(frozen=True)
class Venue:
    venue_id: str
    parent_id: str | None
    level: str
    name: str


class VenueTree:
    """The venues known at a position, with their children."""

    def __init__(self, venues: Sequence[Venue]) -> None:
        self.venues = {venue.venue_id: venue for venue in venues}
        self.children: dict[str | None, list[str]] = defaultdict(list)
        for venue in venues:
            self.children[venue.parent_id].append(venue.venue_id)

    def __contains__(self, venue_id: object) -> bool:
        return venue_id in self.venues

    def subtree(self, venue_id: str) -> list[str]:
        """The venue and all its descendants."""
        found, pending = [], [venue_id]
        while pending:
            current = pending.pop()
            found.append(current)
            pending.extend(self.children.get(current, ()))
        return found


class VenueTreeProjection(Projection):
    name: ClassVar[str] = "venue_tree"
    topics: ClassVar[frozenset[str]] = frozenset({REGISTERED})
    entries: ClassVar[sa.Table] = entries_table
    key_columns: ClassVar[tuple[str, ...]] = ("venue_id", "parent_id", "level", "name")
    measure_columns: ClassVar[tuple[str, ...]] = ("venues",)

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        p = event.payload
        key = (p["venue_id"], p["parent_id"], p["level"], p["name"])
        return [Entry(event.position, key, (1,))]

    def get_tree(self, conn: Connection, version: int, position: int) -> VenueTree:
        t = entries_table.c
        rows = conn.execute(
            sa.select(t.venue_id, t.parent_id, t.level, t.name).where(
                t.version == version, t.position <= position
            )
        )
        return VenueTree([Venue(*row) for row in rows])
