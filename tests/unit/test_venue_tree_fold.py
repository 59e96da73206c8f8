"""The ``venue_tree`` fold, in memory: each registered venue is one entry
under its parent."""

from __future__ import annotations

from ledger.domain.venues import Venue
from ledger.engine import Entry
from ledger.projections.registry import VENUE_TREE
from tests.unit.domain_builders import recorded


def test_each_registered_venue_is_an_entry_under_its_parent() -> None:
    centre = Venue.register(
        venue_id="C", name="昆山市中心", level="centre", parent=None
    )
    town = Venue.register(
        venue_id="I1", name="玉山镇", level="institute", parent=centre
    )
    base = Venue.register(
        venue_id="B1", name="文化基地", level="base", parent=centre, kind="culture"
    )

    events = recorded(centre, town, base, topics=VENUE_TREE.topics)

    assert VENUE_TREE.fold(events).entries == [
        Entry(1, ("C", None, "centre", "昆山市中心"), (1,)),
        Entry(2, ("I1", "C", "institute", "玉山镇"), (1,)),
        Entry(3, ("B1", "C", "base", "文化基地"), (1,)),
    ]
