"""The monthly activity calendar (每月活动汇总): what ``LedgerReads.
activity_calendar`` answers, put together from the venue tree and the
``activity_calendar`` projection's activities — by venue in the tree's
order, each venue's activities by start, times in China Standard Time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from ledger.domain.activities import CATEGORY_NAMES_ZH
from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.projections.activity_calendar import CalendarEntry
from ledger.projections.venue_tree import VenueTree
from ledger.reads.answers import ActivityCalendar, CalendarActivity, CalendarVenue


def venues_in_order(tree: VenueTree, venue_id: str | None) -> list[str]:
    """The venue and those under it (None: every venue), each before its
    children, siblings by id."""
    ordered: list[str] = []
    pending = [venue_id] if venue_id is not None else sorted(tree.children[None])
    pending.reverse()
    while pending:
        current = pending.pop()
        ordered.append(current)
        pending.extend(sorted(tree.children.get(current, ()), reverse=True))
    return ordered


def place_of(tree: VenueTree, venue_id: str) -> str:
    """A venue's names from the town down (the city centre only for itself)."""
    names = []
    current: str | None = venue_id
    while current is not None:
        venue = tree.venues[current]
        if venue.level != "centre" or current == venue_id:
            names.append(venue.name)
        current = venue.parent_id
    return " / ".join(reversed(names))


def build_calendar(
    month: str,
    venue_id: str | None,
    tree: VenueTree,
    ordered: Sequence[str],
    entries: Sequence[CalendarEntry],
    *,
    position: int,
    chain_hash: str,
    dead_letters: int,
) -> ActivityCalendar:
    """The answer: ``entries`` grouped by venue in ``ordered``'s order,
    citing the ledger state they were read at."""
    by_venue: dict[str, list[CalendarEntry]] = defaultdict(list)
    for entry in entries:
        by_venue[entry.venue_id].append(entry)
    venues = [
        CalendarVenue(
            venue_id=venue,
            name=tree.venues[venue].name,
            level=tree.venues[venue].level,
            place=place_of(tree, venue),
            activities=[
                _listed(entry)
                for entry in sorted(
                    by_venue[venue], key=lambda e: (_cst(e.starts_at), e.activity_id)
                )
            ],
        )
        for venue in ordered
        if venue in by_venue
    ]
    return ActivityCalendar(
        month=month,
        venue_id=venue_id,
        activities=len(entries),
        capacity=sum(entry.capacity for entry in entries),
        places_left=sum(_places_left(entry) for entry in entries),
        venues=venues,
        position=position,
        chain_hash=chain_hash,
        dead_letters=dead_letters,
    )


def _listed(entry: CalendarEntry) -> CalendarActivity:
    starts_at = _cst(entry.starts_at)
    return CalendarActivity(
        activity_id=entry.activity_id,
        title=entry.title,
        category=entry.category,
        category_name=CATEGORY_NAMES_ZH.get(entry.category, entry.category),
        date=starts_at.date().isoformat(),
        starts_at=starts_at.isoformat(),
        ends_at=_cst(entry.ends_at).isoformat(),
        capacity=entry.capacity,
        signed_up=entry.signed_up,
        places_left=_places_left(entry),
    )


def _places_left(entry: CalendarEntry) -> int:
    return max(entry.capacity - entry.signed_up, 0)


def _cst(moment: str) -> datetime:
    return datetime.fromisoformat(moment).astimezone(CHINA_STANDARD_TIME)
